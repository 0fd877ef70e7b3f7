package emitter

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"
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
			if !reflect.DeepEqual(got, tt.want) {
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

func TestConfigValidateExternal(t *testing.T) {
	valid := func() Config {
		cfg := Config{URLs: []string{"nats://127.0.0.1:4222", "tls://127.0.0.1:4223"}, Replicas: 3}
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
		{name: "provisioned", change: func(*Config) {}},
		{name: "user and password", change: func(c *Config) { c.User, c.Password = "caddy", "{env.NATS_PASSWORD}" }},
		{name: "credentials file", change: func(c *Config) { c.Credentials = "/etc/caddy/nats.creds" }},
		{name: "store dir", change: func(c *Config) { c.StoreDir = "/var/lib/nats" }, wantErr: `store_dir "/var/lib/nats" is set with urls`},
		{name: "cluster", change: func(c *Config) { c.Cluster = &Cluster{Name: "x", Listen: ":6222"} }, wantErr: "cluster and server_name configure the embedded server"},
		{name: "bad scheme", change: func(c *Config) { c.URLs = []string{"http://127.0.0.1:4222"} }, wantErr: `scheme "http"`},
		{name: "no host", change: func(c *Config) { c.URLs = []string{"nats-1:4222"} }, wantErr: `invalid NATS URL "nats-1:4222"`},
		{name: "password hidden", change: func(c *Config) { c.URLs = []string{"http://caddy:hunter2@127.0.0.1:4222"} }, wantErr: "caddy:xxxxx@127.0.0.1"},
		{name: "two auth methods", change: func(c *Config) { c.Credentials, c.NKey = "a.creds", "seed.nk" }, wantErr: "keep one"},
		{name: "user without password", change: func(c *Config) { c.User = "caddy" }, wantErr: "set both or neither"},
		{name: "certificate without key", change: func(c *Config) { c.TLS = &ClientTLS{ClientCertificate: "c.pem"} }, wantErr: "client_certificate needs its key file"},
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
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate error %q contains the password", err)
			}
		})
	}
}

func TestConfigBrokerKey(t *testing.T) {
	a := Config{URLs: []string{"nats://127.0.0.1:4222", "nats://127.0.0.1:4223"}, User: "caddy", Password: "one"}
	b := Config{URLs: []string{"nats://127.0.0.1:4223", "nats://127.0.0.1:4222"}, User: "caddy", Password: "one"}
	c := Config{URLs: a.URLs, User: "caddy", Password: "two"}
	if a.BrokerKey() != b.BrokerKey() {
		t.Errorf("URL order changed the key: %q and %q", a.BrokerKey(), b.BrokerKey())
	}
	if a.BrokerKey() == c.BrokerKey() {
		t.Errorf("a new password kept the key %q, so a reload would keep the old connection", a.BrokerKey())
	}
	if strings.Contains(a.BrokerKey(), "one") {
		t.Errorf("key %q contains the password", a.BrokerKey())
	}
	prefixed := a
	prefixed.Prefix = "acme"
	if a.BrokerKey() == prefixed.BrokerKey() {
		t.Errorf("prefix acme kept the key %q, so two prefixes would share one publisher", a.BrokerKey())
	}
	embedded := Config{StoreDir: "/var/lib/caddy/nats"}
	if embedded.BrokerKey() != "/var/lib/caddy/nats" {
		t.Errorf("embedded key = %q, want the store directory", embedded.BrokerKey())
	}
	embeddedPrefixed := Config{StoreDir: "/var/lib/caddy/nats", Prefix: "acme"}
	if embeddedPrefixed.BrokerKey() != embedded.BrokerKey() {
		t.Errorf("embedded key with prefix = %q, want the store directory, which one server owns", embeddedPrefixed.BrokerKey())
	}
}

func TestConfigServerNameStable(t *testing.T) {
	one := Config{StoreDir: "/var/lib/caddy/a", Cluster: &Cluster{Name: "webhooks", Listen: ":6222"}}
	two := Config{StoreDir: "/var/lib/caddy/b", Cluster: one.Cluster}
	if one.clusterServerName() != one.clusterServerName() {
		t.Errorf("derived server name changes between calls")
	}
	if one.clusterServerName() == two.clusterServerName() {
		t.Errorf("two store directories on one host got the same server name %q", one.clusterServerName())
	}
	if !validName(one.clusterServerName()) {
		t.Errorf("derived server name %q is not a valid NATS name", one.clusterServerName())
	}
	named := Config{StoreDir: "/x", ServerName: "web-1", Cluster: one.Cluster}
	if named.clusterServerName() != "web-1" {
		t.Errorf("server name = %q, want the configured web-1", named.clusterServerName())
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
		{name: "too many replicas", change: func(c *Config) { c.URLs, c.StoreDir, c.Replicas = []string{"nats://127.0.0.1:4222"}, "", 7 }, wantErr: "replicas 7"},
		{name: "replicas without cluster", change: func(c *Config) { c.Replicas = 3 }, wantErr: "a single embedded server keeps one copy"},
		{name: "server name without cluster", change: func(c *Config) { c.ServerName = "web-1" }, wantErr: `server_name "web-1" is set without cluster`},
		{name: "password without urls", change: func(c *Config) { c.User, c.Password = "caddy", "secret" }, wantErr: "set urls or remove them"},
		{name: "prefix", change: func(c *Config) { c.Prefix = "acme.prod" }},
		{name: "prefix with space", change: func(c *Config) { c.Prefix = "ac me" }, wantErr: `invalid prefix "ac me"`},
		{name: "cluster", change: func(c *Config) {
			c.Cluster = &Cluster{Name: "webhooks", Listen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.1:6223"}}
			c.Replicas = 3
		}},
		{name: "cluster name with space", change: func(c *Config) { c.Cluster = &Cluster{Name: "web hooks", Listen: "127.0.0.1:6222"} }, wantErr: `invalid cluster name "web hooks"`},
		{name: "cluster listen without port", change: func(c *Config) { c.Cluster = &Cluster{Name: "webhooks", Listen: "127.0.0.1"} }, wantErr: `invalid cluster listen address "127.0.0.1"`},
		{name: "cluster route scheme", change: func(c *Config) {
			c.Cluster = &Cluster{Name: "webhooks", Listen: ":6222", Routes: []string{"http://127.0.0.1:6222"}}
		}, wantErr: `invalid cluster route "http://127.0.0.1:6222"`},
		{name: "server name with space", change: func(c *Config) {
			c.Cluster = &Cluster{Name: "webhooks", Listen: ":6222"}
			c.ServerName = "web 1"
		}, wantErr: `invalid server_name "web 1"`},
		{name: "cluster user without password", change: func(c *Config) {
			c.Cluster = &Cluster{Name: "webhooks", Listen: ":6222", User: "route"}
		}, wantErr: "cluster user and password go together"},
		{name: "cluster user and password", change: func(c *Config) {
			c.Cluster = &Cluster{Name: "webhooks", Listen: ":6222", User: "route", Password: "{env.ROUTE_PASSWORD}"}
		}},
		{name: "cluster tls without key", change: func(c *Config) {
			c.Cluster = &Cluster{Name: "webhooks", Listen: ":6222", TLS: &RouteTLS{CA: "/ca.pem", Certificate: "/route.pem"}}
		}, wantErr: "missing cluster tls setting: set ca, certificate and key"},
		{name: "cluster tls file missing", change: func(c *Config) {
			c.Cluster = &Cluster{Name: "webhooks", Listen: ":6222", TLS: &RouteTLS{CA: "/nonexistent/ca.pem", Certificate: "/nonexistent/route.pem", Key: "/nonexistent/route.key"}}
		}, wantErr: `invalid cluster tls file "/nonexistent/ca.pem"`},
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

func TestClusterOptionsErrorHidesRoutePassword(t *testing.T) {
	cfg := &Config{
		StoreDir: t.TempDir(),
		// NATS splits route lists at commas, so this URL becomes two.
		Cluster: &Cluster{Name: "webhooks", Listen: "127.0.0.1:6222", Routes: []string{"nats-route://route:s3cret,x@127.0.0.1:6223"}},
	}
	if err := cfg.Cluster.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	_, err := clusterOptions(&server.Options{}, cfg)
	if err == nil {
		t.Fatal("clusterOptions accepted a route with a comma")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q contains the route password", err)
	}
}

func TestClusterOptionsRejectsEmptyRouteUser(t *testing.T) {
	t.Setenv("TEST_ROUTE_PASSWORD", "route-password")
	cfg := &Config{
		StoreDir: t.TempDir(),
		Cluster: &Cluster{
			Name: "webhooks", Listen: "127.0.0.1:6222",
			User: "{env.TEST_ROUTE_USER_UNSET}", Password: "{env.TEST_ROUTE_PASSWORD}",
		},
	}
	opts := &server.Options{}
	_, err := clusterOptions(opts, cfg)
	if err == nil {
		t.Fatal("clusterOptions accepted a route user that resolves to empty")
	}
	if !strings.Contains(err.Error(), `cluster user "{env.TEST_ROUTE_USER_UNSET}" is empty`) {
		t.Errorf("clusterOptions = %v, want an error about the empty user", err)
	}
	if opts.Cluster.Username != "" || opts.Cluster.Password != "" {
		t.Errorf("route credentials set to %q and %q despite the error", opts.Cluster.Username, opts.Cluster.Password)
	}
}
