package chat

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter bounds parsed Retry-After values, as the parser of package
// delivery does, so that they fit in a time.Duration.
const maxRetryAfter = 365 * 24 * time.Hour

// ParseRetryAfter reads a Retry-After header value: a number of seconds,
// optionally with a decimal fraction such as "1.5", or an HTTP date. RFC
// 9110 allows whole seconds only. The fraction is accepted in case a
// service sends one, and digits after the ninth decimal place are ignored.
//
// It returns 0 when the value is missing, invalid, zero or a date already
// past, and at most 365 days.
func ParseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if d, ok := parseSeconds(value); ok {
		return d
	}
	if date, err := http.ParseTime(value); err == nil && date.After(now) {
		return min(date.Sub(now), maxRetryAfter)
	}
	return 0
}

// parseSeconds parses digits with an optional "." and more digits. Signs,
// exponents and anything else make it report false.
func parseSeconds(value string) (time.Duration, bool) {
	whole, fraction, hasPoint := strings.Cut(value, ".")
	if !isDigits(whole) || hasPoint && !isDigits(fraction) {
		return 0, false
	}

	const maxSeconds = int64(maxRetryAfter / time.Second)
	// More than 12 digits is beyond maxSeconds, and ParseInt would fail
	// past 19.
	if len(strings.TrimLeft(whole, "0")) > 12 {
		return maxRetryAfter, true
	}
	seconds, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, false
	}
	if seconds >= maxSeconds {
		return maxRetryAfter, true
	}

	// Pad or cut the fraction to nine digits, the nanoseconds.
	fraction = (fraction + "000000000")[:9]
	nanos, err := strconv.ParseInt(fraction, 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(seconds)*time.Second + time.Duration(nanos), true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
