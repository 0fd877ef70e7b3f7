package emitter

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/internal/freeport"
	"github.com/caddy-webhooks/caddy-webhooks/internal/testpki"
)

// runNATSServer starts a standalone nats-server with JetStream on
// 127.0.0.1, as an external cluster of one, and returns it with its client
// URL. port 0 picks a free port.
func runNATSServer(t *testing.T, storeDir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "external-1",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		Username:   "caddy",
		Password:   "s3cret-pass",
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatalf("creating NATS server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("NATS server on port %d not ready after 10s", port)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func serverPort(t *testing.T, s *server.Server) int {
	t.Helper()
	return s.Addr().(*net.TCPAddr).Port
}

func TestExternalBrokerWaitsForOutage(t *testing.T) {
	// The server restarts on its port after the outage.
	natsStore := t.TempDir()
	s := runNATSServer(t, natsStore, freeTCPPort(t))
	port := serverPort(t, s)

	t.Setenv("TEST_NATS_PASSWORD", "s3cret-pass")
	cfg := &Config{
		URLs:         []string{fmt.Sprintf("nats://127.0.0.1:%d", port)},
		User:         "caddy",
		Password:     "{env.TEST_NATS_PASSWORD}",
		StartTimeout: caddy.Duration(20 * time.Second),
		DrainTimeout: caddy.Duration(10 * time.Second),
	}
	if err := cfg.Provision(); err != nil {
		t.Fatal(err)
	}
	logger, logs := observedLogger()
	hooks := newHookRecorder()
	b := acquire(t, cfg, logger, hooks.hooks())
	ensureStreams(t, b)

	state := b.State()
	if state.Mode != ModeExternal || !state.Connected || state.ServerName != "external-1" {
		t.Errorf("State() = %+v, want mode external, connected to external-1", state)
	}
	if got := testutil.ToFloat64(BrokerConnected); got != 1 {
		t.Errorf("broker_connected = %v while connected, want 1", got)
	}

	for i := range 50 {
		if err := b.Publisher().Enqueue(testEvent(fmt.Sprintf("before-%d", i))); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	waitForMessages(t, b.JetStream(), 50)

	// The outage: events enqueued while the server is down wait in the
	// queue or the reconnect buffer.
	s.Shutdown()
	s.WaitForShutdown()
	// nats.go runs the disconnect callback that records the time after the
	// status has changed, so disconnected_since may lag Connected briefly.
	waitFor(t, 10*time.Second, func() error {
		if state := b.State(); state.Connected || state.DisconnectedSince == nil {
			return fmt.Errorf("State() = %+v, want disconnected with disconnected_since", state)
		}
		return nil
	})
	for i := range 50 {
		if err := b.Publisher().Enqueue(testEvent(fmt.Sprintf("during-%d", i))); err != nil {
			t.Fatalf("Enqueue during the outage: %v", err)
		}
	}
	state = b.State()
	if state.DisconnectedSince == nil || state.PendingEvents == 0 {
		t.Errorf("State() during the outage = %+v, want disconnected_since and pending events", state)
	}
	if got := testutil.ToFloat64(BrokerConnected); got != 0 {
		t.Errorf("broker_connected = %v during the outage, want 0", got)
	}

	runNATSServer(t, natsStore, port)
	waitForMessages(t, b.JetStream(), 100)
	stored := storedEvents(t, b.JetStream())
	for i := range 50 {
		if _, ok := stored[fmt.Sprintf("during-%d", i)]; !ok {
			t.Errorf("event during-%d enqueued during the outage was not stored", i)
		}
	}
	if dropped := hooks.droppedIDs(DropPublishFailed); len(dropped) > 0 {
		t.Errorf("events dropped: %v", dropped)
	}
	state = b.State()
	if !state.Connected || state.Reconnects == 0 || state.DisconnectedSince != nil {
		t.Errorf("State() after the outage = %+v, want connected with a reconnect", state)
	}

	for _, entry := range logs.All() {
		for _, field := range entry.Context {
			if strings.Contains(field.String, "s3cret") {
				t.Errorf("log %q field %s contains the password", entry.Message, field.Key)
			}
		}
	}
	if logs.FilterMessageSnippet("reconnected").Len() == 0 {
		t.Errorf("no reconnect logged")
	}
}

func TestExternalBrokerWrongPassword(t *testing.T) {
	s := runNATSServer(t, t.TempDir(), 0)
	cfg := &Config{
		URLs:     []string{fmt.Sprintf("nats://127.0.0.1:%d", serverPort(t, s))},
		User:     "caddy",
		Password: "wrong-pass",
	}
	if err := cfg.Provision(); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(cfg, nil, Hooks{})
	if err == nil {
		t.Fatal("Acquire with a wrong password succeeded")
	}
	if !strings.Contains(err.Error(), "credentials are valid") || strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("Acquire error %q should point at the credentials without showing the password", err)
	}
}

// TestEmbeddedClusterFormsAndReplicates runs three embedded servers of one
// cluster in this process, each with its own store, and checks that
// streams with three replicas work and survive one server's restart.
func TestEmbeddedClusterFormsAndReplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	ports := []int{freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)}
	var routes []string
	for _, port := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", port))
	}
	configs := make([]*Config, 3)
	for i, port := range ports {
		configs[i] = &Config{
			StoreDir:     t.TempDir(),
			Replicas:     3,
			Cluster:      &Cluster{Name: "webhooks-test", Listen: fmt.Sprintf("127.0.0.1:%d", port), Routes: routes},
			StartTimeout: caddy.Duration(30 * time.Second),
			DrainTimeout: caddy.Duration(10 * time.Second),
		}
		if err := configs[i].Provision(); err != nil {
			t.Fatal(err)
		}
		if err := configs[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}

	brokers := make([]*Broker, 3)
	for i, cfg := range configs {
		brokers[i] = acquire(t, cfg, nil, Hooks{})
	}
	ensureClusterStreams(t, brokers[0], 3)

	state := brokers[1].State()
	if state.Mode != ModeCluster || state.Cluster != "webhooks-test" || state.Replicas != 3 {
		t.Errorf("State() = %+v, want mode cluster in webhooks-test with 3 replicas", state)
	}
	if name := brokers[2].server.Name(); name != configs[2].clusterServerName() {
		t.Errorf("server name = %q, want the derived %q", name, configs[2].clusterServerName())
	}

	// Restarting one server under the same store keeps its name, and the
	// cluster keeps accepting events through the others meanwhile.
	name := brokers[2].server.Name()
	if err := brokers[2].Release(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := brokers[0].Publisher().Enqueue(testEvent(fmt.Sprintf("e-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitForMessages(t, brokers[0].JetStream(), 20)

	brokers[2] = acquire(t, configs[2], nil, Hooks{})
	if got := brokers[2].server.Name(); got != name {
		t.Errorf("server name after restart = %q, want %q", got, name)
	}
	waitForMessages(t, brokers[2].JetStream(), 20)
}

// ensureClusterStreams creates the streams once the cluster has elected
// its JetStream leader.
func ensureClusterStreams(t *testing.T, b *Broker, replicas int) {
	t.Helper()
	waitFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return EnsureStreams(ctx, b.JetStream(), Layout{}, StreamOptions{Replicas: replicas})
	})
}

// freeTCPPort returns a port of 127.0.0.1 below the ephemeral range, so
// that no outgoing connection takes it before a server binds it again.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	ports, err := freeport.Pick(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// TestEmbeddedClusterAuthenticatesRoutes runs two embedded servers whose
// routes carry the cluster's user and password, and a third server that
// tries to join without them.
func TestEmbeddedClusterAuthenticatesRoutes(t *testing.T) {
	t.Setenv("TEST_ROUTE_PASSWORD", "route-s3cret")
	logger, logs := observedLogger()
	ports, configs := startRouteCluster(t, logger, func(ports []int) *Cluster {
		return &Cluster{
			Routes: []string{
				fmt.Sprintf("nats-route://127.0.0.1:%d", ports[0]),
				// A route with its own credentials keeps them.
				fmt.Sprintf("nats-route://webhooks-route:route-s3cret@127.0.0.1:%d", ports[1]),
			},
			User:     "webhooks-route",
			Password: "{env.TEST_ROUTE_PASSWORD}",
		}
	})

	// A server without the credentials is turned away by both members.
	requireRejected(t, ports, server.ClusterOpts{})

	// A reload with another password keeps the running server and logs a
	// warning.
	changed := *configs[0]
	changed.Cluster = configs[0].Cluster.clone()
	changed.Cluster.Password = "{env.TEST_ROUTE_PASSWORD_NEXT}"
	acquire(t, &changed, logger, Hooks{})
	if n := logs.FilterMessageSnippet("cluster change takes effect only after Caddy restarts").Len(); n != 1 {
		t.Errorf("logged %d restart warnings after a password change, want 1", n)
	}

	for _, entry := range logs.All() {
		for _, field := range entry.Context {
			if strings.Contains(field.String, "s3cret") || strings.Contains(fmt.Sprint(field.Interface), "s3cret") {
				t.Errorf("log %q field %s contains the route password", entry.Message, field.Key)
			}
		}
	}
}

// TestEmbeddedClusterEncryptsRoutes runs two embedded servers whose routes
// use TLS with certificates of one CA, and checks that servers without TLS
// or with a certificate of another CA cannot join.
func TestEmbeddedClusterEncryptsRoutes(t *testing.T) {
	ca := testpki.NewCA(t)
	routeCert := func(ca *testpki.CA, name string) (certFile, keyFile string) {
		_, certFile, keyFile = ca.Issue(t, testpki.Options{
			CommonName: name,
			IPs:        testpki.Loopback,
			Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		})
		return certFile, keyFile
	}
	logger, logs := observedLogger()
	members := 0
	ports, configs := startRouteCluster(t, logger, func(ports []int) *Cluster {
		members++
		certFile, keyFile := routeCert(ca, fmt.Sprintf("member-%d", members))
		return &Cluster{
			Routes: []string{fmt.Sprintf("nats-route://127.0.0.1:%d", ports[0]), fmt.Sprintf("nats-route://127.0.0.1:%d", ports[1])},
			TLS:    &RouteTLS{CA: ca.PEMFile, Certificate: certFile, Key: keyFile},
		}
	})
	if n := logs.FilterField(zap.Bool("routes_tls", true)).Len(); n != 2 {
		t.Errorf("%d start logs show routes_tls, want 2", n)
	}

	// The admin API's broker state names the peer and the route security.
	second := acquire(t, configs[1], logger, Hooks{})
	first := acquire(t, configs[0], logger, Hooks{})
	state := first.State()
	if want := []string{second.server.Name()}; !slices.Equal(state.ClusterPeers, want) {
		t.Errorf("cluster peers = %v, want %v", state.ClusterPeers, want)
	}
	if !state.RoutesTLS {
		t.Errorf("State() = %+v, want routes_tls", state)
	}
	if state.RoutesAuthenticated {
		t.Errorf("State() = %+v, want no routes_authenticated without a user", state)
	}

	t.Run("without TLS", func(t *testing.T) {
		requireRejected(t, ports, server.ClusterOpts{})
	})
	t.Run("certificate of another CA", func(t *testing.T) {
		other := testpki.NewCA(t)
		certFile, keyFile := routeCert(other, "intruder")
		config, err := (&RouteTLS{CA: other.PEMFile, Certificate: certFile, Key: keyFile}).config()
		if err != nil {
			t.Fatal(err)
		}
		requireRejected(t, ports, server.ClusterOpts{TLSConfig: config, TLSTimeout: routeTLSTimeout})
	})
}

// startRouteCluster starts two embedded servers of the cluster
// "webhooks-routes" on ports picked here, with the routes and route
// security that settings returns for each, and waits until each has a route
// to the other. It returns the route ports and the configs.
func startRouteCluster(t *testing.T, logger *zap.Logger, settings func(ports []int) *Cluster) ([]int, []*Config) {
	t.Helper()
	ports := []int{freeTCPPort(t), freeTCPPort(t)}
	brokers := make([]*Broker, len(ports))
	configs := make([]*Config, len(ports))
	for i, port := range ports {
		cluster := settings(ports)
		cluster.Name = "webhooks-routes"
		cluster.Listen = fmt.Sprintf("127.0.0.1:%d", port)
		cfg := &Config{
			StoreDir:     t.TempDir(),
			Cluster:      cluster,
			StartTimeout: caddy.Duration(30 * time.Second),
			DrainTimeout: caddy.Duration(10 * time.Second),
		}
		if err := cfg.Provision(); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		brokers[i] = acquire(t, cfg, logger, Hooks{})
		configs[i] = cfg
	}
	waitFor(t, 20*time.Second, func() error {
		for i, b := range brokers {
			if n := b.server.NumRoutes(); n < 1 {
				return fmt.Errorf("server %d has %d routes, want the other member", i, n)
			}
		}
		return nil
	})
	return ports, configs
}

// requireRejected starts a server with the cluster settings of cluster,
// and routes to ports, and fails the test if it gets a route into the
// cluster within three seconds.
func requireRejected(t *testing.T, ports []int, cluster server.ClusterOpts) {
	t.Helper()
	cluster.Name, cluster.Host, cluster.Port = "webhooks-routes", "127.0.0.1", freeTCPPort(t)
	rogue, err := server.NewServer(&server.Options{
		ServerName: "rogue",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		Cluster:    cluster,
		Routes:     server.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d,nats-route://127.0.0.1:%d", ports[0], ports[1])),
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go rogue.Start()
	t.Cleanup(rogue.Shutdown)
	if !rogue.ReadyForConnections(10 * time.Second) {
		t.Fatal("rogue server not ready after 10s")
	}
	time.Sleep(3 * time.Second) // nats-server retries a route every second (DEFAULT_ROUTE_CONNECT)
	if n := rogue.NumRoutes(); n != 0 {
		t.Errorf("rogue server has %d routes into the cluster, want 0", n)
	}
}
