package emitter

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// maxReplicas is the largest stream replication factor JetStream accepts.
const maxReplicas = 5

// ClientTLS is the TLS configuration of the connection to external NATS
// servers.
type ClientTLS struct {
	// PEM files with the certificate authorities that sign the servers'
	// certificates. Default: the system's root certificates.
	CA []string `json:"ca,omitempty"`

	// PEM file with the client certificate, for servers that verify
	// clients. Set it with client_key. Default: none.
	ClientCertificate string `json:"client_certificate,omitempty"`

	// PEM file with the client certificate's private key. Default: none.
	ClientKey string `json:"client_key,omitempty"`
}

// External reports whether the config connects to an existing NATS
// cluster instead of starting an embedded server.
func (c *Config) External() bool {
	return len(c.URLs) > 0
}

// StreamReplicas returns the number of copies of each stream: Replicas,
// or 1 when it is unset.
func (c *Config) StreamReplicas() int {
	return max(c.Replicas, 1)
}

// SharedBroker reports whether Caddy instances other than this one may use
// the broker: an external cluster, or an embedded server in a cluster.
func (c *Config) SharedBroker() bool {
	return c.External() || c.Cluster != nil
}

// RemovesStaleConsumers reports whether a config that runs alone in this
// process may delete the consumers of destinations it does not have. On a
// shared broker those may belong to another instance's config, so only
// RemoveStaleConsumers allows it there.
func (c *Config) RemovesStaleConsumers() bool {
	return !c.SharedBroker() || c.RemoveStaleConsumers
}

// BrokerKey identifies the broker of a provisioned config within this
// process: the store directory of an embedded server, or a hash of the
// connection settings and the prefix of an external cluster. Configs with
// equal keys share one broker. Configs with different prefixes get
// separate connections to an external cluster, but an embedded store runs
// one server, and Acquire rejects a prefix other than the one its broker
// started with.
func (c *Config) BrokerKey() string {
	if !c.External() {
		return c.StoreDir
	}
	// The hash covers the secrets too, so that a reload with new
	// credentials opens a new connection, without putting them in a key.
	h := sha256.New()
	urls := slices.Clone(c.URLs)
	slices.Sort(urls)
	parts := append(urls, "", c.Credentials, c.NKey, c.User, c.Password, c.Prefix)
	if c.TLS != nil {
		parts = append(parts, c.TLS.ClientCertificate, c.TLS.ClientKey)
		parts = append(parts, c.TLS.CA...)
	}
	for _, part := range parts {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "external:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// validateExternal checks the settings of a connection to an external
// cluster.
func (c *Config) validateExternal() error {
	if c.StoreDir != "" {
		return fmt.Errorf("store_dir %q is set with urls: the store belongs to the NATS servers then, so remove store_dir", c.StoreDir)
	}
	if c.Cluster != nil || c.ServerName != "" {
		return errors.New("cluster and server_name configure the embedded server: remove them, or remove urls to run embedded")
	}
	for _, raw := range c.URLs {
		if err := validateServerURL(raw); err != nil {
			return err
		}
	}

	methods := 0
	for _, set := range []bool{c.Credentials != "", c.NKey != "", c.User != "" || c.Password != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return errors.New("credentials, nkey and user/password are alternatives: keep one")
	}
	if (c.User == "") != (c.Password == "") {
		return errors.New("user and password go together: set both or neither")
	}
	if c.TLS != nil && (c.TLS.ClientCertificate == "") != (c.TLS.ClientKey == "") {
		return errors.New("tls client_certificate needs its key file: set both or neither")
	}
	return nil
}

// validateServerURL checks one URL of urls. Credentials in it are kept
// out of the message.
func validateServerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("invalid NATS URL %q: use the form nats://host:4222", redactURL(raw))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
		return nil
	default:
		return fmt.Errorf("invalid NATS URL %q: scheme %q is not one of nats, tls, ws or wss", redactURL(raw), u.Scheme)
	}
}

// redactURL hides the password of a URL with user information.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if strings.Contains(raw, "@") {
			return "(URL with credentials)"
		}
		return raw
	}
	return u.Redacted()
}

// externalOptions returns the client options for an external cluster:
// authentication, TLS, and reconnecting without limit.
func externalOptions(cfg *Config) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case cfg.Credentials != "":
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	case cfg.NKey != "":
		opt, err := nats.NkeyOptionFromSeed(cfg.NKey)
		if err != nil {
			return nil, fmt.Errorf("reading nkey seed file %q: %w; give the path of a file with an NKey seed", cfg.NKey, err)
		}
		opts = append(opts, opt)
	case cfg.User != "":
		repl := caddy.NewReplacer()
		opts = append(opts, nats.UserInfo(repl.ReplaceKnown(cfg.User, ""), repl.ReplaceKnown(cfg.Password, "")))
	}

	if cfg.TLS != nil {
		if len(cfg.TLS.CA) > 0 {
			opts = append(opts, nats.RootCAs(cfg.TLS.CA...))
		}
		if cfg.TLS.ClientCertificate != "" {
			opts = append(opts, nats.ClientCert(cfg.TLS.ClientCertificate, cfg.TLS.ClientKey))
		}
	}
	return opts, nil
}

// redactedURLs returns cfg.URLs without passwords, for logs.
func redactedURLs(cfg *Config) zap.Field {
	return zap.Strings("urls", redactURLs(cfg.URLs))
}

// redactURLs returns urls without passwords.
func redactURLs(urls []string) []string {
	redacted := make([]string, len(urls))
	for i, raw := range urls {
		redacted[i] = redactURL(raw)
	}
	return redacted
}
