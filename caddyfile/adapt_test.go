package caddyfile_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-webhooks/caddy-webhooks"
)

var update = flag.Bool("update", false, "rewrite the expected JSON of the golden adapt files")

// TestAdaptGolden adapts every testdata/adapt/*.caddyfiletest file. Each has
// a Caddyfile, a line of ten dashes, and the expected JSON, or an expected
// error text that starts with "error: ".
func TestAdaptGolden(t *testing.T) {
	files, err := filepath.Glob("../testdata/adapt/*.caddyfiletest")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden adapt files found in ../testdata/adapt")
	}
	adapter := caddyconfig.GetAdapter("caddyfile")

	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, expected, found := strings.Cut(string(data), "\n----------\n")
			if !found {
				t.Fatalf("%s has no line of ten dashes between the Caddyfile and the expected output", file)
			}

			out, _, adaptErr := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			var got string
			if adaptErr != nil {
				got = "error: " + adaptErr.Error()
			} else {
				var indented bytes.Buffer
				if err := json.Indent(&indented, out, "", "\t"); err != nil {
					t.Fatal(err)
				}
				got = indented.String()
			}

			if *update {
				if err := os.WriteFile(file, []byte(input+"\n----------\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.TrimSpace(got) != strings.TrimSpace(expected) {
				t.Errorf("adapting %s:\ngot:\n%s\nexpected:\n%s", file, got, expected)
			}
		})
	}
}
