// Package reference checks that the documentation under docs/ keeps up
// with the code: docs/reference.md with the config types and the Caddyfile
// parsers, and the Grafana dashboard with the metrics.
package reference

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository root, relative to this package's directory,
// where go test runs the tests.
var repoRoot = filepath.Join("..", "..")

// readRepoFile returns the contents of a file given by its path in the
// repository.
func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return string(data)
}

// section is the own text of one Markdown heading: the lines from the
// heading to the next heading of any level, so a section does not include
// its subsections.
type section struct {
	title string // the heading text without '#' and backquotes
	line  int    // 1-based line number of the heading
	lines []string
}

// fenceLine reports whether line opens or closes a fenced code block.
func fenceLine(line string) bool {
	return strings.HasPrefix(strings.TrimSpace(line), "```")
}

// headingPattern matches an ATX heading: its level marks and its text.
var headingPattern = regexp.MustCompile("^(#{1,6}) +(.+?) *$")

// parseSections splits a Markdown document into sections keyed by title.
// Lines inside fenced code blocks are never headings. A title that occurs
// twice is an error, because the checks look sections up by title.
func parseSections(doc string) (map[string]*section, error) {
	sections := make(map[string]*section)
	var current *section
	inFence := false
	for i, line := range strings.Split(doc, "\n") {
		if fenceLine(line) {
			inFence = !inFence
		}
		if m := headingPattern.FindStringSubmatch(line); m != nil && !inFence {
			title := strings.ReplaceAll(m[2], "`", "")
			if earlier, ok := sections[title]; ok {
				return nil, fmt.Errorf("heading %q on line %d repeats the one on line %d: give each heading a unique title", title, i+1, earlier.line)
			}
			current = &section{title: title, line: i + 1}
			sections[title] = current
			continue
		}
		if current != nil {
			current.lines = append(current.lines, line)
		}
	}
	return sections, nil
}

// settingRow is one row of a settings table: a table whose header has the
// columns Caddyfile, JSON and Default.
type settingRow struct {
	caddyfile, json, defaultValue string
	line                          string // the whole row, for messages
}

// splitTableRow returns the cells of a Markdown table row. A '|' escaped
// as "\|" stays inside its cell.
func splitTableRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

// settingRows returns the rows of the settings tables in a section. Other
// tables, such as the list of blocked address ranges, are skipped.
func settingRows(s *section) []settingRow {
	var rows []settingRow
	columns := map[string]int(nil) // column indexes of the current settings table
	inTable := false
	for _, line := range s.lines {
		if !strings.HasPrefix(strings.TrimSpace(line), "|") {
			inTable, columns = false, nil
			continue
		}
		cells := splitTableRow(line)
		if !inTable {
			inTable = true
			columns = settingColumns(cells)
			continue
		}
		if columns == nil || strings.HasPrefix(cells[0], "---") {
			continue
		}
		cell := func(name string) string {
			if i := columns[name]; i < len(cells) {
				return cells[i]
			}
			return ""
		}
		rows = append(rows, settingRow{caddyfile: cell("caddyfile"), json: cell("json"), defaultValue: cell("default"), line: strings.TrimSpace(line)})
	}
	return rows
}

// settingColumns returns the indexes of the Caddyfile, JSON and Default
// columns of a table header, or nil when the table is not a settings table.
func settingColumns(header []string) map[string]int {
	columns := make(map[string]int)
	for i, name := range header {
		columns[strings.ToLower(name)] = i
	}
	for _, required := range []string{"caddyfile", "json", "default"} {
		if _, ok := columns[required]; !ok {
			return nil
		}
	}
	return columns
}

var (
	codeSpanPattern   = regexp.MustCompile("`([^`]+)`")
	directivePattern  = regexp.MustCompile(`^[a-z_]+$`)
	jsonFieldsPattern = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)*$`)
)

// caddyfileNames returns the subdirective names in a Caddyfile cell: the
// first word of every code span that starts with a lower-case name, so
// that "`tls` › `ca <pem file...>`" names tls and ca, and a placeholder
// such as "`<request matcher>`" names nothing.
func caddyfileNames(cell string) []string {
	var names []string
	for _, m := range codeSpanPattern.FindAllStringSubmatch(cell, -1) {
		fields := strings.Fields(m[1])
		if len(fields) > 0 && directivePattern.MatchString(fields[0]) {
			names = append(names, fields[0])
		}
	}
	return names
}

// jsonNames returns the JSON field names in a JSON cell: every code span
// that is a field name or a dotted path of them, split at the dots.
func jsonNames(cell string) []string {
	var names []string
	for _, m := range codeSpanPattern.FindAllStringSubmatch(cell, -1) {
		if jsonFieldsPattern.MatchString(m[1]) {
			names = append(names, strings.Split(m[1], ".")...)
		}
	}
	return names
}

// codeBlock is a fenced code block with its info string.
type codeBlock struct {
	lang string
	line int // 1-based line number of the opening fence
	text string
}

// codeBlocks returns the fenced code blocks of a Markdown document in
// order.
func codeBlocks(doc string) []codeBlock {
	var blocks []codeBlock
	var current *codeBlock
	var body []string
	for i, line := range strings.Split(doc, "\n") {
		if !fenceLine(line) {
			if current != nil {
				body = append(body, line)
			}
			continue
		}
		if current == nil {
			lang := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "```"))
			current = &codeBlock{lang: lang, line: i + 1}
			body = nil
			continue
		}
		current.text = strings.Join(body, "\n") + "\n"
		blocks = append(blocks, *current)
		current = nil
	}
	return blocks
}

func TestSplitTableRow(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{"| a | b |", []string{"a", "b"}},
		{"| `rate <count>/s\\|m\\|h` | `rate` |", []string{"`rate <count>/s|m|h`", "`rate`"}},
		{"|a||c|", []string{"a", "", "c"}},
	}
	for _, tt := range tests {
		got := splitTableRow(tt.line)
		if strings.Join(got, "¦") != strings.Join(tt.want, "¦") {
			t.Errorf("splitTableRow(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestCellNames(t *testing.T) {
	tests := []struct {
		cell          string
		wantCaddyfile string
		wantJSON      string
	}{
		{"`tls` › `ca <pem file...>`", "tls ca", "tls"},
		{"`<request matcher> <args...>`", "", ""},
		{"`tls.client_certificate.key`, `timeout`", "timeout", "tls client_certificate key timeout"},
		{"`handler` is `\"webhooks\"`", "handler", "handler"},
		{"`response_body` (false)", "response_body", "response_body"},
	}
	for _, tt := range tests {
		if got := strings.Join(caddyfileNames(tt.cell), " "); got != tt.wantCaddyfile {
			t.Errorf("caddyfileNames(%q) = %q, want %q", tt.cell, got, tt.wantCaddyfile)
		}
		if got := strings.Join(jsonNames(tt.cell), " "); got != tt.wantJSON {
			t.Errorf("jsonNames(%q) = %q, want %q", tt.cell, got, tt.wantJSON)
		}
	}
}

func TestParseSectionsSkipsFences(t *testing.T) {
	doc := "# Top\ntext\n```sh\n# not a heading\n```\n## `nats`\n| a |\n### sub\nx\n"
	sections, err := parseSections(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(sections) != 3 {
		t.Fatalf("got %d sections, want 3 (Top, nats, sub)", len(sections))
	}
	nats := sections["nats"]
	if nats == nil {
		t.Fatal("section nats not found; backquotes should be dropped from titles")
	}
	if got := strings.Join(nats.lines, "\n"); got != "| a |" {
		t.Errorf("section nats has %q, want only its own line before the subsection", got)
	}
	if _, err := parseSections("## a\n## a\n"); err == nil {
		t.Error("parseSections accepted a repeated heading")
	}
}
