package placeholder

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks Parse against Caddy's replacer: both must accept or
// reject the same strings and find the same placeholders. It also checks
// that AppendJSONString writes the rendered text as valid JSON.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "plain", "{a}", "x {a} y {b}", `\{a\}`, `\\{a}`, `{a\}b}`, `{a\}`, `{a\}x`,
		"{a{b}", "{}", "}{", "{{}}", `\`, "{\xff}", "a\u2028{b}\"c\"",
		strings.Repeat("{", 102), strings.Repeat("{a", 50) + "}",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		text, err := Parse(s)
		want, caddyErr := caddyReplace(s)
		if (err != nil) != (caddyErr != nil) {
			t.Fatalf("Parse(%q) error %v, Caddy's replacer error %v", s, err, caddyErr)
		}
		if err != nil {
			return
		}
		rendered := text.Render(bracketResolver)
		if rendered != want {
			t.Fatalf("Parse(%q) renders %q, Caddy's replacer %q", s, rendered, want)
		}

		quoted := text.AppendJSONString(nil, bracketResolver)
		if !json.Valid(quoted) || !utf8.Valid(quoted) {
			t.Fatalf("AppendJSONString(%q) = %q, not valid JSON in UTF-8", s, quoted)
		}
		var decoded string
		if err := json.Unmarshal(quoted, &decoded); err != nil {
			t.Fatalf("decoding %q: %v", quoted, err)
		}
		if want := replaceInvalidBytes(rendered); decoded != want {
			t.Fatalf("AppendJSONString(%q) decodes to %q, want %q", s, decoded, want)
		}
	})
}

// replaceInvalidBytes replaces each byte of s that is not part of a valid
// UTF-8 sequence with U+FFFD, as encoding/json does.
func replaceInvalidBytes(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}
