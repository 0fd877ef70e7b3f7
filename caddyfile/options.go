// Package caddyfile parses the Caddyfile global option `webhooks`: the
// broker (`nats`) and the destinations (`endpoint`). The root package
// registers the option with Caddy and turns the result into the app's JSON.
package caddyfile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-webhooks/caddy-webhooks/alerts"
	"github.com/caddy-webhooks/caddy-webhooks/delivery"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// Options is the configuration of the `webhooks` global option.
type Options struct {
	NATS      *emitter.Config
	Retention *emitter.Retention
	Endpoints []*delivery.Endpoint
	SMTP      *delivery.SMTP
	Alerts    *alerts.Config

	// Guard holds the global allow_private, allow_hosts and https_only,
	// which apply to every endpoint.
	Guard delivery.GlobalGuard
}

// ParseOptions parses one `webhooks` global option block into opts. Blocks
// that appear more than once add to the same opts.
//
//	webhooks {
//		allow_private
//		allow_hosts <host or CIDR...>
//		https_only
//		nats embedded {
//			store_dir     <path>
//			retention     <duration>
//			queue_size    <count>
//			start_timeout <duration>
//			drain_timeout <duration>
//			replicas      <count>
//			remove_stale_consumers
//			server_name   <name>
//			cluster <name> {
//				listen   <host:port>
//				routes   <nats-route://host:port...>
//				user     <name>
//				password <password>
//				tls {
//					ca          <pem file>
//					certificate <cert file> <key file>
//				}
//			}
//		}
//		nats <nats://host:port...> {
//			credentials <file> | nkey <seed file> | user <name> + password <password>
//			tls {
//				ca                 <pem file...>
//				client_certificate <cert file> <key file>
//			}
//			replicas, remove_stale_consumers, retention, queue_size,
//			start_timeout, drain_timeout as for embedded
//		}
//		retention {
//			events   <duration>
//			attempts <duration>
//		}
//		endpoint <name> <url> {
//			events          <type or pattern...>
//			secret          <whsec_...> [<whsec_...>...]
//			signing_key     <whsk_...> [<whsk_...>...]
//			header          <field> <value>
//			timeout         <duration>
//			retry           <delay...>
//			concurrency     <count>
//			rate            <count>/s|m|h
//			retry_after_max <duration>
//			disable_after   <duration>|off
//			ordered
//			allow_private
//			allow_hosts      <host or CIDR...>
//			https_only
//			follow_redirects
//			proxy            <url>
//			format           standard|cloudevents
//			tls {
//				ca                 <pem file...>
//				client_certificate <cert file> <key file>
//			}
//		}
//		email <name> {
//			events  <type or pattern...>
//			to      <address...>
//			cc      <address...>
//			subject <template>
//			body    <template>
//			html    <template>
//			timeout, retry, concurrency, rate, disable_after, ordered,
//			allow_private, allow_hosts as for endpoint
//		}
//		notify <name> slack|discord|teams|mattermost|googlechat|ntfy <url> {
//			events <type or pattern...>
//			text   <template>
//			every endpoint setting but format
//		}
//		smtp <host:port> {
//			username <name>
//			password <password>
//			from     <address>
//			tls      starttls|implicit|none
//			timeout  <duration>
//			ca       <pem file...>
//		}
//		alerts [<address...>] {
//			email    <address...>
//			notify   <destination...>
//			interval <duration>
//		}
//	}
//
// The endpoints are validated once the block has been read, so the global
// settings apply wherever they stand in it.
func ParseOptions(d *caddycf.Dispenser, opts *Options) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.Errf("unexpected argument %q after 'webhooks': its settings go in a block", d.Val())
	}

	// positions maps the endpoints of this block to their first token, for
	// the file and line of validation errors.
	positions := make(map[*delivery.Endpoint]caddycf.Token)
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "allow_private", "allow_hosts", "https_only":
			if err := parseGlobalGuard(d, &opts.Guard, seen); err != nil {
				return err
			}

		case "nats":
			if opts.NATS != nil {
				return d.Err("'nats' is set twice: keep one")
			}
			cfg, err := parseNATS(d)
			if err != nil {
				return err
			}
			opts.NATS = cfg

		case "retention":
			if opts.Retention != nil {
				return d.Err("'retention' is set twice: keep one")
			}
			retention, err := parseRetention(d)
			if err != nil {
				return err
			}
			opts.Retention = retention

		case "endpoint", "email", "notify":
			start := d.Token()
			ep, err := parseDestination(d)
			if err != nil {
				return err
			}
			positions[ep] = start
			for _, other := range opts.Endpoints {
				if other.Name == ep.Name {
					return d.Errf("two destinations are named %q: give each a unique name", ep.Name)
				}
			}
			opts.Endpoints = append(opts.Endpoints, ep)

		case "smtp":
			if opts.SMTP != nil {
				return d.Err("'smtp' is set twice: keep one")
			}
			smtp, err := parseSMTP(d)
			if err != nil {
				return err
			}
			opts.SMTP = smtp

		case "alerts":
			if opts.Alerts != nil {
				return d.Err("'alerts' is set twice: keep one")
			}
			cfg, err := parseAlerts(d)
			if err != nil {
				return err
			}
			opts.Alerts = cfg

		default:
			return d.Errf("unrecognized webhooks option %q: expected nats, retention, endpoint, email, notify, smtp, alerts, allow_private, allow_hosts or https_only", d.Val())
		}
	}
	return validateEndpoints(opts, positions)
}

// parseGlobalGuard parses one of the global allow_private, allow_hosts and
// https_only lines. allow_hosts may repeat and adds up.
func parseGlobalGuard(d *caddycf.Dispenser, guard *delivery.GlobalGuard, seen map[string]bool) error {
	name := d.Val()
	if seen[name] {
		return d.Errf("%q is set twice in the webhooks block: keep one", name)
	}

	var err error
	switch name {
	case "allow_private":
		guard.AllowPrivate, err = flag(d)
		seen[name] = true
	case "https_only":
		guard.HTTPSOnly, err = flag(d)
		seen[name] = true
	case "allow_hosts":
		var entries []string
		entries, err = allowHostsArgs(d, "'allow_hosts'")
		guard.AllowHosts = append(guard.AllowHosts, entries...)
	}
	return err
}

// validateEndpoints validates every endpoint with the global guard settings.
// Errors about an endpoint of the current block carry its file and line.
//
// NOTE: an endpoint of an earlier webhooks block is validated when that
// block ends. So a global allow_private or allow_hosts in a later block
// comes too late for the check of its URL, and belongs in the first block.
func validateEndpoints(opts *Options, positions map[*delivery.Endpoint]caddycf.Token) error {
	if err := opts.Guard.Validate(); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	for _, ep := range opts.Endpoints {
		ep.SetGlobalGuard(opts.Guard)
		err := ep.Validate()
		if err == nil {
			continue
		}
		if start, ok := positions[ep]; ok {
			return fmt.Errorf("%w, at %s:%d", err, start.File, start.Line)
		}
		return err
	}
	return nil
}

// allowHostsArgs returns the entries of an allow_hosts line, each checked.
func allowHostsArgs(d *caddycf.Dispenser, where string) ([]string, error) {
	entries := d.RemainingArgs()
	if len(entries) == 0 {
		return nil, d.Errf("%s needs at least one host name, IP address or CIDR", where)
	}
	if err := (delivery.GlobalGuard{AllowHosts: entries}).Validate(); err != nil {
		return nil, d.WrapErr(err)
	}
	return entries, nil
}

// parseNATS parses `nats embedded { ... }` or `nats <url...> { ... }`.
func parseNATS(d *caddycf.Dispenser) (*emitter.Config, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Err("'nats' needs a mode: 'nats embedded', or the URLs of a NATS cluster such as 'nats nats://nats-1:4222'")
	}
	cfg := new(emitter.Config)
	mode := "nats embedded"
	if args[0] == "embedded" {
		if len(args) > 1 {
			return nil, d.Errf("unexpected argument %q after 'nats embedded'", args[1])
		}
	} else {
		for _, arg := range args {
			if !strings.Contains(arg, "://") {
				return nil, d.Errf("unsupported nats mode %q: use 'embedded' or NATS URLs such as nats://nats-1:4222", arg)
			}
		}
		cfg.URLs = args
		mode = "nats <url>"
	}

	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("%q is set twice in '%s': keep one", name, mode)
		}
		seen[name] = true
		if err := checkNATSSetting(d, name, cfg.External()); err != nil {
			return nil, err
		}
		if err := parseNATSSetting(d, cfg); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Settings that only one kind of broker has.
var (
	embeddedOnlySettings = map[string]bool{"store_dir": true, "cluster": true, "server_name": true}
	externalOnlySettings = map[string]bool{"credentials": true, "nkey": true, "user": true, "password": true, "tls": true}
)

// checkNATSSetting rejects a setting that the chosen kind of broker does
// not have, naming the alternative.
func checkNATSSetting(d *caddycf.Dispenser, name string, external bool) error {
	switch {
	case external && embeddedOnlySettings[name]:
		return d.Errf("%q configures the embedded server and does not apply with NATS URLs: remove it, or use 'nats embedded'", name)
	case !external && externalOnlySettings[name]:
		return d.Errf("%q configures the connection to a NATS cluster and does not apply to 'nats embedded': remove it, or give NATS URLs instead of 'embedded'", name)
	}
	return nil
}

// parseNATSSetting parses one line of the nats block into cfg.
func parseNATSSetting(d *caddycf.Dispenser, cfg *emitter.Config) error {
	var err error
	switch d.Val() {
	case "prefix":
		cfg.Prefix, err = prefixArg(d)
	case "store_dir":
		cfg.StoreDir, err = singleArg(d)
	case "retention":
		cfg.Retention, err = durationArg(d)
	case "queue_size":
		cfg.QueueSize, err = countArg(d)
	case "start_timeout":
		cfg.StartTimeout, err = durationArg(d)
	case "drain_timeout":
		cfg.DrainTimeout, err = durationArg(d)
	case "replicas":
		cfg.Replicas, err = countArg(d)
	case "remove_stale_consumers":
		cfg.RemoveStaleConsumers, err = flag(d)
	case "server_name":
		cfg.ServerName, err = singleArg(d)
	case "cluster":
		cfg.Cluster, err = parseCluster(d)
	case "credentials":
		cfg.Credentials, err = singleArg(d)
	case "nkey":
		cfg.NKey, err = singleArg(d)
	case "user":
		cfg.User, err = singleArg(d)
	case "password":
		cfg.Password, err = singleArg(d)
	case "tls":
		cfg.TLS, err = parseNATSTLS(d)
	default:
		return d.Errf("unrecognized nats subdirective %q: expected prefix, store_dir, retention, queue_size, start_timeout, drain_timeout, replicas, remove_stale_consumers, cluster and server_name (embedded), or credentials, nkey, user, password and tls (with URLs)", d.Val())
	}
	return err
}

// prefixArg returns the prefix of the JetStream names, checked here so that
// the error carries the line.
func prefixArg(d *caddycf.Dispenser) (string, error) {
	prefix, err := singleArg(d)
	if err != nil {
		return "", err
	}
	if err := emitter.ValidatePrefix(prefix); err != nil {
		return "", d.WrapErr(err)
	}
	return prefix, nil
}

// parseCluster parses `cluster <name> { listen <addr>; routes <url...>;
// user <name>; password <password>; tls { … } }`. routes may repeat and
// adds up.
func parseCluster(d *caddycf.Dispenser) (*emitter.Cluster, error) {
	cluster := new(emitter.Cluster)
	if !d.AllArgs(&cluster.Name) {
		return nil, d.Err("'cluster' needs exactly one name, the same on every instance, such as 'cluster webhooks'")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "listen":
			if cluster.Listen != "" {
				return nil, d.Err("'listen' is set twice in 'cluster': keep one")
			}
			listen, err := singleArg(d)
			if err != nil {
				return nil, err
			}
			cluster.Listen = listen
		case "routes":
			routes := d.RemainingArgs()
			if len(routes) == 0 {
				return nil, d.Err("'routes' needs at least one URL, such as nats-route://10.0.0.2:6222")
			}
			cluster.Routes = append(cluster.Routes, routes...)
		case "user", "password":
			name := d.Val()
			value, err := singleArg(d)
			if err != nil {
				return nil, err
			}
			target := &cluster.User
			if name == "password" {
				target = &cluster.Password
			}
			if *target != "" {
				return nil, d.Errf("'%s' is set twice in 'cluster': keep one", name)
			}
			*target = value
		case "tls":
			if cluster.TLS != nil {
				return nil, d.Err("'tls' is set twice in 'cluster': keep one")
			}
			routeTLS, err := parseRouteTLS(d)
			if err != nil {
				return nil, err
			}
			cluster.TLS = routeTLS
		default:
			return nil, d.Errf("unrecognized cluster subdirective %q: expected listen, routes, user, password or tls", d.Val())
		}
	}
	if cluster.Listen == "" {
		return nil, d.Errf("cluster %q needs 'listen <host:port>', the address the other servers connect to", cluster.Name)
	}
	return cluster, nil
}

// parseRouteTLS parses `tls { ca <file>; certificate <cert file> <key file> }`
// in a cluster block.
func parseRouteTLS(d *caddycf.Dispenser) (*emitter.RouteTLS, error) {
	if d.NextArg() {
		return nil, d.Errf("unexpected argument %q after 'tls' of cluster: its settings go in a block", d.Val())
	}
	cfg := new(emitter.RouteTLS)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "ca":
			if cfg.CA != "" {
				return nil, d.Err("'ca' is set twice in the tls block of cluster: keep one")
			}
			ca, err := singleArg(d)
			if err != nil {
				return nil, err
			}
			cfg.CA = ca
		case "certificate":
			if cfg.Certificate != "" {
				return nil, d.Err("'certificate' is set twice in the tls block of cluster: keep one")
			}
			if !d.AllArgs(&cfg.Certificate, &cfg.Key) {
				return nil, d.Err("'certificate' in the tls block of cluster needs a certificate file and a key file")
			}
		default:
			return nil, d.Errf("unrecognized tls subdirective %q in cluster: expected ca or certificate", d.Val())
		}
	}
	if cfg.CA == "" || cfg.Certificate == "" {
		return nil, d.Err("the tls block of cluster needs both 'ca <file>' and 'certificate <cert file> <key file>'")
	}
	return cfg, nil
}

// parseNATSTLS parses the tls block of a connection to NATS URLs. ca may
// repeat and adds up.
func parseNATSTLS(d *caddycf.Dispenser) (*emitter.ClientTLS, error) {
	if d.NextArg() {
		return nil, d.Errf("unexpected argument %q after 'tls' of nats: its settings go in a block", d.Val())
	}
	cfg := new(emitter.ClientTLS)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "ca":
			files := d.RemainingArgs()
			if len(files) == 0 {
				return nil, d.Err("'ca' in the tls block of nats needs at least one PEM file")
			}
			cfg.CA = append(cfg.CA, files...)
		case "client_certificate":
			if cfg.ClientCertificate != "" {
				return nil, d.Err("'client_certificate' is set twice in the tls block of nats: keep one")
			}
			if !d.AllArgs(&cfg.ClientCertificate, &cfg.ClientKey) {
				return nil, d.Err("'client_certificate' in the tls block of nats needs a certificate file and a key file")
			}
		default:
			return nil, d.Errf("unrecognized tls subdirective %q in nats: expected ca or client_certificate", d.Val())
		}
	}
	if len(cfg.CA) == 0 && cfg.ClientCertificate == "" {
		return nil, d.Err("the tls block of nats is empty: add ca or client_certificate, or remove it")
	}
	return cfg, nil
}

// parseRetention parses the retention block.
func parseRetention(d *caddycf.Dispenser) (*emitter.Retention, error) {
	if d.NextArg() {
		return nil, d.Errf("unexpected argument %q after 'retention': its settings go in a block, such as 'retention { events 7d }'", d.Val())
	}
	retention := new(emitter.Retention)
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if seen[d.Val()] {
			return nil, d.Errf("%q is set twice in 'retention': keep one", d.Val())
		}
		seen[d.Val()] = true

		var err error
		switch d.Val() {
		case "events":
			retention.Events, err = durationArg(d)
		case "attempts":
			retention.Attempts, err = durationArg(d)
		default:
			return nil, d.Errf("unrecognized retention subdirective %q: expected events or attempts", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	if len(seen) == 0 {
		return nil, d.Err("the retention block is empty: add events or attempts, or remove it")
	}
	return retention, nil
}

// repeatableEndpointSettings are the endpoint subdirectives that may appear
// more than once and add up.
var repeatableEndpointSettings = map[string]bool{
	"events":      true,
	"to":          true,
	"cc":          true,
	"secret":      true,
	"signing_key": true,
	"header":      true,
	"allow_hosts": true,
}

// parseDestination parses an endpoint, email or notify block. They share
// the endpoint settings; email adds its message and has no URL, and notify
// names a chat format and adds its text.
func parseDestination(d *caddycf.Dispenser) (*delivery.Endpoint, error) {
	kind := d.Val()
	ep := new(delivery.Endpoint)
	switch kind {
	case "endpoint":
		if !d.Args(&ep.Name, &ep.URL) {
			return nil, d.Err("'endpoint' needs a name and a URL: endpoint <name> <url> { events ... }")
		}
	case "email":
		if !d.Args(&ep.Name) {
			return nil, d.Err("'email' needs a name: email <name> { events ...; to <address...> }")
		}
		ep.Email = new(delivery.Email)
	case "notify":
		if !d.Args(&ep.Name, &ep.Format, &ep.URL) {
			return nil, d.Err("'notify' needs a name, a chat format and a URL: notify <name> slack <url> { events ... }")
		}
		if ep.Kind() != "notify" {
			return nil, d.Errf("invalid chat format %q of notify %q: use slack, discord, teams, mattermost, googlechat or ntfy", ep.Format, ep.Name)
		}
	}
	if d.NextArg() {
		return nil, d.Errf("unexpected argument %q after %s %q: its settings go in a block", d.Val(), kind, ep.Name)
	}

	// Every setting but those in repeatableEndpointSettings takes one value.
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("%q is set twice in endpoint %q: keep one", name, ep.Name)
		}
		if !repeatableEndpointSettings[name] {
			seen[name] = true
		}

		var err error
		switch name {
		case "events":
			patterns := d.RemainingArgs()
			if len(patterns) == 0 {
				return nil, d.Errf("'events' of endpoint %q needs at least one event type or pattern", ep.Name)
			}
			for _, p := range patterns {
				if err := emitter.ValidateEventPattern(p); err != nil {
					return nil, d.Errf("endpoint %q: %v", ep.Name, err)
				}
			}
			ep.Events = append(ep.Events, patterns...)

		case "secret":
			secrets := d.RemainingArgs()
			if len(secrets) == 0 {
				return nil, d.Errf("'secret' of endpoint %q needs a value such as whsec_... or {env.NAME}", ep.Name)
			}
			ep.Secrets = append(ep.Secrets, secrets...)

		case "signing_key":
			keys := d.RemainingArgs()
			if len(keys) == 0 {
				return nil, d.Errf("'signing_key' of endpoint %q needs a value such as whsk_... or {env.NAME}", ep.Name)
			}
			ep.SigningKeys = append(ep.SigningKeys, keys...)

		case "header":
			var field, value string
			if !d.AllArgs(&field, &value) {
				return nil, d.Errf("'header' of endpoint %q needs a field and a value", ep.Name)
			}
			if ep.Headers == nil {
				ep.Headers = make(map[string][]string)
			}
			ep.Headers.Add(field, value)

		case "timeout":
			ep.Timeout, err = durationArg(d)

		case "retry":
			delays := d.RemainingArgs()
			if len(delays) == 0 {
				return nil, d.Errf("'retry' of endpoint %q needs at least one delay, such as 'retry 5s 5m 30m'", ep.Name)
			}
			for _, s := range delays {
				delay, err := parseDuration(d, "retry", s)
				if err != nil {
					return nil, err
				}
				ep.Retry = append(ep.Retry, delay)
			}

		case "concurrency":
			ep.Concurrency, err = countArg(d)

		case "rate":
			ep.Rate, err = rateArg(d)

		case "retry_after_max":
			ep.RetryAfterMax, err = durationArg(d)

		case "disable_after":
			ep.DisableAfter, err = disableAfterArg(d)

		case "ordered":
			ep.Ordered, err = flag(d)

		case "allow_private":
			ep.AllowPrivate, err = flag(d)

		case "allow_hosts":
			var entries []string
			entries, err = allowHostsArgs(d, fmt.Sprintf("'allow_hosts' of endpoint %q", ep.Name))
			ep.AllowHosts = append(ep.AllowHosts, entries...)

		case "https_only":
			ep.HTTPSOnly, err = flag(d)

		case "follow_redirects":
			ep.FollowRedirects, err = flag(d)

		case "proxy":
			ep.Proxy, err = singleArg(d)

		case "format":
			if kind != "endpoint" {
				return nil, d.Errf("'format' does not apply to %s %q: remove it", kind, ep.Name)
			}
			ep.Format, err = formatArg(d, ep.Name)

		case "text":
			if kind != "notify" {
				return nil, d.Errf("'text' applies to notify destinations, not to %s %q: remove it", kind, ep.Name)
			}
			ep.Text, err = singleArg(d)

		case "to", "cc", "subject", "body", "html":
			if kind != "email" {
				return nil, d.Errf("%q applies to email destinations, not to %s %q: remove it", name, kind, ep.Name)
			}
			err = parseEmailLine(d, ep.Email)

		case "tls":
			ep.TLS, err = parseTLS(d, ep.Name)

		default:
			return nil, d.Errf("unrecognized subdirective %q in %s %q: expected events, secret, signing_key, header, timeout, retry, concurrency, rate, retry_after_max, disable_after, ordered, allow_private, allow_hosts, https_only, follow_redirects, proxy, format or tls; e-mail adds to, cc, subject, body and html, and notify adds text", d.Val(), kind, ep.Name)
		}
		if err != nil {
			return nil, err
		}
	}

	if len(ep.Events) == 0 {
		return nil, d.Errf("%s %q has no events: add 'events <type or pattern...>' to its block", kind, ep.Name)
	}
	if ep.Email != nil && len(ep.Email.To) == 0 {
		return nil, d.Errf("email %q has no recipients: add 'to <address...>' to its block", ep.Name)
	}
	// ParseOptions validates the endpoint at the end of the block, when the
	// global settings are known.
	return ep, nil
}

// parseTLS parses the tls block of an endpoint. ca may repeat and adds up.
func parseTLS(d *caddycf.Dispenser, endpoint string) (*delivery.TLS, error) {
	if d.NextArg() {
		return nil, d.Errf("unexpected argument %q after 'tls' of endpoint %q: its settings go in a block", d.Val(), endpoint)
	}
	cfg := new(delivery.TLS)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "ca":
			files := d.RemainingArgs()
			if len(files) == 0 {
				return nil, d.Errf("'ca' in the tls block of endpoint %q needs at least one PEM file", endpoint)
			}
			cfg.CA = append(cfg.CA, files...)

		case "client_certificate":
			if cfg.ClientCertificate != nil {
				return nil, d.Errf("'client_certificate' is set twice in the tls block of endpoint %q: keep one", endpoint)
			}
			cc := new(delivery.ClientCertificate)
			if !d.AllArgs(&cc.Certificate, &cc.Key) {
				return nil, d.Errf("'client_certificate' in the tls block of endpoint %q needs a certificate file and a key file", endpoint)
			}
			cfg.ClientCertificate = cc

		default:
			return nil, d.Errf("unrecognized tls subdirective %q in endpoint %q: expected ca or client_certificate", d.Val(), endpoint)
		}
	}
	if len(cfg.CA) == 0 && cfg.ClientCertificate == nil {
		return nil, d.Errf("the tls block of endpoint %q is empty: add ca or client_certificate, or remove it", endpoint)
	}
	return cfg, nil
}

// singleArg returns the one argument of the current subdirective.
func singleArg(d *caddycf.Dispenser) (string, error) {
	name := d.Val()
	var value string
	if !d.AllArgs(&value) {
		return "", d.Errf("%q needs exactly one value", name)
	}
	return value, nil
}

// formatArg returns the body format of an endpoint, checked here so that the
// error carries the line.
func formatArg(d *caddycf.Dispenser, endpoint string) (string, error) {
	format, err := singleArg(d)
	if err != nil {
		return "", err
	}
	if format != delivery.FormatStandard && format != delivery.FormatCloudEvents {
		return "", d.Errf("invalid format %q of endpoint %q: use %s or %s", format, endpoint, delivery.FormatStandard, delivery.FormatCloudEvents)
	}
	return format, nil
}

func durationArg(d *caddycf.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	s, err := singleArg(d)
	if err != nil {
		return 0, err
	}
	return parseDuration(d, name, s)
}

// parseDuration accepts Go durations plus days ("7d"); negative values are
// rejected because every duration here is a wait or a limit.
func parseDuration(d *caddycf.Dispenser, name, s string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return 0, d.Errf("invalid duration %q for %q: use a value such as 30s, 5m, 2h or 7d", s, name)
	}
	if dur < 0 {
		return 0, d.Errf("negative duration %q for %q: use zero or more", s, name)
	}
	return caddy.Duration(dur), nil
}

// disableAfterArg parses a duration, or "off", which turns the check off
// like 0.
func disableAfterArg(d *caddycf.Dispenser) (*caddy.Duration, error) {
	s, err := singleArg(d)
	if err != nil {
		return nil, err
	}
	if s == "off" {
		off := caddy.Duration(0)
		return &off, nil
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur < 0 {
		return nil, d.Errf("invalid disable_after %q: use a duration such as 5d or 12h, or off", s)
	}
	value := caddy.Duration(dur)
	return &value, nil
}

func countArg(d *caddycf.Dispenser) (int, error) {
	name := d.Val()
	s, err := singleArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, d.Errf("invalid %s %q: use a whole number of 1 or more", name, s)
	}
	return n, nil
}

// rateArg parses "<count>/s", "<count>/m" or "<count>/h" into a rate per
// second.
func rateArg(d *caddycf.Dispenser) (float64, error) {
	s, err := singleArg(d)
	if err != nil {
		return 0, err
	}
	countText, unit, found := strings.Cut(s, "/")
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	count, convErr := strconv.ParseFloat(countText, 64)
	if !found || per == 0 || convErr != nil || !(count > 0) || math.IsInf(count, 1) {
		return 0, d.Errf("invalid rate %q: use a count per second, minute or hour, such as 50/s, 600/m or 1000/h", s)
	}
	return count / per.Seconds(), nil
}

func flag(d *caddycf.Dispenser) (bool, error) {
	name := d.Val()
	if d.NextArg() {
		return false, d.Errf("%q takes no value, but got %q", name, d.Val())
	}
	return true, nil
}
