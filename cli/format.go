package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// tableTimeFormat shortens the admin API's RFC 3339 times for tables. Times
// stay in UTC, which the help text states.
const tableTimeFormat = "2006-01-02 15:04:05"

// emptyCell is shown in place of a value that the admin API left out.
const emptyCell = "-"

// table writes rows of cells aligned in columns.
type table struct {
	writer *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{writer: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

// row adds one line. Each cell is cleaned of tabs, line breaks and other
// control characters, which would break the alignment or could carry
// terminal escape sequences from a receiver's error text.
func (t *table) row(cells ...string) {
	for i, cell := range cells {
		cells[i] = cleanCell(cell)
	}
	fmt.Fprintln(t.writer, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	return t.writer.Flush()
}

// cleanCell replaces control characters with spaces and an empty value with
// emptyCell.
func cleanCell(cell string) string {
	if cell == "" {
		return emptyCell
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, cell)
}

// cleanText replaces control characters other than line breaks with spaces,
// for multi-line output such as a payload.
func cleanText(text string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
}

// formatTime shortens an RFC 3339 time from the admin API to
// tableTimeFormat in UTC. A value that does not parse is shown as it is.
func formatTime(value string) string {
	if value == "" {
		return emptyCell
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return value
	}
	return t.UTC().Format(tableTimeFormat)
}

// formatCount formats an optional count, emptyCell when the API left it out.
func formatCount(n *uint64) string {
	if n == nil {
		return emptyCell
	}
	return strconv.FormatUint(*n, 10)
}

// formatStatus formats an HTTP status code, emptyCell for 0 (no response).
func formatStatus(code int) string {
	if code == 0 {
		return emptyCell
	}
	return strconv.Itoa(code)
}

// formatDurationMS formats a duration in milliseconds with about three
// significant digits, emptyCell for 0.
func formatDurationMS(ms float64) string {
	if ms <= 0 {
		return emptyCell
	}
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// formatSize formats a byte count in B, KiB or MiB.
func formatSize(n int64) string {
	const kib = 1024
	switch {
	case n < kib:
		return strconv.FormatInt(n, 10) + " B"
	case n < kib*kib:
		return strconv.FormatFloat(float64(n)/kib, 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatFloat(float64(n)/(kib*kib), 'f', 1, 64) + " MiB"
	}
}

// countNoun formats n with the singular or plural noun, such as
// "1 dead letter" or "2 dead letters".
func countNoun(n int, singular, plural string) string {
	if n == 1 {
		return "1 " + singular
	}
	return strconv.Itoa(n) + " " + plural
}

// joinList joins values with ", ", or returns "" for none.
func joinList(values []string) string {
	return strings.Join(values, ", ")
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeIndentedJSON writes a JSON document with two-space indentation and a
// final line break.
func writeIndentedJSON(w io.Writer, document []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, document, "", "  "); err != nil {
		return fmt.Errorf("indenting the admin API response: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}
