// Package delivery sends the events stored in JetStream to webhook endpoints.
//
// Each endpoint has a durable pull consumer on the events stream. Workers
// fetch one message at a time, sign the stored payload as a Standard Webhook,
// POST it, and then acknowledge the message, schedule a retry with
// NakWithDelay, write a dead letter, or disable the endpoint. Every attempt
// is logged and recorded in the attempts stream.
package delivery

import (
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/net/http/httpguts"

	"github.com/caddy-webhooks/caddy-webhooks/delivery/email"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

// Defaults of the endpoint settings.
const (
	DefaultTimeout       = 15 * time.Second
	DefaultConcurrency   = 16
	DefaultRetryAfterMax = time.Hour
	DefaultDisableAfter  = 5 * 24 * time.Hour

	// MaxConcurrency bounds Concurrency. Every worker keeps one pull request
	// waiting on the consumer, and nats-server v2.15.3 accepts at most 512
	// waiting pull requests per consumer (JSWaitQueueDefaultMax). The bound
	// leaves room for the old and the new config to run side by side during
	// a reload.
	MaxConcurrency = 256

	// MaxNameLength bounds the length of an endpoint name. The name is part
	// of consumer names, subjects and state keys. JetStream in nats-server
	// v2.15.3 rejects consumer names over 255 characters only when the
	// consumer is created, and this bound keeps names well below that.
	MaxNameLength = 64
)

// DefaultRetry returns the delays between attempts that the Standard Webhooks
// specification suggests: after the first attempt, 5s, 5m, 30m, 2h, 5h, 10h,
// 14h, 20h and 24h, so the last attempt is about three days after the first.
func DefaultRetry() []time.Duration {
	return []time.Duration{
		5 * time.Second,
		5 * time.Minute,
		30 * time.Minute,
		2 * time.Hour,
		5 * time.Hour,
		10 * time.Hour,
		14 * time.Hour,
		20 * time.Hour,
		24 * time.Hour,
	}
}

// Endpoint is one webhook destination: an element of the JSON config array
// apps.webhooks.endpoints.
type Endpoint struct {
	// Name identifies the endpoint in logs, metrics, the attempt log and the
	// admin API. It may contain only ASCII letters, digits, '_' and '-', is
	// at most 64 characters long and must be unique. The endpoint's durable consumer is named
	// "dest_<name>", so renaming an endpoint starts a new consumer that
	// receives only events published after the rename.
	Name string `json:"name"`

	// URL receives the webhooks as POST requests. The scheme must be http or
	// https. Required, except for e-mail destinations, which have none.
	URL string `json:"url,omitempty"`

	// Events lists the event types delivered to this endpoint. An entry may
	// be a pattern as in NATS subjects: '*' matches exactly one token and a
	// final '>' matches one or more tokens, so `order.*` matches
	// `order.created` but not `order.item.added`. Patterns must not overlap.
	// At least one entry is required.
	Events []string `json:"events"`

	// Secrets sign the webhooks as the Standard Webhooks specification
	// describes. Each secret is `whsec_` followed by 24 to 64 random bytes
	// in standard base64; make one with
	// `echo whsec_$(openssl rand -base64 32)`. With several secrets, every
	// request carries one signature per secret, so a receiver can switch to
	// a new secret without missing a webhook. Values may use `{env.*}` and
	// `{file.*}` placeholders, which are resolved at provisioning. The
	// resolved secrets never appear in logs or errors. Without secrets the
	// webhooks are sent unsigned and a warning is logged.
	Secrets []string `json:"secrets,omitempty"`

	// SigningKeys sign the webhooks with ed25519, the asymmetric scheme of
	// the Standard Webhooks specification, so receivers verify with a public
	// key and hold no secret. Each key is `whsk_` followed by the 32-byte
	// ed25519 seed (or the 64-byte seed and public key) in standard base64;
	// make one with
	// `echo whsk_$(openssl genpkey -algorithm ed25519 -outform DER | tail -c 32 | base64)`.
	// Every request carries one `v1a` signature per key, after the `v1`
	// signatures of Secrets, so keys can be rotated like secrets. The
	// public key (`whpk_...`) of each signing key is logged when delivery
	// starts. Values may use `{env.*}` and `{file.*}` placeholders, which
	// are resolved at provisioning. The resolved keys never appear in logs
	// or errors. Default: none, so no v1a signatures.
	SigningKeys []string `json:"signing_keys,omitempty"`

	// Headers are added to every request. Values may use `{env.*}` and
	// `{file.*}` placeholders. They cannot replace `Content-Type`,
	// `webhook-id`, `webhook-timestamp` or `webhook-signature`, nor the
	// headers that the HTTP client sets itself (`Host`, `Content-Length`,
	// `Transfer-Encoding`, `Connection`). `User-Agent` may be replaced.
	Headers http.Header `json:"headers,omitempty"`

	// Format selects the request body. `standard` sends the stored event
	// payload as `application/json`. `cloudevents` sends a CloudEvents 1.0
	// event in structured JSON mode (`application/cloudevents+json`). Its
	// `id` is the event id and `type` the event type. Its `source` is the
	// request host as a URI reference such as `//api.example.com`, `time`
	// is the event's timestamp and `data` the `data` of the payload. Both
	// formats are signed with the same Standard Webhooks headers.
	// Default: `standard`.
	//
	// The chat formats `slack`, `discord`, `teams`, `mattermost`,
	// `googlechat` and `ntfy` send Text as that service's incoming-webhook
	// body instead of the payload, cut to the service's length limit and
	// with mass mentions such as `@channel` neutralised. URL is then the
	// service's incoming-webhook URL (for ntfy, the topic URL).
	Format string `json:"format,omitempty"`

	// Text is the message of a chat format, with the placeholders of the
	// stored event: webhook.event.id, webhook.event.type,
	// webhook.event.timestamp, webhook.data.<path>, for default payloads
	// webhook.request.* and webhook.response.*, and Caddy's global ones
	// such as `{env.*}`. Default: the event type, id and timestamp.
	Text string `json:"text,omitempty"`

	// Email makes this destination send each event as an e-mail through
	// the app's SMTP server instead of a webhook. It then has no URL, and
	// the webhook settings (secrets, signing keys, headers, format,
	// follow_redirects, tls, proxy) do not apply. SMTP 4xx replies and
	// connection errors are retried on the Retry schedule, and 5xx replies
	// dead-letter the event at once. Timeout bounds one whole send.
	Email *Email `json:"email,omitempty"`

	// Timeout bounds one attempt, from dialing to the last byte of the
	// response that is read. Default: `15s`.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Retry lists the delays after the first, second, … failed attempt, so
	// an event gets at most 1+len(Retry) attempts before it is
	// dead-lettered. Each delay varies randomly by up to 20% in both
	// directions, so retries of many events do not arrive together.
	// Default: `5s 5m 30m 2h 5h 10h 14h 20h 24h`, the schedule that the
	// Standard Webhooks specification suggests (about three days).
	Retry []caddy.Duration `json:"retry,omitempty"`

	// Concurrency is the maximum number of attempts in flight to this
	// endpoint, from 1 to 256. Default: `16`, or `1` when Ordered is set.
	Concurrency int `json:"concurrency,omitempty"`

	// Rate is the maximum number of attempts per second to this endpoint.
	// Fractions are allowed (`0.5` is one attempt every two seconds).
	// Default: `0`, no limit.
	Rate float64 `json:"rate,omitempty"`

	// Ordered delivers one event at a time, in the order the events were
	// stored. An event waiting for its next retry holds back all later
	// events of this endpoint. Concurrency must be 1 or unset.
	Ordered bool `json:"ordered,omitempty"`

	// RetryAfterMax is the maximum wait that a receiver can request with
	// `Retry-After` on a 429 or 503 response. Default: `1h`.
	RetryAfterMax caddy.Duration `json:"retry_after_max,omitempty"`

	// DisableAfter disables the endpoint when it has had failed attempts
	// and no successful one for this long, and logs why. Its events then
	// wait in its consumer until it is enabled again through the admin
	// API, like those of a paused endpoint. Enabling it starts the count
	// anew. `0` turns the check off. Default: `5d`.
	DisableAfter *caddy.Duration `json:"disable_after,omitempty"`

	// AllowPrivate turns the outbound address check off for this endpoint,
	// so its webhooks may go to loopback, private (RFC 1918 and fc00::/7),
	// link-local, carrier-grade NAT, multicast, unspecified and reserved
	// addresses. Use it for receivers on the same host or network. Default:
	// false, and true when the app's `allow_private` is set.
	AllowPrivate bool `json:"allow_private,omitempty"`

	// AllowHosts opens the outbound address check for some receivers. An
	// entry is a host name, an IP address or a CIDR such as `10.1.0.0/16`.
	// A host name is matched case-insensitively against the host of the URL
	// (or of a followed redirect), which then may resolve to any address.
	// An address or CIDR allows the addresses inside it whatever the host
	// name. The app's `allow_hosts` add to these.
	AllowHosts []string `json:"allow_hosts,omitempty"`

	// HTTPSOnly rejects a URL with the http scheme when the config loads,
	// and refuses a redirect to plain http when FollowRedirects is set.
	// Default: false, and true when the app's `https_only` is set.
	HTTPSOnly bool `json:"https_only,omitempty"`

	// FollowRedirects follows 307 and 308 redirects, at most 3 in a row,
	// with the same method, body and headers, so the signature stays valid.
	// Every hop passes the same address check as the URL. Other redirects
	// (301, 302, 303) still fail the attempt, because they may turn the
	// POST into a GET. Default: false, and every redirect fails the attempt
	// with the Location's scheme, host and path in the attempt log.
	FollowRedirects bool `json:"follow_redirects,omitempty"`

	// TLS sets the authorities that verify an https receiver and the
	// client certificate for mutual TLS. Default: the system's roots and no
	// client certificate.
	TLS *TLS `json:"tls,omitempty"`

	// Proxy is the URL of an egress proxy (http or https scheme, such as
	// `http://proxy.internal:3128`) that every connection of this endpoint
	// goes through: https webhooks through a CONNECT tunnel, http webhooks
	// as requests to the proxy. Credentials in the URL are sent as
	// `Proxy-Authorization`, and the URL may use `{env.*}` and `{file.*}`
	// placeholders. The address check then applies to the proxy's address,
	// which is often internal and needs allow_hosts. The webhook sender
	// never resolves the receiver's host, so the proxy must refuse internal
	// receivers itself. The `HTTP_PROXY` environment variables are ignored.
	// Default: no proxy.
	Proxy string `json:"proxy,omitempty"`

	// Set by SetGlobalGuard and SetSMTP.
	global GlobalGuard
	smtp   *email.Config

	// Set by Provision: the decoded secrets, the headers with their
	// placeholders resolved, and the outbound guard. The secrets and
	// headers must never be logged.
	secrets     [][]byte
	signingKeys []ed25519.PrivateKey
	headers     http.Header
	guard       *guard
	tlsConfig   *tls.Config
	proxyURL    *url.URL
	text        *placeholder.Text
	mail        *mailSender
	provisioned bool
}

// Kind returns "email" for an e-mail destination, "notify" for one with a
// chat format, and "webhook" for the others.
func (e *Endpoint) Kind() string {
	switch {
	case e.Email != nil:
		return "email"
	case isChatFormat(e.Format):
		return "notify"
	default:
		return "webhook"
	}
}

// SetSMTP sets the SMTP server that an e-mail destination sends through.
// Call it before Provision.
func (e *Endpoint) SetSMTP(cfg *email.Config) {
	e.smtp = cfg
}

// GlobalGuard holds the app-level settings of the outbound address check,
// which add to every endpoint's own.
type GlobalGuard struct {
	AllowPrivate bool
	AllowHosts   []string
	HTTPSOnly    bool
}

// Validate checks the allow_hosts entries.
func (g GlobalGuard) Validate() error {
	for _, entry := range g.AllowHosts {
		if _, _, err := parseAllowHost(entry); err != nil {
			return err
		}
	}
	return nil
}

// SetGlobalGuard adds the app-level guard settings to the endpoint. Call it
// before Provision and Validate.
func (e *Endpoint) SetGlobalGuard(g GlobalGuard) {
	e.global = g
}

func (e *Endpoint) allowPrivate() bool { return e.AllowPrivate || e.global.AllowPrivate }

func (e *Endpoint) httpsOnly() bool { return e.HTTPSOnly || e.global.HTTPSOnly }

func (e *Endpoint) allowHosts() []string {
	return append(append([]string(nil), e.AllowHosts...), e.global.AllowHosts...)
}

var endpointNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// reservedHeaders are set by the worker or the HTTP client and cannot be
// configured.
var reservedHeaders = []string{
	"Content-Type",
	"Webhook-Id",
	"Webhook-Timestamp",
	"Webhook-Signature",
	"Host",
	"Content-Length",
	"Transfer-Encoding",
	"Connection",
}

// Provision resolves the placeholders in the secrets, signing keys and
// header values, decodes the secrets and signing keys, and fills in the defaults. A nil repl uses
// caddy.NewReplacer, which resolves `{env.*}` and `{file.*}`. Errors name
// the placeholder or the secret's or key's position, never a resolved
// value.
func (e *Endpoint) Provision(repl *caddy.Replacer) error {
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	e.setDefaults()

	e.secrets = make([][]byte, 0, len(e.Secrets))
	for i, raw := range e.Secrets {
		resolved, err := repl.ReplaceOrErr(raw, true, true)
		if err != nil {
			return fmt.Errorf("endpoint %q: resolving secret %d: %w; set the environment variable or create the file that the placeholder names", e.Name, i+1, err)
		}
		key, err := ParseSecret(resolved)
		if err != nil {
			return fmt.Errorf("endpoint %q: secret %d: %w", e.Name, i+1, err)
		}
		e.secrets = append(e.secrets, key)
	}
	if err := e.provisionSigningKeys(repl); err != nil {
		return err
	}

	e.headers = make(http.Header, len(e.Headers))
	for name, values := range e.Headers {
		for _, raw := range values {
			resolved, err := repl.ReplaceOrErr(raw, true, true)
			if err != nil {
				return fmt.Errorf("endpoint %q: resolving header %s: %w; set the environment variable or create the file that the placeholder names", e.Name, name, err)
			}
			if !httpguts.ValidHeaderFieldValue(resolved) {
				return fmt.Errorf("endpoint %q: header %s contains a line break or control character after resolving placeholders: remove it", e.Name, name)
			}
			e.headers.Add(name, resolved)
		}
	}
	guard, err := newGuard(e.allowPrivate(), e.allowHosts())
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", e.Name, err)
	}
	e.guard = guard
	if err := e.provisionTransport(repl); err != nil {
		return fmt.Errorf("endpoint %q: %w", e.Name, err)
	}
	if err := e.provisionMessage(); err != nil {
		return fmt.Errorf("endpoint %q: %w", e.Name, err)
	}
	e.provisioned = true
	return nil
}

// provisionMessage parses the chat text, or sets up the e-mail sender with
// a copy of the SMTP config that dials through the endpoint's guard.
func (e *Endpoint) provisionMessage() error {
	if e.Text != "" {
		text, err := parseStoredTemplate(e.Text)
		if err != nil {
			return fmt.Errorf("text: %w", err)
		}
		e.text = text
	}
	if e.Email == nil {
		return nil
	}

	message, err := e.Email.compile()
	if err != nil {
		return err
	}
	if e.smtp == nil {
		return errors.New("e-mail destination without an SMTP server: configure one with the smtp global option")
	}
	if err := checkLiteralHost(e.guard, "smtp address", &url.URL{Host: e.smtp.Addr}); err != nil {
		return err
	}
	smtp := *e.smtp
	dial := &dialer{guard: e.guard, base: net.Dialer{KeepAlive: 30 * time.Second}}
	smtp.DialContext = dial.DialContext
	e.mail, err = newMailSender(&smtp, message, time.Duration(e.Timeout))
	return err
}

func (e *Endpoint) provisionSigningKeys(repl *caddy.Replacer) error {
	e.signingKeys = make([]ed25519.PrivateKey, 0, len(e.SigningKeys))
	for i, raw := range e.SigningKeys {
		resolved, err := repl.ReplaceOrErr(raw, true, true)
		if err != nil {
			return fmt.Errorf("endpoint %q: resolving signing key %d: %w; set the environment variable or create the file that the placeholder names", e.Name, i+1, err)
		}
		key, err := ParseSigningKey(resolved)
		if err != nil {
			return fmt.Errorf("endpoint %q: signing key %d: %w", e.Name, i+1, err)
		}
		e.signingKeys = append(e.signingKeys, key)
	}
	return nil
}

func (e *Endpoint) setDefaults() {
	if e.Format == "" {
		e.Format = FormatStandard
	}
	if e.Timeout == 0 {
		e.Timeout = caddy.Duration(DefaultTimeout)
	}
	if len(e.Retry) == 0 {
		for _, d := range DefaultRetry() {
			e.Retry = append(e.Retry, caddy.Duration(d))
		}
	}
	if e.Concurrency == 0 {
		e.Concurrency = DefaultConcurrency
		if e.Ordered {
			e.Concurrency = 1
		}
	}
	if e.RetryAfterMax == 0 {
		e.RetryAfterMax = caddy.Duration(DefaultRetryAfterMax)
	}
	if e.DisableAfter == nil {
		d := caddy.Duration(DefaultDisableAfter)
		e.DisableAfter = &d
	}
}

// disableAfter returns the DisableAfter setting, with its default for an
// endpoint that was not provisioned, and 0 when the check is off.
func (e *Endpoint) disableAfter() time.Duration {
	if e.DisableAfter == nil {
		return DefaultDisableAfter
	}
	return time.Duration(*e.DisableAfter)
}

// Validate checks the endpoint's settings. Secrets and signing keys that
// contain placeholders are checked by Provision once resolved.
func (e *Endpoint) Validate() error {
	if err := e.ValidateName(); err != nil {
		return err
	}
	checks := []func() error{
		e.validateURL,
		e.validateEvents,
		e.validateSecrets,
		e.validateSigningKeys,
		e.validateHeaders,
		e.validateFormat,
		e.validateLimits,
		e.validateTransport,
		e.validateDestination,
		e.validateEmail,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return fmt.Errorf("endpoint %q: %w", e.Name, err)
		}
	}
	return nil
}

// validateEmail rejects the webhook settings on an e-mail destination, where
// they would do nothing.
func (e *Endpoint) validateEmail() error {
	if e.Email == nil {
		return nil
	}
	webhookOnly := []struct {
		name string
		set  bool
	}{
		{"secret", len(e.Secrets) > 0},
		{"signing_key", len(e.SigningKeys) > 0},
		{"header", len(e.Headers) > 0},
		{"follow_redirects", e.FollowRedirects},
		{"tls", e.TLS != nil},
		{"proxy", e.Proxy != ""},
		{"text", e.Text != ""},
	}
	for _, setting := range webhookOnly {
		if setting.set {
			return fmt.Errorf("%s applies to webhooks, not to e-mail: remove it", setting.name)
		}
	}
	_, err := e.Email.compile()
	return err
}

// ValidateName checks the endpoint's name, which becomes part of consumer
// names, subjects and state keys.
func (e *Endpoint) ValidateName() error {
	if !endpointNamePattern.MatchString(e.Name) {
		return fmt.Errorf("invalid endpoint name %q: use one or more of A-Z, a-z, 0-9, '_' and '-'", e.Name)
	}
	if len(e.Name) > MaxNameLength {
		return fmt.Errorf("endpoint name %q is %d characters long: use at most %d", e.Name, len(e.Name), MaxNameLength)
	}
	return nil
}

func (e *Endpoint) validateURL() error {
	if e.Email != nil {
		if e.URL != "" {
			return errors.New("an e-mail destination has no url: remove it, or remove email to send webhooks")
		}
		return nil
	}
	if e.URL == "" {
		return errors.New("url is missing: set the http or https address that receives the webhooks")
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		// The parse error quotes the URL, which may carry a token.
		return errors.New("parsing url: it is not a valid URL; use an address such as https://hooks.example.com/orders")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("invalid url %q: scheme must be http or https", redactedTarget(u))
	}
	if u.Host == "" {
		return fmt.Errorf("invalid url %q: host is missing", redactedTarget(u))
	}
	if u.Scheme == "http" && e.httpsOnly() {
		return fmt.Errorf("url %q uses plain http, which https_only rejects: use an https url, or remove https_only", redactedTarget(u))
	}
	return nil
}

// validateDestination checks the allow_hosts entries and rejects a URL whose
// host is an IP address that the guard would refuse at every attempt. Host
// names are checked when each attempt connects, because their addresses
// may change. It runs after the other checks, so a config with a mistake
// in another setting reports that first.
func (e *Endpoint) validateDestination() error {
	g, err := newGuard(e.allowPrivate(), e.allowHosts())
	if err != nil {
		return err
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		return nil // validateURL reports it
	}
	return checkLiteralHost(g, "url", u)
}

func (e *Endpoint) validateEvents() error {
	if len(e.Events) == 0 {
		return errors.New("events is empty: list at least one event type or pattern, such as 'order.created' or 'order.*'")
	}
	for i, pattern := range e.Events {
		if err := emitter.ValidateEventPattern(pattern); err != nil {
			return err
		}
		for _, earlier := range e.Events[:i] {
			if patternsOverlap(earlier, pattern) {
				return fmt.Errorf("event patterns %q and %q overlap, which JetStream rejects for one consumer: keep only the broader one", earlier, pattern)
			}
		}
	}
	return nil
}

// patternsOverlap reports whether some subject matches both NATS subject
// patterns.
func patternsOverlap(a, b string) bool {
	ta, tb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		if i == len(ta) || i == len(tb) {
			// '>' needs at least one more token, so only equal lengths match.
			return len(ta) == len(tb)
		}
		x, y := ta[i], tb[i]
		switch {
		case x == ">" || y == ">":
			return true
		case x == "*" || y == "*" || x == y:
			continue
		default:
			return false
		}
	}
}

func (e *Endpoint) validateSecrets() error {
	for i, raw := range e.Secrets {
		if strings.ContainsAny(raw, "{}") {
			continue
		}
		if _, err := ParseSecret(raw); err != nil {
			return fmt.Errorf("secret %d: %w", i+1, err)
		}
	}
	return nil
}

func (e *Endpoint) validateSigningKeys() error {
	for i, raw := range e.SigningKeys {
		if strings.ContainsAny(raw, "{}") {
			continue
		}
		if _, err := ParseSigningKey(raw); err != nil {
			return fmt.Errorf("signing key %d: %w", i+1, err)
		}
	}
	return nil
}

func (e *Endpoint) validateHeaders() error {
	for name := range e.Headers {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("invalid header name %q: use letters, digits and '-'", name)
		}
		for _, reserved := range reservedHeaders {
			if strings.EqualFold(name, reserved) {
				return fmt.Errorf("header %q cannot be configured because the webhook sender sets it: remove it", name)
			}
		}
	}
	return nil
}

func (e *Endpoint) validateLimits() error {
	if e.Timeout < 0 {
		return fmt.Errorf("invalid timeout %s: must not be negative", time.Duration(e.Timeout))
	}
	for i, d := range e.Retry {
		if d < 0 {
			return fmt.Errorf("invalid retry delay %d (%s): delays must not be negative", i+1, time.Duration(d))
		}
	}
	if e.Concurrency < 0 || e.Concurrency > MaxConcurrency {
		return fmt.Errorf("invalid concurrency %d: use 1 to %d", e.Concurrency, MaxConcurrency)
	}
	if e.Ordered && e.Concurrency > 1 {
		return fmt.Errorf("concurrency %d conflicts with ordered, which delivers one event at a time: remove one of them", e.Concurrency)
	}
	if e.Rate < 0 || math.IsNaN(e.Rate) || math.IsInf(e.Rate, 0) {
		return fmt.Errorf("invalid rate %v: use attempts per second, or 0 for no limit", e.Rate)
	}
	if e.RetryAfterMax < 0 {
		return fmt.Errorf("invalid retry_after_max %s: must not be negative", time.Duration(e.RetryAfterMax))
	}
	if e.DisableAfter != nil && *e.DisableAfter < 0 {
		return fmt.Errorf("invalid disable_after %s: use a positive duration such as '5d', or 0 to turn it off", time.Duration(*e.DisableAfter))
	}
	return nil
}

// ValidateEndpoints validates each endpoint and checks that their names are
// unique.
func ValidateEndpoints(endpoints []*Endpoint) error {
	seen := make(map[string]bool, len(endpoints))
	for i, e := range endpoints {
		if e == nil {
			return fmt.Errorf("endpoint %d is null: remove it or give it a name, url and events", i+1)
		}
		if err := e.Validate(); err != nil {
			return err
		}
		if seen[e.Name] {
			return fmt.Errorf("two endpoints are named %q: give each a unique name", e.Name)
		}
		seen[e.Name] = true
	}
	return nil
}

// DisplayURL returns the endpoint URL without user info, query and
// fragment, which may carry credentials, for logs and the admin API. Chat
// services put the webhook's token in the path (Slack's
// /services/T…/B…/<token>, Discord's /api/webhooks/<id>/<token>, an ntfy
// topic), so a chat destination shows only its scheme and host. For an
// e-mail destination it is a mailto URL of its recipients.
func (e *Endpoint) DisplayURL() string {
	if e.Email != nil {
		return "mailto:" + strings.Join(append(slices.Clone(e.Email.To), e.Email.Cc...), ",")
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		return ""
	}
	if isChatFormat(e.Format) {
		return u.Scheme + "://" + u.Host + "/…"
	}
	return redactedTarget(u)
}

// Subscribes reports whether the endpoint receives events of eventType
// through its event patterns.
func (e *Endpoint) Subscribes(eventType string) bool {
	return subscribes(e, eventType)
}

// retryDelays returns the configured retry schedule, or the default one for
// an endpoint that was not provisioned.
func (e *Endpoint) retryDelays() []time.Duration {
	if len(e.Retry) == 0 {
		return DefaultRetry()
	}
	delays := make([]time.Duration, len(e.Retry))
	for i, d := range e.Retry {
		delays[i] = time.Duration(d)
	}
	return delays
}
