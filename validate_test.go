package webhooks_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateRejectsInvalidConfig runs `caddy validate` on broken configs
// and checks that each error names the bad value.
func TestValidateRejectsInvalidConfig(t *testing.T) {
	binary := caddyPath(t)

	const site = `
http://127.0.0.1:9 {
	webhooks {
		%s
	}
	respond "ok"
}
`
	tests := []struct {
		name   string
		global string
		rules  string
		expect string
	}{
		{
			name:   "bad event type",
			rules:  "event order..created POST /orders 201",
			expect: "order..created",
		},
		{
			name:   "unknown subdirective",
			rules:  "event order.created {\n\t\t\tcolour red\n\t\t}",
			expect: "colour",
		},
		{
			name:   "status outside 1xx-5xx",
			rules:  "event order.created POST /orders 600",
			expect: "600",
		},
		{
			name:   "status class outside 1xx-5xx",
			rules:  "event order.created {\n\t\t\tstatus 7xx\n\t\t}",
			expect: "7xx",
		},
		{
			name:   "non-http URL",
			global: "endpoint orders ftp://127.0.0.1/hooks {\n\t\t\tevents order.*\n\t\t}",
			expect: "ftp://127.0.0.1/hooks",
		},
		{
			name:   "email without smtp",
			global: "email sales {\n\t\t\tevents order.*\n\t\t\tto sales@example.com\n\t\t}",
			expect: "configure one with the smtp global option",
		},
		{
			name:   "alerts notify unknown",
			global: "alerts {\n\t\t\tnotify team\n\t\t}",
			expect: `notify \"team\" is not a configured destination`,
		},
		{
			name:   "alerts email without smtp",
			global: "alerts ops@example.com",
			expect: "e-mail alerts to ops@example.com need an SMTP server",
		},
		{
			name:   "two endpoints with one name",
			global: "endpoint orders http://127.0.0.1/a {\n\t\t\tevents order.*\n\t\t}\n\t\tendpoint orders http://127.0.0.1/b {\n\t\t\tevents order.*\n\t\t}",
			expect: `\"orders\"`, // quotes are escaped in the JSON log
		},
		{
			name:   "negative delay",
			global: "endpoint orders http://127.0.0.1/a {\n\t\t\tevents order.*\n\t\t\tretry 5s -1s\n\t\t}",
			expect: "-1s",
		},
		{
			name:   "endpoint without events",
			global: "endpoint orders http://127.0.0.1/a {\n\t\t\ttimeout 5s\n\t\t}",
			expect: `\"orders\"`, // quotes are escaped in the JSON log
		},
		{
			name:   "bad secret",
			global: "endpoint orders http://127.0.0.1/a {\n\t\t\tevents order.*\n\t\t\tsecret not-a-secret\n\t\t}",
			expect: `\"orders\"`, // quotes are escaped in the JSON log
		},
		{
			name:   "bad event pattern",
			global: "endpoint orders http://127.0.0.1/a {\n\t\t\tevents order.>.x\n\t\t}",
			expect: "order.>.x",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := tt.rules
			if rules == "" {
				rules = "event order.created POST /orders 201"
			}
			config := "{\n\tadmin off\n"
			if tt.global != "" {
				config += "\twebhooks {\n\t\t" + tt.global + "\n\t}\n"
			}
			config += "}\n" + strings.Replace(site, "%s", rules, 1)

			dir := t.TempDir()
			path := filepath.Join(dir, "Caddyfile")
			if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(binary, "validate", "--config", path, "--adapter", "caddyfile")
			cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("caddy validate accepted the config:\n%s\noutput:\n%s", config, out)
			}
			if !strings.Contains(string(out), tt.expect) {
				t.Errorf("caddy validate error does not name %s:\n%s", tt.expect, out)
			}
		})
	}

	t.Run("valid config passes", func(t *testing.T) {
		dir := t.TempDir()
		data, err := os.ReadFile("testdata/demo.Caddyfile")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary, "validate", "--config", path, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("caddy validate rejected the demo config: %v\n%s", err, out)
		}
	})
}
