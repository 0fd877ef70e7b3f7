package capture

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func TestRequestBodyKeepsWholeBody(t *testing.T) {
	const body = `{"sku":"A-1","qty":2}`
	rb := NewRequestBody(io.NopCloser(iotest.OneByteReader(strings.NewReader(body))), DefaultMaxBody)

	got, err := io.ReadAll(rb)
	if err != nil {
		t.Fatalf("reading through the tee: %v", err)
	}
	if string(got) != body {
		t.Errorf("reader got %q, want %q", got, body)
	}

	kept, truncated := rb.Seal()
	if string(kept) != body {
		t.Errorf("kept %q, want %q", kept, body)
	}
	if truncated {
		t.Error("truncated = true for a body read to its end within the maximum")
	}
}

func TestRequestBodyKeepsFirstBytesOfLongBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	rb := NewRequestBody(io.NopCloser(bytes.NewReader(body)), 64)

	got, err := io.ReadAll(rb)
	if err != nil {
		t.Fatalf("reading through the tee: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("reader got %d bytes that differ from the %d sent", len(got), len(body))
	}

	kept, truncated := rb.Seal()
	if !bytes.Equal(kept, body[:64]) {
		t.Errorf("kept %q, want the first 64 bytes %q", kept, body[:64])
	}
	if !truncated {
		t.Error("truncated = false for a body longer than the maximum")
	}
}

func TestRequestBodyPartlyRead(t *testing.T) {
	rb := NewRequestBody(io.NopCloser(strings.NewReader("abcdefgh")), DefaultMaxBody)

	buf := make([]byte, 3)
	if _, err := io.ReadFull(rb, buf); err != nil {
		t.Fatalf("reading 3 bytes: %v", err)
	}

	kept, truncated := rb.Seal()
	if string(kept) != "abc" {
		t.Errorf("kept %q, want %q", kept, "abc")
	}
	if !truncated {
		t.Error("truncated = false for a body whose end was never read")
	}
}

func TestRequestBodyNeverRead(t *testing.T) {
	rb := NewRequestBody(io.NopCloser(strings.NewReader("unread")), DefaultMaxBody)

	kept, truncated := rb.Seal()
	if len(kept) != 0 {
		t.Errorf("kept %q from a body nobody read", kept)
	}
	if !truncated {
		t.Error("truncated = false for a body nobody read")
	}
}

func TestRequestBodyEmpty(t *testing.T) {
	rb := NewRequestBody(io.NopCloser(strings.NewReader("")), DefaultMaxBody)
	if _, err := io.ReadAll(rb); err != nil {
		t.Fatalf("reading an empty body: %v", err)
	}

	kept, truncated := rb.Seal()
	if len(kept) != 0 {
		t.Errorf("kept %q from an empty body", kept)
	}
	if truncated {
		t.Error("truncated = true for an empty body read to its end")
	}
}

func TestRequestBodyZeroMaximum(t *testing.T) {
	rb := NewRequestBody(io.NopCloser(strings.NewReader("abc")), 0)
	if _, err := io.ReadAll(rb); err != nil {
		t.Fatalf("reading: %v", err)
	}

	kept, truncated := rb.Seal()
	if len(kept) != 0 {
		t.Errorf("kept %q with a maximum of 0", kept)
	}
	if !truncated {
		t.Error("truncated = false although none of the 3 bytes read were kept")
	}
}

func TestRequestBodyReadErrorPassesThrough(t *testing.T) {
	rb := NewRequestBody(io.NopCloser(iotest.ErrReader(io.ErrUnexpectedEOF)), DefaultMaxBody)
	if _, err := rb.Read(make([]byte, 8)); err != io.ErrUnexpectedEOF {
		t.Errorf("Read error = %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return nil
}

func TestRequestBodyClosePassesThrough(t *testing.T) {
	inner := &closeRecorder{Reader: strings.NewReader("x")}
	rb := NewRequestBody(inner, DefaultMaxBody)
	if err := rb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !inner.closed {
		t.Error("Close did not close the wrapped body")
	}
}

// A transport may still read the request body after the handler has
// sealed the tee; the reads must pass through without touching what Seal
// returned.
func TestRequestBodyReadsAfterSeal(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1<<20)
	rb := NewRequestBody(io.NopCloser(bytes.NewReader(body)), 1024)

	var wg sync.WaitGroup
	var read int64
	wg.Go(func() {
		n, _ := io.Copy(io.Discard, rb)
		read = n
	})
	kept, _ := rb.Seal()
	keptCopy := bytes.Clone(kept)
	wg.Wait()

	if read != int64(len(body)) {
		t.Errorf("reader got %d bytes, want %d", read, len(body))
	}
	if !bytes.Equal(kept, keptCopy) {
		t.Error("bytes returned by Seal changed after later reads")
	}
	if len(kept) > 1024 {
		t.Errorf("kept %d bytes, more than the maximum of 1024", len(kept))
	}
}
