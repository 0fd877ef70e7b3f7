package email

import (
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{Addr: "smtp.example.com:587", From: "API <noreply@example.com>"}
}

func TestConfigValidate(t *testing.T) {
	const password = "Sup3r-secret-Pa55"
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // part of the error, or "" for none
	}{
		{"minimal", func(c *Config) {}, ""},
		{"with credentials", func(c *Config) { c.Username, c.Password = "api", password }, ""},
		{"tls none", func(c *Config) { c.TLS = TLSNone }, ""},
		{"IPv6 address", func(c *Config) { c.Addr = "[2001:db8::25]:465" }, ""},
		{"missing address", func(c *Config) { c.Addr = "" }, "missing SMTP server address"},
		{"missing port", func(c *Config) { c.Addr = "smtp.example.com" }, `"smtp.example.com"`},
		{"missing host", func(c *Config) { c.Addr = ":587" }, "missing host"},
		{"port zero", func(c *Config) { c.Addr = "smtp.example.com:0" }, `invalid port "0"`},
		{"port too large", func(c *Config) { c.Addr = "smtp.example.com:70000" }, `invalid port "70000"`},
		{"port name", func(c *Config) { c.Addr = "smtp.example.com:submission" }, `invalid port "submission"`},
		{"missing sender", func(c *Config) { c.From = "" }, "missing sender address"},
		{"invalid sender", func(c *Config) { c.From = "API noreply" }, `invalid sender address "API noreply"`},
		{"sender with line break", func(c *Config) { c.From = "a@example.com\r\nBcc: x@example.com" }, "invalid sender address"},
		{"unknown mode", func(c *Config) { c.TLS = "ssl" }, `invalid tls mode "ssl": use starttls, implicit or none`},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "invalid timeout -1s"},
		{"username only", func(c *Config) { c.Username = "api" }, "set both username and password"},
		{"password only", func(c *Config) { c.Password = password }, "set both username and password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.change(&cfg)

			err := cfg.Validate()

			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate returned no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestConfigTLSModeDefault(t *testing.T) {
	tests := []struct {
		addr string
		mode TLSMode
		want TLSMode
	}{
		{"smtp.example.com:587", "", TLSStartTLS},
		{"smtp.example.com:25", "", TLSStartTLS},
		{"smtp.example.com:465", "", TLSImplicit},
		{"[2001:db8::25]:465", "", TLSImplicit},
		{"smtp.example.com:465", TLSStartTLS, TLSStartTLS},
		{"smtp.example.com:465", TLSNone, TLSNone},
		{"smtp.example.com:2465", TLSImplicit, TLSImplicit},
	}
	for _, tt := range tests {
		cfg := Config{Addr: tt.addr, TLS: tt.mode}
		if got := cfg.tlsMode(); got != tt.want {
			t.Errorf("mode of %s with tls %q = %q, want %q", tt.addr, tt.mode, got, tt.want)
		}
	}
}

func TestConfigTimeoutDefault(t *testing.T) {
	if got := (&Config{}).timeout(); got != DefaultTimeout {
		t.Errorf("default timeout = %s, want %s", got, DefaultTimeout)
	}
	if got := (&Config{Timeout: time.Second}).timeout(); got != time.Second {
		t.Errorf("timeout = %s, want 1s", got)
	}
}
