package delivery

import (
	"fmt"
	"net/http"
)

// maxRedirects is the number of redirects that follow_redirects follows in
// one attempt.
const maxRedirects = 3

// redirectPolicy decides which redirects an endpoint's client follows. Each
// hop is dialed through the endpoint's guard like the first request.
type redirectPolicy struct {
	follow    bool
	httpsOnly bool
}

// isFollowable reports whether a redirect status keeps the method and the
// body by definition (RFC 9110, sections 15.4.8 and 15.4.9).
func isFollowable(status int) bool {
	return status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect
}

// check is the client's CheckRedirect. It returns http.ErrUseLastResponse
// for a redirect that is not followed, so the attempt fails with the
// redirect response. A followed hop carries the headers of the first
// request, the signature among them, and no Referer, which could carry a
// token from the endpoint URL.
func (p redirectPolicy) check(req *http.Request, via []*http.Request) error {
	if !p.follow || req.Response == nil || !isFollowable(req.Response.StatusCode) {
		return http.ErrUseLastResponse
	}
	// via holds the first request and every hop followed so far.
	if len(via) > maxRedirects {
		return http.ErrUseLastResponse
	}
	if p.httpsOnly && req.URL.Scheme != "https" {
		return &insecureRedirectError{target: redactedTarget(req.URL)}
	}

	// net/http drops Authorization and Cookie on a redirect to another
	// domain, but the receiver chose the target and the endpoint's
	// headers belong to the webhook.
	req.Header = via[0].Header.Clone()
	return nil
}

// insecureRedirectError reports a redirect to plain http that https_only
// refuses.
type insecureRedirectError struct {
	target string
}

func (e *insecureRedirectError) Error() string {
	return fmt.Sprintf("receiver redirected to %q, which is plain http, and https_only refuses it: have the receiver redirect to https, or remove https_only", e.target)
}
