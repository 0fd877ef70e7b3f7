package capture

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// clientWriter stands for the writer a handler receives. It records every
// call so that tests can check what reached the client.
type clientWriter struct {
	header   http.Header
	statuses []int
	body     bytes.Buffer

	readFromCalls int
	readFromBytes int64
	flushes       int

	// writeLimit, when positive, makes Write accept at most that many bytes
	// in total and then fail.
	writeLimit int

	// onWriteHeader runs before a status is recorded, as a wrapper such as
	// encode changes header fields when its WriteHeader runs.
	onWriteHeader func(http.Header)
}

var errClientGone = errors.New("client gone")

func newClientWriter() *clientWriter {
	return &clientWriter{header: make(http.Header)}
}

func (cw *clientWriter) Header() http.Header { return cw.header }

func (cw *clientWriter) WriteHeader(status int) {
	if cw.onWriteHeader != nil {
		cw.onWriteHeader(cw.header)
	}
	cw.statuses = append(cw.statuses, status)
}

func (cw *clientWriter) Write(p []byte) (int, error) {
	if cw.writeLimit > 0 && cw.body.Len()+len(p) > cw.writeLimit {
		n := cw.writeLimit - cw.body.Len()
		cw.body.Write(p[:n])
		return n, errClientGone
	}
	return cw.body.Write(p)
}

func (cw *clientWriter) ReadFrom(src io.Reader) (int64, error) {
	cw.readFromCalls++
	n, err := cw.body.ReadFrom(src)
	cw.readFromBytes += n
	return n, err
}

func (cw *clientWriter) Flush() { cw.flushes++ }

// onlyReader hides any WriterTo method of the reader it wraps, so that
// io.Copy calls the destination's ReadFrom.
type onlyReader struct{ io.Reader }

func TestRecorderStatus(t *testing.T) {
	tests := []struct {
		name         string
		write        func(w http.ResponseWriter)
		wantStatus   int
		wantStatuses []int // as seen by the client writer
	}{
		{
			name:       "nothing written",
			write:      func(w http.ResponseWriter) {},
			wantStatus: 0,
		},
		{
			name:         "write without header",
			write:        func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) },
			wantStatus:   200,
			wantStatuses: []int{200},
		},
		{
			name:         "created",
			write:        func(w http.ResponseWriter) { w.WriteHeader(201) },
			wantStatus:   201,
			wantStatuses: []int{201},
		},
		{
			name: "early hints then created",
			write: func(w http.ResponseWriter) {
				w.WriteHeader(103)
				w.WriteHeader(201)
			},
			wantStatus:   201,
			wantStatuses: []int{103, 201},
		},
		{
			name: "continue then write",
			write: func(w http.ResponseWriter) {
				w.WriteHeader(100)
				_, _ = w.Write([]byte("x"))
			},
			wantStatus:   200,
			wantStatuses: []int{100, 200},
		},
		{
			name:         "switching protocols is final",
			write:        func(w http.ResponseWriter) { w.WriteHeader(101) },
			wantStatus:   101,
			wantStatuses: []int{101},
		},
		{
			name: "second final status dropped",
			write: func(w http.ResponseWriter) {
				w.WriteHeader(404)
				w.WriteHeader(200)
			},
			wantStatus:   404,
			wantStatuses: []int{404},
		},
		{
			name: "flush without header",
			write: func(w http.ResponseWriter) {
				_ = http.NewResponseController(w).Flush()
			},
			wantStatus:   200,
			wantStatuses: []int{200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClientWriter()
			rec := NewRecorder(client, DefaultMaxBody)
			defer rec.Release()

			tt.write(rec)

			if rec.Status() != tt.wantStatus {
				t.Errorf("Status() = %d, want %d", rec.Status(), tt.wantStatus)
			}
			if !slices.Equal(client.statuses, tt.wantStatuses) {
				t.Errorf("client got statuses %v, want %v", client.statuses, tt.wantStatuses)
			}
		})
	}
}

func TestRecorderHeaderSnapshot(t *testing.T) {
	client := newClientWriter()
	// Like encode, the writer outside changes the header when the status is
	// written, after the handler inside has set it.
	client.onWriteHeader = func(h http.Header) {
		h.Set("Content-Encoding", "gzip")
		h.Del("Content-Length")
	}
	rec := NewRecorder(client, DefaultMaxBody)
	defer rec.Release()

	if rec.ResponseHeader() != nil {
		t.Errorf("ResponseHeader() before WriteHeader = %v, want nil", rec.ResponseHeader())
	}
	rec.Header().Set("Content-Type", "application/json")
	rec.Header().Set("Content-Length", "9")
	rec.WriteHeader(http.StatusCreated)
	rec.Header().Set("X-After", "late")

	got := rec.ResponseHeader()
	if got.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got.Get("Content-Type"))
	}
	if got.Get("Content-Length") != "9" {
		t.Errorf("Content-Length = %q, want the handler's 9", got.Get("Content-Length"))
	}
	if got.Get("Content-Encoding") != "" {
		t.Errorf("Content-Encoding = %q, want none: set by the outer writer", got.Get("Content-Encoding"))
	}
	if got.Get("X-After") != "" {
		t.Errorf("X-After = %q, want none: set after WriteHeader", got.Get("X-After"))
	}
	if client.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("client header lost the outer writer's change: %v", client.header)
	}
}

func TestRecorderKeepHeaderFields(t *testing.T) {
	client := newClientWriter()
	rec := NewRecorder(client, DefaultMaxBody)
	defer rec.Release()
	rec.KeepHeaderFields([]string{"Content-Encoding", "Vary", "X-Missing"})

	rec.Header().Set("Content-Type", "application/json")
	rec.Header().Set("Content-Encoding", "gzip")
	rec.Header().Add("Vary", "Accept")
	rec.Header().Add("Vary", "Origin")
	rec.WriteHeader(http.StatusOK)
	// A handler may change a value in place after the status is sent.
	rec.Header()["Vary"][0] = "changed"
	rec.Header().Add("Content-Encoding", "br")

	want := http.Header{"Content-Encoding": {"gzip"}, "Vary": {"Accept", "Origin"}}
	if got := rec.ResponseHeader(); !reflect.DeepEqual(got, want) {
		t.Errorf("ResponseHeader() = %v, want %v", got, want)
	}
	if client.header.Get("Content-Type") != "application/json" {
		t.Errorf("client header lost a field the recorder does not copy: %v", client.header)
	}
}

func TestRecorderKeepHeaderFieldsNoneSet(t *testing.T) {
	rec := NewRecorder(newClientWriter(), DefaultMaxBody)
	defer rec.Release()
	rec.KeepHeaderFields([]string{"Content-Encoding"})
	rec.Header().Set("Content-Type", "text/plain")
	rec.WriteHeader(http.StatusNoContent)

	if got := rec.ResponseHeader(); got != nil {
		t.Errorf("ResponseHeader() = %v, want nil: no kept field was set", got)
	}
	if rec.Status() != http.StatusNoContent {
		t.Errorf("Status() = %d, want 204", rec.Status())
	}
}

// Caddy's respond handler sets Content-Type to nil so that net/http sends
// none, and its header matchers read a nil list as an absent field.
func TestRecorderKeepHeaderFieldsNilValues(t *testing.T) {
	rec := NewRecorder(newClientWriter(), DefaultMaxBody)
	defer rec.Release()
	rec.KeepHeaderFields([]string{"Content-Type", "Vary", "X-Request-Id"})
	rec.Header()["Content-Type"] = nil
	rec.Header()["Vary"] = []string{}
	rec.Header().Set("X-Request-Id", "r1")
	rec.WriteHeader(http.StatusOK)

	got := rec.ResponseHeader()
	if v, ok := got["Content-Type"]; !ok || v != nil {
		t.Errorf("Content-Type = %#v (present %v), want a nil list", v, ok)
	}
	if v, ok := got["Vary"]; !ok || v == nil || len(v) != 0 {
		t.Errorf("Vary = %#v (present %v), want an empty, non-nil list", v, ok)
	}
	if got.Get("X-Request-Id") != "r1" {
		t.Errorf("X-Request-Id = %q, want r1", got.Get("X-Request-Id"))
	}
}

func TestRecorderBody(t *testing.T) {
	tests := []struct {
		name          string
		maxBody       int
		writes        []string
		wantBody      string
		wantTruncated bool
	}{
		{"no writes", 10, nil, "", false},
		{"under limit", 10, []string{"hello"}, "hello", false},
		{"exactly at limit", 10, []string{"hello", "world"}, "helloworld", false},
		{"over limit in one write", 10, []string{"hello world!"}, "hello worl", true},
		{"over limit across writes", 10, []string{"hello", "wor", "ld!"}, "helloworld", true},
		{"write after full", 5, []string{"hello", "!"}, "hello", true},
		{"empty write after full", 5, []string{"hello", ""}, "hello", false},
		{"capture off", 0, []string{"hello"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClientWriter()
			rec := NewRecorder(client, tt.maxBody)
			defer rec.Release()

			for _, w := range tt.writes {
				n, err := rec.Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}

			if got := string(rec.Body()); got != tt.wantBody {
				t.Errorf("Body() = %q, want %q", got, tt.wantBody)
			}
			if rec.Truncated() != tt.wantTruncated {
				t.Errorf("Truncated() = %v, want %v", rec.Truncated(), tt.wantTruncated)
			}
			if want := strings.Join(tt.writes, ""); client.body.String() != want {
				t.Errorf("client got %q, want every byte %q", client.body.String(), want)
			}
		})
	}
}

func TestRecorderWriteErrorKeepsWrittenPart(t *testing.T) {
	client := newClientWriter()
	client.writeLimit = 3
	rec := NewRecorder(client, DefaultMaxBody)
	defer rec.Release()

	n, err := rec.Write([]byte("hello"))
	if !errors.Is(err, errClientGone) || n != 3 {
		t.Fatalf("Write = %d, %v; want 3, %v", n, err, errClientGone)
	}
	if got := string(rec.Body()); got != "hel" {
		t.Errorf("Body() = %q, want only the bytes written, %q", got, "hel")
	}
}

func TestRecorderReadFrom(t *testing.T) {
	tests := []struct {
		name          string
		maxBody       int
		body          string
		wantBody      string
		wantTruncated bool
		// wantFastPath is the number of bytes the client writer's own
		// ReadFrom copied once the capture buffer was full.
		wantFastPath int64
	}{
		{"under limit", 16, "short body", "short body", false, 0},
		{"exactly at limit", 4, "abcd", "abcd", false, 0},
		{"over limit", 4, "abcdefghij", "abcd", true, 6},
		{"capture off", 0, "abcdefghij", "", true, 10},
		{"empty", 16, "", "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClientWriter()
			rec := NewRecorder(client, tt.maxBody)
			defer rec.Release()

			n, err := io.Copy(rec, onlyReader{strings.NewReader(tt.body)})
			if err != nil || n != int64(len(tt.body)) {
				t.Fatalf("io.Copy = %d, %v; want %d, nil", n, err, len(tt.body))
			}

			if client.body.String() != tt.body {
				t.Errorf("client got %q, want %q", client.body.String(), tt.body)
			}
			if got := string(rec.Body()); got != tt.wantBody {
				t.Errorf("Body() = %q, want %q", got, tt.wantBody)
			}
			if rec.Truncated() != tt.wantTruncated {
				t.Errorf("Truncated() = %v, want %v", rec.Truncated(), tt.wantTruncated)
			}
			if client.readFromBytes != tt.wantFastPath {
				t.Errorf("client ReadFrom copied %d bytes, want %d", client.readFromBytes, tt.wantFastPath)
			}
			if rec.Status() != http.StatusOK {
				t.Errorf("Status() = %d, want 200", rec.Status())
			}
		})
	}
}

// slowReader returns its data one byte per Read.
type slowReader struct{ data []byte }

func (sr *slowReader) Read(p []byte) (int, error) {
	if len(sr.data) == 0 {
		return 0, io.EOF
	}
	p[0] = sr.data[0]
	sr.data = sr.data[1:]
	return 1, nil
}

func TestRecorderReadFromShortReads(t *testing.T) {
	client := newClientWriter()
	rec := NewRecorder(client, 5)
	defer rec.Release()

	n, err := rec.ReadFrom(&slowReader{data: []byte("abcdefgh")})
	if err != nil || n != 8 {
		t.Fatalf("ReadFrom = %d, %v; want 8, nil", n, err)
	}
	if got := string(rec.Body()); got != "abcde" {
		t.Errorf("Body() = %q, want %q", got, "abcde")
	}
	if !rec.Truncated() {
		t.Error("Truncated() = false, want true")
	}
	if client.body.String() != "abcdefgh" {
		t.Errorf("client got %q, want %q", client.body.String(), "abcdefgh")
	}
}

func TestRecorderReadFromWriteError(t *testing.T) {
	client := newClientWriter()
	client.writeLimit = 3
	rec := NewRecorder(client, DefaultMaxBody)
	defer rec.Release()

	n, err := rec.ReadFrom(onlyReader{strings.NewReader("hello")})
	if !errors.Is(err, errClientGone) || n != 3 {
		t.Fatalf("ReadFrom = %d, %v; want 3, %v", n, err, errClientGone)
	}
	if got := string(rec.Body()); got != "hel" {
		t.Errorf("Body() = %q, want only the bytes written, %q", got, "hel")
	}
}

func TestRecorderFlush(t *testing.T) {
	client := newClientWriter()
	rec := NewRecorder(client, DefaultMaxBody)
	defer rec.Release()

	_, _ = rec.Write([]byte("data: 1\n\n"))
	if err := http.NewResponseController(rec).Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if client.flushes != 1 {
		t.Errorf("client flushed %d times, want 1", client.flushes)
	}
}

// plainWriter implements only http.ResponseWriter.
type plainWriter struct{ header http.Header }

func (pw *plainWriter) Header() http.Header         { return pw.header }
func (pw *plainWriter) WriteHeader(int)             {}
func (pw *plainWriter) Write(p []byte) (int, error) { return len(p), nil }

func TestRecorderFlushNotSupported(t *testing.T) {
	rec := NewRecorder(&plainWriter{header: make(http.Header)}, DefaultMaxBody)
	defer rec.Release()

	err := http.NewResponseController(rec).Flush()
	if !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("Flush = %v, want http.ErrNotSupported", err)
	}
}

func TestRecorderSetWriteDeadline(t *testing.T) {
	rec := NewRecorder(&plainWriter{header: make(http.Header)}, DefaultMaxBody)
	defer rec.Release()

	// The call reaches the plain writer through Unwrap and fails there.
	err := http.NewResponseController(rec).SetWriteDeadline(time.Now())
	if !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("SetWriteDeadline = %v, want http.ErrNotSupported from the plain writer", err)
	}
}

func TestRecorderHijack(t *testing.T) {
	type result struct {
		status   int
		hijacked bool
		err      error
	}
	results := make(chan result, 1)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := NewRecorder(w, DefaultMaxBody)
		defer rec.Release()

		conn, brw, err := http.NewResponseController(rec).Hijack()
		if err != nil {
			results <- result{err: err}
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
		err = brw.Flush()
		results <- result{status: rec.Status(), hijacked: rec.Hijacked(), err: err}
	}))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: test\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading status line: %v", err)
	}
	if line != "HTTP/1.1 204 No Content\r\n" {
		t.Errorf("status line = %q, want the one written on the hijacked connection", line)
	}

	res := <-results
	if res.err != nil {
		t.Fatalf("handler: %v", res.err)
	}
	if !res.hijacked {
		t.Error("Hijacked() = false, want true")
	}
	if res.status != 0 {
		t.Errorf("Status() = %d, want 0: no status went through WriteHeader", res.status)
	}
}

func TestRecorderRelease(t *testing.T) {
	rec := NewRecorder(newClientWriter(), DefaultMaxBody)
	_, _ = rec.Write([]byte("hello"))
	if string(rec.Body()) != "hello" {
		t.Fatalf("Body() = %q before Release", rec.Body())
	}
	rec.Release()
	if rec.Body() != nil {
		t.Errorf("Body() after Release = %q, want nil", rec.Body())
	}
	rec.Release() // a second call does nothing

	next := NewRecorder(newClientWriter(), DefaultMaxBody)
	defer next.Release()
	_, _ = next.Write([]byte("x"))
	if string(next.Body()) != "x" {
		t.Errorf("a recorder after Release captured %q, want %q", next.Body(), "x")
	}
}
