package caddyfile

import (
	"time"

	caddycf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-webhooks/caddy-webhooks/alerts"
	"github.com/caddy-webhooks/caddy-webhooks/delivery"
)

// parseEmailLine parses one of the to, cc, subject, body and html lines of
// an email block. to and cc may repeat and add up.
func parseEmailLine(d *caddycf.Dispenser, msg *delivery.Email) error {
	name := d.Val()
	switch name {
	case "to", "cc":
		addrs := d.RemainingArgs()
		if len(addrs) == 0 {
			return d.Errf("%q needs at least one address, such as ops@example.com", name)
		}
		if name == "to" {
			msg.To = append(msg.To, addrs...)
		} else {
			msg.Cc = append(msg.Cc, addrs...)
		}
		return nil
	}

	value, err := singleArg(d)
	if err != nil {
		return err
	}
	switch name {
	case "subject":
		msg.Subject = value
	case "body":
		msg.Body = value
	case "html":
		msg.HTML = value
	}
	return nil
}

// parseSMTP parses the smtp block:
//
//	smtp <host:port> {
//		username <name>
//		password <password>
//		from     <address>
//		tls      starttls|implicit|none
//		timeout  <duration>
//		ca       <pem file...>
//	}
func parseSMTP(d *caddycf.Dispenser) (*delivery.SMTP, error) {
	smtp := new(delivery.SMTP)
	if !d.Args(&smtp.Address) {
		return nil, d.Err("'smtp' needs the server address: smtp <host:port> { from ... }")
	}
	if d.NextArg() {
		return nil, d.Errf("unexpected argument %q after the smtp address: its settings go in a block", d.Val())
	}

	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] && name != "ca" {
			return nil, d.Errf("%q is set twice in smtp: keep one", name)
		}
		seen[name] = true

		var err error
		switch name {
		case "username":
			smtp.Username, err = singleArg(d)
		case "password":
			smtp.Password, err = singleArg(d)
		case "from":
			smtp.From, err = singleArg(d)
		case "tls":
			smtp.TLS, err = singleArg(d)
			if err == nil && smtp.TLS != "starttls" && smtp.TLS != "implicit" && smtp.TLS != "none" {
				err = d.Errf("invalid smtp tls %q: use starttls, implicit or none", smtp.TLS)
			}
		case "timeout":
			smtp.Timeout, err = durationArg(d)
		case "ca":
			files := d.RemainingArgs()
			if len(files) == 0 {
				return nil, d.Err("'ca' in smtp needs at least one PEM file")
			}
			smtp.CA = append(smtp.CA, files...)
		default:
			return nil, d.Errf("unrecognized smtp subdirective %q: expected username, password, from, tls, timeout or ca", name)
		}
		if err != nil {
			return nil, err
		}
	}
	if smtp.From == "" {
		return nil, d.Err(`smtp has no sender: add 'from "API <noreply@example.com>"' to its block`)
	}
	return smtp, nil
}

// parseAlerts parses the alerts option. Addresses on its line are e-mail
// recipients:
//
//	alerts [<address...>] {
//		email    <address...>
//		notify   <destination...>
//		interval <duration>
//	}
func parseAlerts(d *caddycf.Dispenser) (*alerts.Config, error) {
	cfg := &alerts.Config{Email: d.RemainingArgs()}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		switch name {
		case "email", "notify":
			values := d.RemainingArgs()
			if len(values) == 0 {
				return nil, d.Errf("alerts %q needs at least one %s", name, map[string]string{"email": "address", "notify": "notify destination name"}[name])
			}
			if name == "email" {
				cfg.Email = append(cfg.Email, values...)
			} else {
				cfg.Notify = append(cfg.Notify, values...)
			}
		case "interval":
			interval, err := durationArg(d)
			if err != nil {
				return nil, err
			}
			if interval <= 0 {
				return nil, d.Errf("invalid alerts interval %s: use a positive duration such as 5m", time.Duration(interval))
			}
			cfg.Interval = interval
		default:
			return nil, d.Errf("unrecognized alerts subdirective %q: expected email, notify or interval", name)
		}
	}
	if len(cfg.Email) == 0 && len(cfg.Notify) == 0 {
		return nil, d.Err("alerts go nowhere: add e-mail addresses ('alerts ops@example.com') or 'notify <destination>'")
	}
	return cfg, nil
}
