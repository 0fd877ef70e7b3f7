package chat

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 4, 19, 20, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{" 3 ", 3 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"0.25", 250 * time.Millisecond},
		{"0.000000001", time.Nanosecond},
		{"1.1234567899", 1123456789 * time.Nanosecond},
		{"007", 7 * time.Second},
		{"0", 0},
		{"0.0", 0},
		{"31535999", 31535999 * time.Second},
		{"31536000", maxRetryAfter},
		{"31536000.5", maxRetryAfter},
		{"99999999999999999999999", maxRetryAfter},
		{"-1", 0},
		{"+1", 0},
		{"1.", 0},
		{".5", 0},
		{"1.5.5", 0},
		{"1e3", 0},
		{"0x10", 0},
		{"1_000", 0},
		{"NaN", 0},
		{"Inf", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(400 * 24 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.value, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}
