package emitter

import (
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Broker modes reported by BrokerState.Mode.
const (
	ModeEmbedded = "embedded" // a single embedded server
	ModeCluster  = "cluster"  // an embedded server in a cluster
	ModeExternal = "external" // a connection to an external cluster
)

// BrokerState is a snapshot of a broker's connection for the admin API.
type BrokerState struct {
	// Mode is ModeEmbedded, ModeCluster or ModeExternal.
	Mode string `json:"mode"`

	// Connected is true while the client connection is up.
	Connected bool `json:"connected"`

	// Status is the client connection's status as nats.go names it, such
	// as CONNECTED or RECONNECTING.
	Status string `json:"status"`

	// ServerName is the name of the NATS server the client is connected
	// to, empty while disconnected.
	ServerName string `json:"server_name,omitempty"`

	// Cluster is the cluster name of an embedded server in a cluster.
	Cluster string `json:"cluster,omitempty"`

	// ClusterPeers are the names of the servers of the cluster that the
	// embedded server has routes to, sorted. Only in a cluster.
	ClusterPeers []string `json:"cluster_peers,omitempty"`

	// RoutesAuthenticated and RoutesTLS report whether the routes of an
	// embedded cluster require the cluster's user and password, and TLS.
	RoutesAuthenticated bool `json:"routes_authenticated,omitempty"`
	RoutesTLS           bool `json:"routes_tls,omitempty"`

	// Replicas is the configured number of copies of each stream.
	Replicas int `json:"replicas"`

	// Prefix is the subject prefix of this deployment's streams and
	// subjects, empty for the default names.
	Prefix string `json:"prefix,omitempty"`

	// Reconnects counts the reconnections since the broker started.
	Reconnects uint64 `json:"reconnects"`

	// DisconnectedSince is when the connection was lost, set only while
	// it is down. It appears a moment after Connected turns false, once
	// the NATS client has run its disconnect callback.
	DisconnectedSince *time.Time `json:"disconnected_since,omitempty"`

	// PendingEvents counts the events accepted by the publisher and not
	// yet stored by JetStream, which includes those waiting for a
	// reconnection.
	PendingEvents int `json:"pending_events"`
}

// State returns the current state of the broker's connection.
func (b *Broker) State() BrokerState {
	conn := b.client.conn
	status := conn.Status()
	state := BrokerState{
		Mode:          b.mode,
		Connected:     status == nats.CONNECTED,
		Status:        status.String(),
		Cluster:       b.cluster,
		Replicas:      b.replicas,
		Prefix:        b.Layout().Prefix(),
		Reconnects:    conn.Stats().Reconnects,
		PendingEvents: b.publisher.Pending(),
	}
	if b.mode == ModeCluster {
		state.ClusterPeers = b.clusterPeers()
		state.RoutesAuthenticated = b.clusterSettings.User != ""
		state.RoutesTLS = b.clusterSettings.TLS != nil
	}
	if state.Connected {
		state.ServerName = conn.ConnectedServerName()
	}
	if since := b.client.disconnectedAt.Load(); since != 0 && !state.Connected {
		at := time.Unix(0, since)
		state.DisconnectedSince = &at
	}
	return state
}

// clusterPeers returns the sorted names of the servers that the embedded
// server has routes to. nats-server keeps several routes per peer, so the
// names are counted once.
func (b *Broker) clusterPeers() []string {
	routez, err := b.server.Routez(&server.RoutezOptions{})
	if err != nil {
		return nil
	}
	peers := make([]string, 0, len(routez.Routes))
	for _, route := range routez.Routes {
		if !slices.Contains(peers, route.RemoteName) {
			peers = append(peers, route.RemoteName)
		}
	}
	slices.Sort(peers)
	return peers
}

// BrokerConnected is the gauge caddy_webhooks_broker_connected: 1 while the
// client connection of every running broker of this process is up, 0 while
// one is down or no broker runs. Register it in the config's metrics
// registry.
var BrokerConnected = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
	Namespace: "caddy",
	Subsystem: "webhooks",
	Name:      "broker_connected",
	Help:      "1 while the connection to the NATS broker is up, 0 while it is down or no broker runs.",
}, brokersConnected)

func brokersConnected() float64 {
	running, connected := 0, 0
	brokers.Range(func(_, value any) bool {
		running++
		if value.(*brokerEntry).broker.client.conn.IsConnected() {
			connected++
		}
		return true
	})
	if running == 0 || connected < running {
		return 0
	}
	return 1
}
