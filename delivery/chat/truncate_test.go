package chat

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateKeepsCharactersWhole(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		limit int
		want  string
	}{
		{"fits exactly", "abc", 3, "abc"},
		{"plain cut", "abcdef", 4, "abc…"},
		{"precomposed letter", "ééééé", 3, "éé…"},
		{"combining mark", "ab\u0301cd", 3, "a…"},
		{"combining mark kept whole", "ab\u0301cd", 4, "ab\u0301…"},
		{"flag pair kept", "a🇩🇪🇫🇷", 4, "a🇩🇪…"},
		{"flag pair not split", "a🇩🇪🇫🇷", 3, "a…"},
		{"zero width joiner sequence", "a👩\u200d💻b", 4, "a…"},
		{"skin tone modifier", "x👍🏽y", 3, "x…"},
		{"variation selector", "x❤\ufe0fy", 3, "x…"},
		{"no room for the ellipsis", "abc", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncate(tt.text, tt.limit, countRunes)
			if got != tt.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", tt.text, tt.limit, got, tt.want)
			}
		})
	}
}

// fillers are repeated to make texts longer than every limit. Each is one
// character as readers see it, so a cut must never fall inside one.
var fillers = []string{
	"a",
	"é",        // 2 bytes
	"€",        // 3 bytes
	"😀",        // 4 bytes
	"e\u0301",  // letter and combining acute accent
	"🇩🇪",       // flag: two regional indicators
	"👍🏽",       // emoji with a skin tone modifier
	"👩\u200d💻", // emoji joined by a zero width joiner
	"&",        // escaped by Slack as &amp;
	"\"",       // escaped by JSON as \"
	"\x01",     // escaped by JSON as \u0001
}

func TestRenderCutsAtLimit(t *testing.T) {
	for _, f := range Formats() {
		for _, filler := range fillers {
			t.Run(fmt.Sprintf("%s/%+q", f, filler), func(t *testing.T) {
				text := strings.Repeat(filler, f.Limit()+10)
				body, _, err := Render(f, text)
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				checkCut(t, f, text, filler, body)
			})
		}
	}
}

// checkCut checks that body carries the longest whole-filler prefix of text
// that fits the limit with the ellipsis, and nothing beyond the limit.
func checkCut(t *testing.T, f Format, text, filler string, body []byte) {
	t.Helper()
	if !utf8.Valid(body) {
		t.Fatalf("body is not valid UTF-8")
	}
	if f != Ntfy && !json.Valid(body) {
		t.Fatalf("body is not valid JSON")
	}
	if size := sizeOf(t, f, body); size > f.Limit() {
		t.Errorf("size = %d %s, above the limit %d", size, f.LimitUnit(), f.Limit())
	}

	shown := shownText(t, f, body)
	kept, cut := strings.CutSuffix(shown, ellipsis)
	if !cut {
		t.Fatalf("text does not end with %q: ...%q", ellipsis, tail(shown))
	}
	if !strings.HasPrefix(text, kept) {
		t.Fatalf("kept text is not a prefix of the input: ...%q", tail(kept))
	}
	if len(kept)%len(filler) != 0 {
		t.Errorf("cut splits a character: kept %d bytes of %d-byte units, ending ...%q", len(kept), len(filler), tail(kept))
	}

	longer, err := specs[f].encode(kept + filler + ellipsis)
	if err != nil {
		t.Fatalf("encoding a longer text: %v", err)
	}
	if size := sizeOf(t, f, longer); size <= f.Limit() {
		t.Errorf("cut too early: one more %+q would still fit (%d of %d %s)", filler, size, f.Limit(), f.LimitUnit())
	}
}

func TestRenderKeepsTextAtLimit(t *testing.T) {
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			n := f.Limit()
			if f.LimitUnit() == BodyBytes {
				envelope, err := specs[f].encode("")
				if err != nil {
					t.Fatalf("encoding an empty text: %v", err)
				}
				n -= len(envelope)
			}
			text := strings.Repeat("a", n)

			body, _, err := Render(f, text)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got := shownText(t, f, body); got != text {
				t.Errorf("text of %d units at the limit was changed, ending ...%q", n, tail(got))
			}
			if size := sizeOf(t, f, body); size != f.Limit() {
				t.Errorf("size = %d, want exactly the limit %d", size, f.Limit())
			}

			body, _, err = Render(f, text+"a")
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got := shownText(t, f, body); !strings.HasSuffix(got, ellipsis) {
				t.Errorf("text one unit above the limit was not cut, ending ...%q", tail(got))
			}
		})
	}
}

func TestRenderSlackCountsEscapes(t *testing.T) {
	body, _, err := Render(Slack, strings.Repeat("&", 40000))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}

	// Each & is sent as &amp;, five characters: 7999 of them and the
	// ellipsis make 39996 characters, and one more & would make 40001.
	shown := shownText(t, Slack, body)
	if got := strings.Count(shown, "&"); got != 7999 {
		t.Errorf("kept %d ampersands, want 7999", got)
	}
	if size := sizeOf(t, Slack, body); size != 39996 {
		t.Errorf("size = %d characters, want 39996", size)
	}
}

// sizeOf measures body in the unit of the limit of f, from the body alone.
func sizeOf(t *testing.T, f Format, body []byte) int {
	t.Helper()
	switch f.LimitUnit() {
	case Characters:
		return utf8.RuneCountInString(sentText(t, f, body))
	case TextBytes, BodyBytes:
		return len(body)
	default:
		t.Fatalf("format %s has no limit unit", f)
		return 0
	}
}

// tail returns the end of s, short enough for a failure message.
func tail(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	for i := len(s) - n; i < len(s); i++ {
		if utf8.RuneStart(s[i]) {
			return s[i:]
		}
	}
	return s
}
