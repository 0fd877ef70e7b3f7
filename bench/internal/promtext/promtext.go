// Package promtext reads sample values from the Prometheus text exposition
// format, as Caddy's admin endpoint serves it at /metrics. It handles the
// subset that counters and gauges use: one sample per line, with optional
// labels and an optional timestamp.
package promtext

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Sum returns the sum of the samples of the metric name whose labels
// include every label in match. A metric without matching samples sums to
// 0.
func Sum(text []byte, name string, match map[string]string) (float64, error) {
	var sum float64
	scanner := bufio.NewScanner(bytes.NewReader(text))
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for lineNumber := 1; scanner.Scan(); lineNumber++ {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		sample, err := parseSample(line)
		if err != nil {
			return 0, fmt.Errorf("line %d: %w", lineNumber, err)
		}
		if sample.name == name && includes(sample.labels, match) {
			sum += sample.value
		}
	}
	if err := scanner.Err(); err != nil {
		return 0, fmt.Errorf("reading metrics: %w", err)
	}
	return sum, nil
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseSample parses `name{label="value",...} value [timestamp]`.
func parseSample(line string) (sample, error) {
	var s sample
	rest := line
	if i := strings.IndexAny(rest, "{ "); i >= 0 {
		s.name, rest = rest[:i], rest[i:]
	} else {
		return s, fmt.Errorf("invalid sample %q: no value", line)
	}
	if strings.HasPrefix(rest, "{") {
		labels, after, err := parseLabels(rest[1:])
		if err != nil {
			return s, fmt.Errorf("invalid sample %q: %w", line, err)
		}
		s.labels, rest = labels, after
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("invalid sample %q: want a value and an optional timestamp after the labels", line)
	}
	value, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("invalid sample %q: %w", line, err)
	}
	s.value = value
	return s, nil
}

// parseLabels parses `label="value",...}` and returns the labels and the
// text after the closing brace. Values may contain the escapes \\, \" and
// \n.
func parseLabels(text string) (map[string]string, string, error) {
	labels := make(map[string]string)
	for {
		text = strings.TrimLeft(text, " ,")
		if strings.HasPrefix(text, "}") {
			return labels, text[1:], nil
		}
		name, rest, ok := strings.Cut(text, "=")
		if !ok || !strings.HasPrefix(rest, `"`) {
			return nil, "", fmt.Errorf("label %q has no quoted value", text)
		}
		var value strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			c := rest[i]
			if c == '\\' && i+1 < len(rest) {
				i++
				c = rest[i]
				if c == 'n' {
					c = '\n'
				}
			}
			value.WriteByte(c)
		}
		if i >= len(rest) {
			return nil, "", fmt.Errorf("value of label %q has no closing quote", name)
		}
		labels[strings.TrimSpace(name)] = value.String()
		text = rest[i+1:]
	}
}

func includes(labels, match map[string]string) bool {
	for name, want := range match {
		if labels[name] != want {
			return false
		}
	}
	return true
}
