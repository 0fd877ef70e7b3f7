package capture

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// RequestBody wraps a request body and keeps the first bytes that the next
// handler reads from it. It never reads on its own, so the upstream gets the
// body exactly as the client sent it, at the pace it reads it, and a body
// that no handler reads stays unread.
//
// An HTTP client transport may go on reading a request body in its own
// goroutine after the round trip returned, so the kept bytes are guarded by
// a mutex, and Seal stops the recording before they are handed on.
type RequestBody struct {
	body io.ReadCloser

	mu      sync.Mutex
	maxBody int
	kept    *bytes.Buffer
	read    int64
	ended   bool
	sealed  bool
}

// NewRequestBody returns a RequestBody that reads from body and keeps at
// most maxBody bytes. A maxBody of 0 or less keeps nothing, but still
// records whether the body was read to its end.
func NewRequestBody(body io.ReadCloser, maxBody int) *RequestBody {
	return &RequestBody{body: body, maxBody: max(maxBody, 0)}
}

// Read reads from the wrapped body and keeps what fits of the bytes read.
func (b *RequestBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return n, err
	}
	b.read += int64(n)
	if room := b.maxBody - b.keptLen(); room > 0 && n > 0 {
		if b.kept == nil {
			b.kept = bufferPool.Get().(*bytes.Buffer)
		}
		b.kept.Write(p[:min(n, room)])
	}
	if errors.Is(err, io.EOF) {
		b.ended = true
	}
	return n, err
}

// Close closes the wrapped body.
func (b *RequestBody) Close() error {
	return b.body.Close()
}

// Seal stops the recording and returns a copy of the kept bytes. truncated
// is true when the body was not read to its end or was longer than the
// maximum, so that the bytes returned are not the whole body. Reads after
// Seal still pass through to the wrapped body.
func (b *RequestBody) Seal() (kept []byte, truncated bool) {
	b.mu.Lock()
	defer b.mu.Unlock()

	b.sealed = true
	if b.kept != nil {
		kept = bytes.Clone(b.kept.Bytes())
		if b.kept.Cap() <= maxPooledBuffer {
			b.kept.Reset()
			bufferPool.Put(b.kept)
		}
		b.kept = nil
	}
	truncated = !b.ended || b.read > int64(len(kept))
	return kept, truncated
}

func (b *RequestBody) keptLen() int {
	if b.kept == nil {
		return 0
	}
	return b.kept.Len()
}

// Interface guard
var _ io.ReadCloser = (*RequestBody)(nil)
