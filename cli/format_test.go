package cli

import (
	"strings"
	"testing"
	"time"
)

func TestFormatHelpers(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"time utc", formatTime("2026-12-04T19:20:00.123Z"), "2026-12-04 19:20:00"},
		{"time offset", formatTime("2026-12-04T20:20:00.999+01:00"), "2026-12-04 19:20:00"},
		{"time empty", formatTime(""), "-"},
		{"time unparsable", formatTime("yesterday"), "yesterday"},
		{"duration micro", formatDurationMS(0.0123), "12µs"},
		{"duration ms", formatDurationMS(87.25), "87.3ms"},
		{"duration s", formatDurationMS(1234.5), "1.23s"},
		{"duration zero", formatDurationMS(0), "-"},
		{"size bytes", formatSize(1023), "1023 B"},
		{"size kib", formatSize(1536), "1.5 KiB"},
		{"size mib", formatSize(3 << 20), "3.0 MiB"},
		{"status none", formatStatus(0), "-"},
		{"count one", countNoun(1, "event", "events"), "1 event"},
		{"count zero", countNoun(0, "event", "events"), "0 events"},
		{"cell control", cleanCell("a\tb\nc\x1b[31m"), "a b c [31m"},
		{"cell empty", cleanCell(""), "-"},
		{"text keeps lines", cleanText("a\nb\u009bc"), "a\nb c"},
		{"truncate short", truncate("abc", 3), "abc"},
		{"truncate ascii", truncate("abcdef", 3), "abc..."},
		{"truncate keeps runes whole", truncate("aé€", 4), "aé..."},
		{"outcomes sorted", formatOutcomes(map[string]destinationOutcome{
			"sales": {Outcome: "pending"}, "orders": {Outcome: "retry", Attempts: 3},
		}), "orders=retry(3) sales=pending(0)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestParseTimeFlag(t *testing.T) {
	tests := []struct {
		value   string
		want    string
		wantErr bool
	}{
		{value: "2026-12-04T10:00:00Z", want: "2026-12-04T10:00:00.000Z"},
		{value: "2026-12-04T11:00:00.5+01:00", want: "2026-12-04T10:00:00.500Z"},
		{value: "90m", want: "2026-12-04T18:30:00.000Z"},
		{value: "2d", want: "2026-12-02T20:00:00.000Z"},
		{value: "1h30m", want: "2026-12-04T18:30:00.000Z"},
		{value: "0s", wantErr: true},
		{value: "-1h", wantErr: true},
		{value: "0d", wantErr: true},
		{value: "1.5d", wantErr: true},
		{value: "d", wantErr: true},
		{value: "2026-12-04", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseTimeFlag("since", tt.value, func() time.Time { return testNow })
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseTimeFlag(%q) = %q, want an error", tt.value, got)
			} else if !strings.Contains(err.Error(), `invalid --since "`+tt.value+`"`) {
				t.Errorf("parseTimeFlag(%q) error %q does not name the flag and value", tt.value, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseTimeFlag(%q) = %q, %v, want %q", tt.value, got, err, tt.want)
		}
	}
}
