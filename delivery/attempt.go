package delivery

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/delivery/chat"
)

// maxResponseBytes is how much of a response body is read and kept in the
// attempt log; the rest is never read.
const maxResponseBytes = 4 << 10

// userAgent is sent unless the endpoint configures its own User-Agent.
const userAgent = "caddy-webhooks"

// Error classes of failed attempts, as stored in the attempt log.
const (
	ClassDNS     = "dns"
	ClassRefused = "refused"
	ClassTLS     = "tls"

	// TLS failures with a class of their own, so the attempt log shows
	// what to fix. The receiver's certificate has expired or is not valid
	// yet, it is signed by an authority that is not trusted (such as a
	// self-signed certificate), or it does not cover the URL's host. Every
	// other TLS failure has class tls.
	ClassTLSExpired          = "tls_expired"
	ClassTLSUnknownAuthority = "tls_unknown_authority"
	ClassTLSHostname         = "tls_hostname"
	ClassTimeout             = "timeout"
	ClassReset               = "reset"
	ClassConnection          = "connection"
	ClassStatus              = "status"
	ClassRedirect            = "redirect"
	ClassInvalidEvent        = "invalid_event"

	// ClassBlockedDestination is the class of an attempt that the outbound
	// guard refused: the receiver's address is in a blocked range, or a
	// redirect leads to plain http while https_only is set. The attempt is
	// retried like any failure, because a later DNS answer may differ.
	ClassBlockedDestination = "blocked_destination"
)

// sender makes the HTTP requests of one endpoint.
type sender struct {
	client          *http.Client
	url             string
	headers         http.Header
	signer          *Signer
	signingKeys     []ed25519.PrivateKey
	timeout         time.Duration
	followRedirects bool

	// format is FormatStandard or FormatCloudEvents.
	format string
}

// attemptResult describes one HTTP attempt. errorClass is empty on a 2xx
// response.
type attemptResult struct {
	start      time.Time
	duration   time.Duration
	statusCode int
	errorClass string
	err        error
	retryAfter time.Duration
	response   []byte

	// blockedAddress is the address that the guard refused, for the log.
	blockedAddress string

	// permanent marks a failure that no retry can fix, such as an SMTP
	// 5xx reply, so the event is dead-lettered without further attempts.
	permanent bool
}

func (r *attemptResult) succeeded() bool {
	return r.errorClass == ""
}

// send POSTs the payload once and classifies the result. A canceled ctx
// ends the attempt early.
func (s *sender) send(ctx context.Context, ev *event) (res attemptResult) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	res.start = time.Now()
	defer func() { res.duration = time.Since(res.start) }()

	body, _ := ev.request()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		res.errorClass = ClassConnection
		res.err = fmt.Errorf("building request: %w", unwrapURLError(err))
		return res
	}
	s.setHeaders(req.Header, ev, res.start)

	resp, err := s.client.Do(req)
	if err != nil {
		res.errorClass = classifyError(err)
		res.err = unwrapURLError(err)
		var blocked *blockedError
		if errors.As(err, &blocked) {
			res.blockedAddress = blocked.addr.String()
		}
		return res
	}
	defer resp.Body.Close()

	res.statusCode = resp.StatusCode
	// The status decides the outcome, so a body that fails to arrive in
	// time only shortens the stored snippet.
	res.response, _ = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	classifyStatus(&res, resp, s.followRedirects, time.Now())
	if res.errorClass == ClassRedirect {
		// The body of a redirect often repeats the Location with its query,
		// which may carry a token, so it is not kept.
		res.response = nil
	}
	return res
}

func (s *sender) setHeaders(h http.Header, ev *event, timestamp time.Time) {
	h.Set("User-Agent", userAgent)
	for name, values := range s.headers {
		h.Del(name)
		for _, v := range values {
			h.Add(name, v)
		}
	}
	body, contentType := ev.request()
	h.Set("Content-Type", contentType)
	h.Set("Webhook-Id", ev.id)
	h.Set("Webhook-Timestamp", strconv.FormatInt(timestamp.Unix(), 10))
	if signature := joinSignatures(s.signer.Sign(ev.id, timestamp, body), SignAsymmetric(s.signingKeys, ev.id, timestamp, body)); signature != "" {
		h.Set("Webhook-Signature", signature)
	}
}

// classifyStatus fills in the error class of a response that arrived.
// followRedirects selects the reason given for a redirect that was not
// followed.
func classifyStatus(res *attemptResult, resp *http.Response, followRedirects bool, now time.Time) {
	code := resp.StatusCode
	switch {
	case code >= 200 && code <= 299:
		return
	case code >= 300 && code <= 399:
		res.errorClass = ClassRedirect
		res.err = redirectError(resp, followRedirects)
	default:
		res.errorClass = ClassStatus
		res.err = fmt.Errorf("receiver responded with %s", resp.Status)
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
		}
	}
}

// redirectError describes a redirect response that ended the attempt. It
// names only the scheme, host and path of the Location, because its user
// info, query and fragment may carry a token.
func redirectError(resp *http.Response, followRedirects bool) error {
	fix := "redirects are not followed: set the endpoint url to the final address, or set follow_redirects if the receiver redirects with 307 or 308"
	if followRedirects {
		fix = "only 307 and 308 redirects are followed, because the others may turn the POST into a GET without the payload: set the endpoint url to the final address"
		if isFollowable(resp.StatusCode) && resp.Header.Get("Location") != "" {
			fix = fmt.Sprintf("follow_redirects follows at most %d redirects in a row: set the endpoint url to the final address", maxRedirects)
		}
	}
	location := resp.Header.Get("Location")
	if location == "" {
		return fmt.Errorf("receiver redirected with %s without a Location header, and %s", resp.Status, fix)
	}
	u, err := url.Parse(location)
	if err != nil {
		return fmt.Errorf("receiver redirected with %s to an invalid Location, and %s", resp.Status, fix)
	}
	return fmt.Errorf("receiver redirected with %s to %q, and %s", resp.Status, redactedTarget(u), fix)
}

// redactedTarget returns the scheme, host and path of u, without the user
// info, query and fragment, which may carry a token.
func redactedTarget(u *url.URL) string {
	target := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return target.String()
}

// parseRetryAfter reads a Retry-After value in seconds, fractions allowed
// (chat services send "1.5"), or as an HTTP date. It returns 0 when the
// value is missing, invalid or already past.
func parseRetryAfter(value string, now time.Time) time.Duration {
	return chat.ParseRetryAfter(value, now)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// classifyError maps a transport error to an error class of the attempt log.
func classifyError(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	var blocked *blockedError
	var insecure *insecureRedirectError
	switch {
	case errors.As(err, &blocked), errors.As(err, &insecure):
		return ClassBlockedDestination
	case errors.As(err, &dnsErr):
		return ClassDNS
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused
	case isTLSError(err):
		return classifyTLSError(err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ClassReset
	case errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	default:
		return ClassConnection
	}
}

func isTLSError(err error) bool {
	var (
		verifyErr    *tls.CertificateVerificationError
		recordErr    tls.RecordHeaderError
		alertErr     tls.AlertError
		authorityErr x509.UnknownAuthorityError
		hostnameErr  x509.HostnameError
		invalidErr   x509.CertificateInvalidError
	)
	// net/http replaces the record header error of a server that responds
	// in plain HTTP with ErrSchemeMismatch.
	return errors.Is(err, http.ErrSchemeMismatch) ||
		isRemoteTLSAlert(err) ||
		errors.As(err, &verifyErr) ||
		errors.As(err, &recordErr) ||
		errors.As(err, &alertErr) ||
		errors.As(err, &authorityErr) ||
		errors.As(err, &hostnameErr) ||
		errors.As(err, &invalidErr)
}

// isRemoteTLSAlert reports whether err carries a TLS alert from the
// receiver. crypto/tls wraps such an alert, for example "certificate
// required" from a server that wants a client certificate, in a
// *net.OpError with Op "remote error".
func isRemoteTLSAlert(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if opErr, ok := err.(*net.OpError); ok && opErr.Op == "remote error" {
			return true
		}
	}
	return false
}

// classifyTLSError returns the class of a TLS failure.
func classifyTLSError(err error) string {
	var (
		invalidErr   x509.CertificateInvalidError
		authorityErr x509.UnknownAuthorityError
		hostnameErr  x509.HostnameError
	)
	switch {
	case errors.As(err, &invalidErr) && invalidErr.Reason == x509.Expired:
		return ClassTLSExpired
	case errors.As(err, &authorityErr):
		return ClassTLSUnknownAuthority
	case errors.As(err, &hostnameErr):
		return ClassTLSHostname
	default:
		return ClassTLS
	}
}

// unwrapURLError drops the "Post <url>:" prefix of client errors, because
// an endpoint URL may carry a token.
func unwrapURLError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}
