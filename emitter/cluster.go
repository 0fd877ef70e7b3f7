package emitter

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// Cluster makes the embedded servers of several Caddy instances one
// JetStream cluster. Every instance lists the same routes, which may
// include its own address.
type Cluster struct {
	// Name of the cluster, the same on every instance. Required.
	Name string `json:"name,omitempty"`

	// Address on which the server accepts connections from the other
	// servers of the cluster, such as `10.0.0.1:6222`. The port must be
	// reachable from the other instances, and only from them: routes
	// carry every event, unencrypted unless TLS is set. Required.
	Listen string `json:"listen,omitempty"`

	// Route URLs of the cluster's servers, such as
	// `nats-route://10.0.0.2:6222`. Default: none, so this server waits
	// for the others to connect to it.
	Routes []string `json:"routes,omitempty"`

	// User name that the servers of the cluster present to each other on
	// their routes, the same on every instance. With User and Password
	// set, the server accepts routes only from servers that present them,
	// and presents them on its own routes. Default: none, so any server
	// that reaches the listen address can join the cluster.
	User string `json:"user,omitempty"`

	// Password that goes with User. Use a placeholder such as
	// `{env.NATS_ROUTE_PASSWORD}` or `{file./run/secrets/route}` to keep
	// it out of the config. Required with User.
	Password string `json:"password,omitempty"`

	// TLS encrypts the routes. Each server presents its certificate on
	// the routes it opens and accepts, and accepts only servers whose
	// certificates the configured CA signed. Default: none, so routes are
	// unencrypted.
	TLS *RouteTLS `json:"tls,omitempty"`
}

// RouteTLS contains the certificate files of the routes of an embedded
// cluster.
type RouteTLS struct {
	// PEM file with the certificate of the CA that signs the certificates
	// of every server of the cluster. Required.
	CA string `json:"ca,omitempty"`

	// PEM file with this server's certificate. It must be valid for the
	// host name or IP address in the other servers' route URLs to this
	// server, and for both server and client authentication, because a
	// server is both on its routes. Required.
	Certificate string `json:"certificate,omitempty"`

	// PEM file with the certificate's private key. Required.
	Key string `json:"key,omitempty"`
}

// routeTLSTimeout bounds the TLS handshake of a route, in seconds.
const routeTLSTimeout = 5.0

// config returns the TLS config of the routes: the same for the side
// that opens a route and the side that accepts it, with certificates
// required and verified on both.
func (t *RouteTLS) config() (*tls.Config, error) {
	config, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: t.Certificate,
		KeyFile:  t.Key,
		CaFile:   t.CA,
		Verify:   true,
		Timeout:  routeTLSTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("loading cluster tls files (certificate %q, key %q, ca %q) failed: %w; check that they are PEM files and that the key belongs to the certificate", t.Certificate, t.Key, t.CA, err)
	}
	config.ClientAuth = tls.RequireAndVerifyClientCert
	config.RootCAs = config.ClientCAs
	return config, nil
}

func (t *RouteTLS) validate() error {
	if t.CA == "" || t.Certificate == "" || t.Key == "" {
		return errors.New("missing cluster tls setting: set ca, certificate and key")
	}
	for _, file := range []string{t.CA, t.Certificate, t.Key} {
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("invalid cluster tls file %q: %w; give the path of a readable PEM file", file, err)
		}
	}
	return nil
}

// validateEmbedded checks the settings of the embedded server.
func (c *Config) validateEmbedded() error {
	if c.StoreDir == "" || !filepath.IsAbs(c.StoreDir) {
		return fmt.Errorf("invalid store_dir %q: must be an absolute path; call Provision before Validate", c.StoreDir)
	}
	if c.Credentials != "" || c.NKey != "" || c.User != "" || c.Password != "" || c.TLS != nil {
		return errors.New("credentials, nkey, user, password and tls configure the connection to urls: set urls or remove them")
	}
	if c.Cluster == nil {
		if c.ServerName != "" {
			return fmt.Errorf("server_name %q is set without cluster: it names a cluster member, so add cluster or remove it", c.ServerName)
		}
		if c.Replicas > 1 {
			return fmt.Errorf("invalid replicas %d: a single embedded server keeps one copy; add cluster or use urls", c.Replicas)
		}
		return nil
	}
	if c.ServerName != "" && !validName(c.ServerName) {
		return fmt.Errorf("invalid server_name %q: use letters, digits, '-', '_' and '.' only", c.ServerName)
	}
	return c.Cluster.validate()
}

func (cl *Cluster) validate() error {
	if !validName(cl.Name) {
		return fmt.Errorf("invalid cluster name %q: use letters, digits, '-', '_' and '.' only", cl.Name)
	}
	if _, _, err := splitListen(cl.Listen); err != nil {
		return err
	}
	for _, raw := range cl.Routes {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "nats-route" && u.Scheme != "nats") {
			return fmt.Errorf("invalid cluster route %q: use the form nats-route://host:6222", redactURL(raw))
		}
	}
	if (cl.User == "") != (cl.Password == "") {
		return errors.New("cluster user and password go together: set both, so that routes are authenticated, or neither")
	}
	if cl.TLS != nil {
		return cl.TLS.validate()
	}
	return nil
}

// clone returns a copy of cl that shares nothing with it.
func (cl *Cluster) clone() *Cluster {
	c := *cl
	c.Routes = slices.Clone(cl.Routes)
	if cl.TLS != nil {
		routeTLS := *cl.TLS
		c.TLS = &routeTLS
	}
	return &c
}

// equal reports whether cl and other configure the same cluster, routes
// and route security. A nil other equals nothing.
func (cl *Cluster) equal(other *Cluster) bool {
	if other == nil {
		return false
	}
	sameTLS := (cl.TLS == nil) == (other.TLS == nil) && (cl.TLS == nil || *cl.TLS == *other.TLS)
	return cl.Name == other.Name && cl.Listen == other.Listen && slices.Equal(cl.Routes, other.Routes) &&
		cl.User == other.User && cl.Password == other.Password && sameTLS
}

// routeCredentials returns the cluster's user and password with their
// placeholders replaced, or empty strings when they are unset.
func (cl *Cluster) routeCredentials() (user, password string) {
	if cl.User == "" {
		return "", ""
	}
	repl := caddy.NewReplacer()
	return repl.ReplaceKnown(cl.User, ""), repl.ReplaceKnown(cl.Password, "")
}

// splitListen parses the cluster listen address.
func splitListen(listen string) (host string, port int, err error) {
	host, portText, err := net.SplitHostPort(listen)
	if err == nil {
		port, err = strconv.Atoi(portText)
	}
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid cluster listen address %q: use host:port, such as 0.0.0.0:6222", listen)
	}
	return host, port, nil
}

// validName reports whether name is usable as a NATS server or cluster
// name: not empty, with no spaces, wildcards or other separators.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		ok := r == '-' || r == '_' || r == '.' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// clusterServerName returns ServerName, or one derived from the host name
// and the store directory. Both stay the same across restarts, and two
// instances on one machine differ by their store directories.
func (c *Config) clusterServerName() string {
	if c.ServerName != "" {
		return c.ServerName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "caddy"
	}
	host = strings.Map(func(r rune) rune {
		if validName(string(r)) {
			return r
		}
		return '-'
	}, host)
	sum := sha256.Sum256([]byte(c.StoreDir))
	return host + "-" + hex.EncodeToString(sum[:4])
}

// clusterOptions adds the cluster settings to opts. Routing in
// nats-server v2.15.3 starts only after the client listener, so the server
// listens for clients on a random loopback port, which a random token
// keeps closed to every client but this process's own.
func clusterOptions(opts *server.Options, cfg *Config) (token string, err error) {
	host, port, err := splitListen(cfg.Cluster.Listen)
	if err != nil {
		return "", err
	}
	routes := server.RoutesFromStr(strings.Join(cfg.Cluster.Routes, ","))
	if len(cfg.Cluster.Routes) > 0 && len(routes) != len(cfg.Cluster.Routes) {
		return "", fmt.Errorf("parsing cluster routes %q: use URLs such as nats-route://host:6222", redactURLs(cfg.Cluster.Routes))
	}

	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("generating the client token of the embedded server: %w", err)
	}
	token = hex.EncodeToString(secret)

	opts.ServerName = cfg.clusterServerName()
	opts.Cluster = server.ClusterOpts{Name: cfg.Cluster.Name, Host: host, Port: port}
	if cfg.Cluster.User != "" {
		user, password := cfg.Cluster.routeCredentials()
		if user == "" {
			return "", fmt.Errorf("cluster user %q is empty once its placeholders are replaced: set the variable or file it names", cfg.Cluster.User)
		}
		if password == "" {
			return "", fmt.Errorf("cluster password %q is empty once its placeholders are replaced: set the variable or file it names", cfg.Cluster.Password)
		}
		opts.Cluster.Username, opts.Cluster.Password = user, password
		// A server presents the credentials of the route URL, so the
		// routes without their own get the cluster's.
		for _, route := range routes {
			if route.User == nil {
				route.User = url.UserPassword(user, password)
			}
		}
	}
	if cfg.Cluster.TLS != nil {
		config, err := cfg.Cluster.TLS.config()
		if err != nil {
			return "", err
		}
		opts.Cluster.TLSConfig = config
		opts.Cluster.TLSTimeout = routeTLSTimeout
	}
	opts.Routes = routes
	opts.DontListen = false
	opts.Host = "127.0.0.1"
	opts.Port = server.RANDOM_PORT
	opts.Authorization = token
	return token, nil
}
