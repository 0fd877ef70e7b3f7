package emitter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestConfigProvision(t *testing.T) {
	dataHome := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dataHome)
	workDir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{
			name: "defaults",
			in:   Config{},
			want: Config{
				StoreDir:     filepath.Join(dataHome, "caddy", "webhooks", "nats"),
				Retention:    caddy.Duration(7 * 24 * time.Hour),
				QueueSize:    10000,
				StartTimeout: caddy.Duration(60 * time.Second),
				DrainTimeout: caddy.Duration(15 * time.Second),
			},
		},
		{
			name: "relative store dir made absolute",
			in:   Config{StoreDir: "data/../nats", QueueSize: 5},
			want: Config{
				StoreDir:     filepath.Join(workDir, "nats"),
				Retention:    caddy.Duration(DefaultEventsMaxAge),
				QueueSize:    5,
				StartTimeout: caddy.Duration(DefaultStartTimeout),
				DrainTimeout: caddy.Duration(DefaultDrainTimeout),
			},
		},
		{
			name: "explicit values kept",
			in: Config{
				StoreDir:     "/var/lib/caddy/nats",
				Retention:    caddy.Duration(time.Hour),
				QueueSize:    42,
				StartTimeout: caddy.Duration(2 * time.Minute),
				DrainTimeout: caddy.Duration(time.Second),
			},
			want: Config{
				StoreDir:     "/var/lib/caddy/nats",
				Retention:    caddy.Duration(time.Hour),
				QueueSize:    42,
				StartTimeout: caddy.Duration(2 * time.Minute),
				DrainTimeout: caddy.Duration(time.Second),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			if err := got.Provision(); err != nil {
				t.Fatalf("Provision: %v", err)
			}
			if got != tt.want {
				t.Errorf("Provision() = %+v, want %+v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate after Provision: %v", err)
			}
		})
	}

	if _, err := os.Stat(filepath.Join(dataHome, "caddy")); !os.IsNotExist(err) {
		t.Errorf("Provision created the data directory (stat error %v)", err)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		cfg := Config{StoreDir: "/var/lib/caddy/nats"}
		if err := cfg.Provision(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{name: "provisioned defaults", change: func(*Config) {}},
		{name: "relative store dir", change: func(c *Config) { c.StoreDir = "nats" }, wantErr: `store_dir "nats"`},
		{name: "empty store dir", change: func(c *Config) { c.StoreDir = "" }, wantErr: `store_dir ""`},
		{name: "negative retention", change: func(c *Config) { c.Retention = -1 }, wantErr: "retention -1ns"},
		{name: "retention below minimum", change: func(c *Config) { c.Retention = caddy.Duration(time.Second) }, wantErr: "retention 1s"},
		{name: "negative queue size", change: func(c *Config) { c.QueueSize = -3 }, wantErr: "queue_size -3"},
		{name: "huge queue size", change: func(c *Config) { c.QueueSize = 2_000_000 }, wantErr: "queue_size 2000000"},
		{name: "negative start timeout", change: func(c *Config) { c.StartTimeout = caddy.Duration(-time.Second) }, wantErr: "start_timeout -1s"},
		{name: "negative drain timeout", change: func(c *Config) { c.DrainTimeout = caddy.Duration(-time.Second) }, wantErr: "drain_timeout -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.change(&cfg)
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Validate accepted the config, want an error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Validate error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}
