package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// maxResponseBytes bounds how much of an admin API response is read. A page
// of 1000 events or one event with its payload and attempt log is far
// smaller.
const maxResponseBytes = 64 << 20

// adminClient sends requests to the admin API of a running Caddy.
type adminClient struct {
	address string
}

// addAdminFlags adds the flags that locate the admin API, named and
// interpreted as in `caddy stop`, and --json.
func addAdminFlags(cmd *cobra.Command) {
	cmd.Flags().StringP("config", "c", "", "Configuration file to read the admin address from, if --address is not used")
	cmd.Flags().StringP("adapter", "a", "", "Name of the config adapter for --config")
	cmd.Flags().String("address", "", "Address of the admin API endpoint (default localhost:2019 or $CADDY_ADMIN)")
	cmd.Flags().Bool("json", false, "Print the admin API's JSON response, indented, instead of a table")
}

// newAdminClient resolves the admin address from --address, --config and
// --adapter the way `caddy stop` and `caddy reload` do.
// callAdmin makes one admin API request. With --json it prints the response
// body indented and returns nil. Otherwise it returns the body for a table.
func callAdmin(cmd *cobra.Command, request func(c *adminClient) ([]byte, error)) ([]byte, error) {
	client, err := newAdminClient(cmd)
	if err != nil {
		return nil, err
	}
	data, err := request(client)
	if err != nil {
		return nil, err
	}
	if jsonOutput(cmd) {
		return nil, writeIndentedJSON(cmd.OutOrStdout(), data)
	}
	return data, nil
}

func newAdminClient(cmd *cobra.Command) (*adminClient, error) {
	flags := cmd.Flags()
	address, _ := flags.GetString("address")
	configFile, _ := flags.GetString("config")
	adapter, _ := flags.GetString("adapter")

	resolved, err := caddycmd.DetermineAdminAPIAddress(address, nil, configFile, adapter)
	if err != nil {
		return nil, fmt.Errorf("determining the admin API address: %w", err)
	}
	// caddycmd.AdminAPIRequest takes a network address, and with a URL it
	// fails with the unhelpful "http: no Host in request URL".
	for _, scheme := range []string{"http://", "https://"} {
		if strings.HasPrefix(strings.ToLower(resolved), scheme) {
			return nil, fmt.Errorf("invalid admin API address %q: give host:port such as localhost:2019, or unix//path/to/admin.sock, without %s", resolved, scheme)
		}
	}
	return &adminClient{address: resolved}, nil
}

// get sends a GET request and returns the response body.
func (c *adminClient) get(path string, query url.Values) ([]byte, error) {
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	return c.send(http.MethodGet, path, nil)
}

// post sends a POST request with body encoded as JSON, or with no body when
// body is nil, and returns the response body.
func (c *adminClient) post(path string, body any) ([]byte, error) {
	return c.send(http.MethodPost, path, body)
}

// delete sends a DELETE request and returns the response body.
func (c *adminClient) delete(path string) ([]byte, error) {
	return c.send(http.MethodDelete, path, nil)
}

// send makes one admin API request through caddycmd.AdminAPIRequest, which
// dials TCP, unix sockets and file descriptors and sets the Origin header the
// admin endpoint checks. Error responses become an *apiError.
func (c *adminClient) send(method, uri string, body any) ([]byte, error) {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the body of %s %s: %w", method, uri, err)
		}
		reader = bytes.NewReader(encoded)
	}

	resp, err := caddycmd.AdminAPIRequest(c.address, method, uri, nil, reader)
	if err != nil {
		if apiErr := parseAdminError(err); apiErr != nil {
			return nil, apiErr
		}
		return nil, fmt.Errorf("sending %s %s to the admin API at %q: %w; check that Caddy is running and that --address or --config names its admin endpoint",
			method, uri, c.address, err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the response to %s %s: %w", method, uri, err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("reading the response to %s %s: longer than %d bytes; lower --limit", method, uri, maxResponseBytes)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("reading the response to %s %s: not valid JSON (HTTP %d): %.200q", method, uri, resp.StatusCode, data)
	}
	return data, nil
}

// apiError is an error response of the admin API.
type apiError struct {
	StatusCode int

	// Message is the "error" field of Caddy's JSON error body when plain is
	// false, or the start of the body itself when plain is true.
	Message string
	plain   bool
}

func (e *apiError) Error() string {
	switch {
	case !e.plain:
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.StatusCode)
	case e.StatusCode == http.StatusNotFound:
		// Every webhooks route responds with JSON, so a plain 404 comes
		// from an admin endpoint without the webhooks admin module.
		return fmt.Sprintf("the admin API has no webhooks routes (HTTP 404: %s): check that the Caddy at this address is a build with the webhooks plugin", e.Message)
	default:
		return fmt.Sprintf("the admin API failed with HTTP %d: %s", e.StatusCode, e.Message)
	}
}

// adminErrorPattern matches the error that caddycmd.AdminAPIRequest of Caddy
// v2.11.9 returns for a response with status 400 or above.
//
// NOTE: AdminAPIRequest returns no typed error, so the status and body are
// parsed from its message. The tests check this against real responses.
var adminErrorPattern = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d{3}): (.*)$`)

// parseAdminError extracts the status and message from an error of
// caddycmd.AdminAPIRequest, or returns nil when the request got no response.
func parseAdminError(err error) *apiError {
	match := adminErrorPattern.FindStringSubmatch(err.Error())
	if match == nil {
		return nil
	}
	status, _ := strconv.Atoi(match[1])
	body := strings.TrimSpace(match[2])

	var decoded struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &decoded) == nil && decoded.Error != "" {
		return &apiError{StatusCode: status, Message: cleanText(decoded.Error)}
	}
	return &apiError{StatusCode: status, Message: cleanCell(truncate(body, 200)), plain: true}
}

// truncate shortens s to at most n bytes, marking the cut with "...". The
// cut never splits a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// decodeResponse decodes a response body into v. The description names
// the decoded value in errors.
func decodeResponse(data []byte, description string, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding the admin API's %s: %w", description, err)
	}
	return nil
}
