// Package capture records what a handler writes to an HTTP response without
// delaying it: the final status, the response header and the first bytes of
// the body.
package capture

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// DefaultMaxBody is the default maximum number of body bytes a Recorder
// keeps: 64 KiB.
const DefaultMaxBody = 64 << 10

// maxPooledBuffer is the largest buffer capacity that Release returns to the
// pool, so that one recorder with a large maximum does not keep its memory
// alive for every later response.
const maxPooledBuffer = 1 << 20

var bufferPool = sync.Pool{
	New: func() any { return new(bytes.Buffer) },
}

// Recorder wraps a response writer and records the response while passing
// every call through at once. Nothing is buffered on the way to the client,
// so streaming responses such as server-sent events are not delayed.
//
// It embeds *caddyhttp.ResponseWriterWrapper, whose Unwrap method lets
// http.NewResponseController reach the underlying writer for deadlines and
// other optional features. Flush and Hijack are implemented here because a
// flush can send the status and a hijack ends the response, and they reach
// the underlying writer through http.NewResponseController too.
//
// A Recorder is used by one handler goroutine, like any http.ResponseWriter.
// Call Release once the captured body is no longer needed.
type Recorder struct {
	*caddyhttp.ResponseWriterWrapper

	maxBody   int
	fields    []string // the header fields to copy; nil copies every field
	status    int
	header    http.Header
	body      *bytes.Buffer
	truncated bool
	hijacked  bool
}

// NewRecorder returns a Recorder that writes through to w and keeps at most
// maxBody bytes of the response body. A maxBody of 0 or less keeps no body.
func NewRecorder(w http.ResponseWriter, maxBody int) *Recorder {
	return &Recorder{
		ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w},
		maxBody:               max(maxBody, 0),
	}
}

// KeepHeaderFields limits the copy of the response header that the final
// status takes to the named fields, given in canonical form such as
// Content-Type. Without it, or with nil, the whole header is copied.
func (rec *Recorder) KeepHeaderFields(names []string) {
	rec.fields = names
}

// WriteHeader sends the status to the client and records it if it is final.
// Informational statuses (1xx) other than 101 Switching Protocols pass
// through without being recorded, because a final status follows them. A
// second final status is dropped, as Caddy's own recorder does.
func (rec *Recorder) WriteHeader(status int) {
	if rec.status != 0 {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		rec.ResponseWriterWrapper.WriteHeader(status)
		return
	}

	// A handler further out, such as encode, may change the shared header map
	// when its WriteHeader runs, so the copy is taken first.
	rec.header = copyFields(rec.ResponseWriterWrapper.Header(), rec.fields)
	rec.status = status
	rec.ResponseWriterWrapper.WriteHeader(status)
}

// Write sends p to the client and keeps the part of it that fits in the
// capture buffer. A Write before WriteHeader records status 200, as
// net/http does.
func (rec *Recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	n, err := rec.ResponseWriterWrapper.Write(p)
	rec.keep(p[:n])
	return n, err
}

// ReadFrom copies src to the client. While the capture buffer has room, it
// reads src straight into that buffer and writes those bytes on. After
// that it hands src to the underlying writer's ReadFrom, which keeps fast
// paths such as sendfile for the rest of the body.
func (rec *Recorder) ReadFrom(src io.Reader) (int64, error) {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}

	written, err := rec.readIntoCapture(src)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return written, nil
		}
		return written, err
	}

	n, err := rec.ResponseWriterWrapper.ReadFrom(src)
	if n > 0 {
		rec.truncated = true
	}
	return written + n, err
}

// readIntoCapture fills the capture buffer from src and writes every byte
// read to the client. It returns io.EOF when src ended before the buffer
// was full, and nil when the buffer is full and src may have more.
func (rec *Recorder) readIntoCapture(src io.Reader) (int64, error) {
	var written int64
	for rec.room() > 0 {
		buf := rec.buffer()
		buf.Grow(rec.room())
		chunk := buf.AvailableBuffer()[:rec.room()]

		n, readErr := src.Read(chunk)
		if n > 0 {
			wn, writeErr := rec.ResponseWriterWrapper.Write(chunk[:n])
			written += int64(wn)
			// chunk lies in buf's free space, so this Write only moves buf's length.
			buf.Write(chunk[:wn])
			if writeErr != nil {
				return written, writeErr
			}
			if wn < n {
				return written, io.ErrShortWrite
			}
		}
		if readErr != nil {
			return written, readErr
		}
	}
	return written, nil
}

// FlushError sends any buffered data to the client. A flush before
// WriteHeader sends status 200, as net/http does, so it records 200. It
// returns http.ErrNotSupported when the underlying writer cannot flush.
func (rec *Recorder) FlushError() error {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rec.ResponseWriterWrapper.ResponseWriter).Flush()
}

// Hijack takes over the client connection from the underlying writer and
// records that it did. Bytes sent on a hijacked connection are not captured.
func (rec *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rec.ResponseWriterWrapper.ResponseWriter).Hijack()
	if err == nil {
		rec.hijacked = true
	}
	return conn, brw, err
}

// Status returns the final status written, or 0 if no final status was
// written. Write, ReadFrom and Flush without WriteHeader count as 200.
func (rec *Recorder) Status() int {
	return rec.status
}

// ResponseHeader returns a copy of the response header taken when the final
// status was written, limited to the fields that KeepHeaderFields names. It
// is nil when no final status was written or none of those fields is
// present. It holds the fields the handlers set, but not those that
// net/http adds when it sends the header (Date, Content-Length, a sniffed
// Content-Type).
func (rec *Recorder) ResponseHeader() http.Header {
	return rec.header
}

// Body returns the captured start of the response body. The slice is valid
// until Release.
func (rec *Recorder) Body() []byte {
	if rec.body == nil {
		return nil
	}
	return rec.body.Bytes()
}

// Truncated reports whether more body bytes were written than Body holds.
func (rec *Recorder) Truncated() bool {
	return rec.truncated
}

// MaxBody returns the maximum number of body bytes the recorder keeps.
func (rec *Recorder) MaxBody() int {
	return rec.maxBody
}

// Hijacked reports whether the connection was hijacked through the recorder.
func (rec *Recorder) Hijacked() bool {
	return rec.hijacked
}

// Release returns the capture buffer to the pool. Body returns nil after
// it, and the recorder must not be written to again.
func (rec *Recorder) Release() {
	if rec.body == nil {
		return
	}
	if rec.body.Cap() <= maxPooledBuffer {
		rec.body.Reset()
		bufferPool.Put(rec.body)
	}
	rec.body = nil
}

// copyFields copies the named fields of h, or every field when names is
// nil. It returns nil when none of the fields is present. A field present
// with a nil value list stays nil, as in Header.Clone, because Caddy's
// header matchers read it as absent. The values of all fields share one
// slice, so they take one allocation however many fields there are.
func copyFields(h http.Header, names []string) http.Header {
	if names == nil {
		return h.Clone()
	}
	present, count := 0, 0
	for _, name := range names {
		if v, ok := h[name]; ok {
			present++
			count += len(v)
		}
	}
	if present == 0 {
		return nil
	}
	values := make([]string, 0, count)
	out := make(http.Header, present)
	for _, name := range names {
		v, ok := h[name]
		switch {
		case !ok:
		case v == nil:
			out[name] = nil
		default:
			start := len(values)
			values = append(values, v...)
			out[name] = values[start:len(values):len(values)]
		}
	}
	return out
}

// keep appends as much of p as fits to the capture buffer and records
// whether some of it did not fit.
func (rec *Recorder) keep(p []byte) {
	if len(p) == 0 {
		return
	}
	room := rec.room()
	if len(p) > room {
		rec.truncated = true
		p = p[:room]
	}
	if len(p) > 0 {
		rec.buffer().Write(p)
	}
}

// room returns how many more body bytes fit in the capture buffer.
func (rec *Recorder) room() int {
	if rec.body == nil {
		return rec.maxBody
	}
	return rec.maxBody - rec.body.Len()
}

// buffer returns the capture buffer, taking one from the pool on first use
// so that responses without a body never touch the pool.
func (rec *Recorder) buffer() *bytes.Buffer {
	if rec.body == nil {
		rec.body = bufferPool.Get().(*bytes.Buffer)
	}
	return rec.body
}

// Interface guards
var (
	_ http.ResponseWriter                       = (*Recorder)(nil)
	_ io.ReaderFrom                             = (*Recorder)(nil)
	_ http.Hijacker                             = (*Recorder)(nil)
	_ interface{ FlushError() error }           = (*Recorder)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*Recorder)(nil)
)
