// Package caddyfile parses the Caddyfile global option `webhooks`: the
// broker (`nats`) and the destinations (`endpoint`). The root package
// registers the option with Caddy and turns the result into the app's JSON.
package caddyfile

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// Options is what the `webhooks` global option configures.
type Options struct {
	NATS      *emitter.Config
	Endpoints []*delivery.Endpoint
}

// ParseOptions parses one `webhooks` global option block into opts. Blocks
// that appear more than once add to the same opts.
//
//	webhooks {
//		nats embedded {
//			store_dir     <path>
//			retention     <duration>
//			queue_size    <count>
//			start_timeout <duration>
//			drain_timeout <duration>
//		}
//		endpoint <name> <url> {
//			events          <type or pattern...>
//			secret          <whsec_...> [<whsec_...>...]
//			header          <field> <value>
//			timeout         <duration>
//			retry           <delay...>
//			concurrency     <count>
//			rate            <count>/s|m|h
//			retry_after_max <duration>
//			ordered
//			allow_private
//		}
//	}
func ParseOptions(d *caddycf.Dispenser, opts *Options) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.Errf("unexpected argument %q after 'webhooks': its settings go in a block", d.Val())
	}

	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "nats":
			if opts.NATS != nil {
				return d.Err("'nats' is set twice: keep one")
			}
			cfg, err := parseNATS(d)
			if err != nil {
				return err
			}
			opts.NATS = cfg

		case "endpoint":
			ep, err := parseEndpoint(d)
			if err != nil {
				return err
			}
			for _, other := range opts.Endpoints {
				if other.Name == ep.Name {
					return d.Errf("two endpoints are named %q: give each a unique name", ep.Name)
				}
			}
			opts.Endpoints = append(opts.Endpoints, ep)

		default:
			return d.Errf("unrecognized webhooks option %q: expected nats or endpoint", d.Val())
		}
	}
	return nil
}

func parseNATS(d *caddycf.Dispenser) (*emitter.Config, error) {
	if !d.NextArg() {
		return nil, d.Err("'nats' needs a mode: 'nats embedded'")
	}
	if mode := d.Val(); mode != "embedded" {
		return nil, d.Errf("unsupported nats mode %q: only 'embedded' is available in this version", mode)
	}
	if d.NextArg() {
		return nil, d.Errf("unexpected argument %q after 'nats embedded'", d.Val())
	}

	cfg := new(emitter.Config)
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if seen[d.Val()] {
			return nil, d.Errf("%q is set twice in 'nats embedded': keep one", d.Val())
		}
		seen[d.Val()] = true

		var err error
		switch d.Val() {
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
		default:
			return nil, d.Errf("unrecognized nats subdirective %q: expected store_dir, retention, queue_size, start_timeout or drain_timeout", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func parseEndpoint(d *caddycf.Dispenser) (*delivery.Endpoint, error) {
	ep := new(delivery.Endpoint)
	if !d.Args(&ep.Name, &ep.URL) {
		return nil, d.Err("'endpoint' needs a name and a URL: endpoint <name> <url> { events ... }")
	}
	if d.NextArg() {
		return nil, d.Errf("unexpected argument %q after the URL of endpoint %q", d.Val(), ep.Name)
	}

	// events, secret and header may repeat and add up; every other
	// setting takes one value.
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("%q is set twice in endpoint %q: keep one", name, ep.Name)
		}
		if name != "events" && name != "secret" && name != "header" {
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

		case "ordered":
			ep.Ordered, err = flag(d)

		case "allow_private":
			ep.AllowPrivate, err = flag(d)

		default:
			return nil, d.Errf("unrecognized subdirective %q in endpoint %q: expected events, secret, header, timeout, retry, concurrency, rate, retry_after_max, ordered or allow_private", d.Val(), ep.Name)
		}
		if err != nil {
			return nil, err
		}
	}

	if len(ep.Events) == 0 {
		return nil, d.Errf("endpoint %q has no events: add 'events <type or pattern...>' to its block", ep.Name)
	}
	// Checking now, and not only when Caddy provisions the app, gives the
	// error a file and line. Secrets with placeholders are checked once
	// resolved.
	if err := ep.Validate(); err != nil {
		return nil, d.WrapErr(err)
	}
	return ep, nil
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
