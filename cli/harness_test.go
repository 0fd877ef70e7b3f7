package cli

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testNow is the clock of every test, so durations such as --since 2h give
// fixed times.
var testNow = time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)

// recordedRequest is a request as the fake admin API received it. Path is
// escaped as sent.
type recordedRequest struct {
	Method string
	Path   string
	Query  url.Values
	Body   string
}

// normalized returns r with an empty query as nil, so requests compare
// equal whether or not a query was parsed.
func (r recordedRequest) normalized() recordedRequest {
	if len(r.Query) == 0 {
		r.Query = nil
	}
	return r
}

// cannedResponse is a response of the fake admin API. File names a file in
// testdata/api; Body is used when File is empty.
type cannedResponse struct {
	Status int
	File   string
	Body   string
}

// fakeAdmin is an admin API on 127.0.0.1 that responds to requests in order
// with canned responses and records each request.
type fakeAdmin struct {
	t         *testing.T
	server    *httptest.Server
	responses []cannedResponse

	mu       sync.Mutex
	requests []recordedRequest
	headers  []http.Header
}

func newFakeAdmin(t *testing.T, responses ...cannedResponse) *fakeAdmin {
	t.Helper()
	fa := &fakeAdmin{t: t, responses: responses}
	fa.server = httptest.NewServer(http.HandlerFunc(fa.serveHTTP))
	t.Cleanup(fa.server.Close)
	return fa
}

// address returns the host:port of the fake admin API.
func (fa *fakeAdmin) address() string {
	return strings.TrimPrefix(fa.server.URL, "http://")
}

func (fa *fakeAdmin) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fa.t.Errorf("reading request body: %v", err)
	}
	fa.mu.Lock()
	fa.requests = append(fa.requests, recordedRequest{
		Method: r.Method,
		Path:   r.URL.EscapedPath(),
		Query:  r.URL.Query(),
		Body:   string(body),
	})
	fa.headers = append(fa.headers, r.Header.Clone())
	n := len(fa.requests)
	fa.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if n > len(fa.responses) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(`{"error":"the test expected no request ` + r.Method + ` ` + r.URL.Path + `"}`))
		return
	}
	resp := fa.responses[n-1]
	data := []byte(resp.Body)
	if resp.File != "" {
		data, err = os.ReadFile(filepath.Join("testdata", "api", resp.File))
		if err != nil {
			fa.t.Errorf("reading canned response: %v", err)
		}
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// recorded returns the requests received so far.
func (fa *fakeAdmin) recorded() []recordedRequest {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return append([]recordedRequest(nil), fa.requests...)
}

// recordedHeaders returns the headers of the requests received so far.
func (fa *fakeAdmin) recordedHeaders() []http.Header {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return append([]http.Header(nil), fa.headers...)
}

// cliResult is the outcome of one command run.
type cliResult struct {
	stdout string
	stderr string
	err    error
}

// runCLI runs `caddy webhooks ARGS` in process with stdin as standard
// input, the way Caddy's root command runs it: usage is not printed on
// errors, and cobra prints the error on stderr.
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	root := &cobra.Command{Use: "webhooks", SilenceUsage: true}
	addSubcommands(root, func() time.Time { return testNow })

	var stdout, stderr bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	err := root.Execute()
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// checkGolden compares got with testdata/golden/NAME.golden, or rewrites the
// file with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// goldenText joins stdout and, when not empty, stderr for a golden file.
func goldenText(res cliResult) string {
	if res.stderr == "" {
		return res.stdout
	}
	return res.stdout + "--- stderr\n" + res.stderr
}
