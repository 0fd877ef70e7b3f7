package placeholder

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// bracketResolver resolves every name to the name in angle brackets, so
// that a rendered string shows where each placeholder was and what its
// name was.
var bracketResolver = ResolverFunc(func(name string) (any, bool) {
	return "<" + name + ">", true
})

// caddyReplace renders s with Caddy's own replacer, resolving every name as
// bracketResolver does.
func caddyReplace(s string) (string, error) {
	repl := caddy.NewEmptyReplacer()
	repl.Map(func(name string) (any, bool) { return "<" + name + ">", true })
	return repl.ReplaceOrErr(s, false, false)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		render string // with bracketResolver
		names  []string
		single bool // whether the text is one placeholder, names[0]
	}{
		{name: "literal", in: "plain text", render: "plain text"},
		{name: "empty", in: "", render: ""},
		{name: "single", in: "{webhook.event.id}", render: "<webhook.event.id>", names: []string{"webhook.event.id"}, single: true},
		{name: "interpolated", in: "Order {a} by {b}.", render: "Order <a> by <b>.", names: []string{"a", "b"}},
		{name: "repeated name listed once", in: "{a}{b}{a}", render: "<a><b><a>", names: []string{"a", "b"}},
		{name: "escaped open brace", in: `\{a}`, render: "{a}"},
		{name: "escaped close brace", in: `a\}b`, render: "a}b"},
		{name: "escaped braces around text", in: `\{not a placeholder\}`, render: "{not a placeholder}"},
		{name: "backslash before escaped brace", in: `\\{a}`, render: `\{a}`},
		{name: "backslash elsewhere", in: `C:\path {a}`, render: `C:\path <a>`, names: []string{"a"}},
		{name: "unclosed brace", in: "{abc", render: "{abc"},
		{name: "unclosed after placeholder", in: "{a} {b", render: "<a> {b", names: []string{"a"}},
		{name: "lone close brace", in: "a}b", render: "a}b"},
		{name: "empty name", in: "{}", render: "<>", names: []string{""}, single: true},
		{name: "nested open brace is in name", in: "{a{b}", render: "<a{b>", names: []string{"a{b"}, single: true},
		{name: "escaped close brace is in name", in: `{a\}b}`, render: `<a\}b>`, names: []string{`a\}b`}, single: true},
		{name: "escaped close brace at end closes", in: `{a\}`, render: `<a\>`, names: []string{`a\`}, single: true},
		{name: "escaped close brace without another", in: `{a\}x`, render: "{a}x"},
		{name: "placeholder then escaped brace", in: `{a}\}`, render: "<a>}", names: []string{"a"}},
		{name: "non-ASCII text", in: "Grüße {name} ✓", render: "Grüße <name> ✓", names: []string{"name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := text.Render(bracketResolver); got != tt.render {
				t.Errorf("Render = %q, want %q", got, tt.render)
			}
			if got := text.Names(); !slices.Equal(got, tt.names) {
				t.Errorf("Names = %q, want %q", got, tt.names)
			}
			name, ok := text.Single()
			if ok != tt.single {
				t.Errorf("Single reports %v, want %v", ok, tt.single)
			}
			if ok && name != tt.names[0] {
				t.Errorf("Single = %q, want %q", name, tt.names[0])
			}

			want, err := caddyReplace(tt.in)
			if err != nil {
				t.Fatalf("Caddy's replacer: %v", err)
			}
			if want != tt.render {
				t.Errorf("Caddy's replacer renders %q, this table expects %q", want, tt.render)
			}
		})
	}
}

func TestParseTooManyUnclosed(t *testing.T) {
	const limit = 101 // Caddy tolerates 101 unclosed braces, not 102.
	within := strings.Repeat("{", limit)
	if _, err := Parse(within); err != nil {
		t.Errorf("Parse of %d unclosed braces: %v, want success", limit, err)
	}
	if _, err := caddyReplace(within); err != nil {
		t.Errorf("Caddy's replacer with %d unclosed braces: %v", limit, err)
	}

	over := strings.Repeat("{", limit+1)
	if _, err := Parse(over); !errors.Is(err, ErrTooManyUnclosed) {
		t.Errorf("Parse of %d unclosed braces: %v, want ErrTooManyUnclosed", limit+1, err)
	}
	if _, err := caddyReplace(over); err == nil {
		t.Errorf("Caddy's replacer accepts %d unclosed braces, but Parse rejects them", limit+1)
	}
}

func TestRenderMissingValues(t *testing.T) {
	text, err := Parse("[{known}|{unknown}|{null}]")
	if err != nil {
		t.Fatal(err)
	}
	r := ResolverFunc(func(name string) (any, bool) {
		switch name {
		case "known":
			return 42, true
		case "null":
			return nil, true
		}
		return nil, false
	})
	if got, want := text.Render(r), "[42||]"; got != want {
		t.Errorf("Render = %q, want %q", got, want)
	}
	if got, want := text.Render(nil), "[||]"; got != want {
		t.Errorf("Render(nil) = %q, want %q", got, want)
	}
}

func TestAppendTextKeepsPrefix(t *testing.T) {
	text, err := Parse("id={id}")
	if err != nil {
		t.Fatal(err)
	}
	got := text.AppendText([]byte("prefix "), ResolverFunc(func(string) (any, bool) { return "7", true }))
	if string(got) != "prefix id=7" {
		t.Errorf("AppendText = %q, want %q", got, "prefix id=7")
	}
}

func TestAppendJSONString(t *testing.T) {
	values := map[string]any{
		"quote":   `say "hi"\`,
		"lines":   "a\nb\u2028c",
		"invalid": "bad \xff byte",
		"split":   "\x9c\xc7", // a continuation byte, then the start of U+01DC`
		"number":  1.5,
		"object":  map[string]any{"k": `"v"`},
		"nan":     nanValue(),
	}
	r := ResolverFunc(func(name string) (any, bool) {
		v, ok := values[name]
		return v, ok
	})
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "literal with quote", in: `a "b" \{c\}`, want: `"a \"b\" {c}"`},
		{name: "quotes and backslash", in: "<{quote}>", want: `"<say \"hi\"\\>"`},
		{name: "line breaks", in: "{lines}", want: `"a\nb\u2028c"`},
		{name: "invalid UTF-8", in: "{invalid}", want: `"bad \ufffd byte"`},
		{name: "UTF-8 sequence across values", in: "{split}{split}", want: `"\ufffdǜ\ufffd"`},
		{name: "number", in: "n={number}", want: `"n=1.5"`},
		{name: "object as compact JSON", in: "o={object}", want: `"o={\"k\":\"\\\"v\\\"\"}"`},
		{name: "missing and NaN are empty", in: "[{missing}{nan}]", want: `"[]"`},
		{name: "HTML characters unescaped", in: "<a href='x'>&", want: `"<a href='x'>&"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(text.AppendJSONString(nil, r)); got != tt.want {
				t.Errorf("AppendJSONString = %s, want %s", got, tt.want)
			}
		})
	}
}
