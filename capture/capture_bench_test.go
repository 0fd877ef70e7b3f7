package capture_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-webhooks/caddy-webhooks/capture"
)

// discardWriter is a response writer that keeps its header map and drops
// the body. ReadFrom lets the recorder's fast path reach it, as it reaches
// net/http's response writer.
type discardWriter struct {
	header http.Header
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func (w *discardWriter) ReadFrom(src io.Reader) (int64, error) {
	return io.Copy(io.Discard, src)
}

// benchResponseSizes are response bodies below, at and far above the
// default capture limit of 64 KiB.
var benchResponseSizes = []struct {
	name string
	size int
}{
	{"1 KiB", 1 << 10},
	{"64 KiB", 64 << 10},
	{"1 MiB truncated", 1 << 20},
}

func BenchmarkRecorderWrite(b *testing.B) {
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB, a typical copy buffer
	for _, tc := range benchResponseSizes {
		b.Run(tc.name, func(b *testing.B) {
			w := &discardWriter{header: http.Header{"Content-Type": {"application/json"}}}
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			for b.Loop() {
				rec := capture.NewRecorder(w, capture.DefaultMaxBody)
				rec.WriteHeader(http.StatusOK)
				for remaining := tc.size; remaining > 0; remaining -= len(chunk) {
					if _, err := rec.Write(chunk[:min(remaining, len(chunk))]); err != nil {
						b.Fatal(err)
					}
				}
				if got, want := len(rec.Body()), min(tc.size, capture.DefaultMaxBody); got != want {
					b.Fatalf("captured %d bytes, want %d", got, want)
				}
				rec.Release()
			}
		})
	}
}

func BenchmarkRecorderReadFrom(b *testing.B) {
	for _, tc := range benchResponseSizes {
		b.Run(tc.name, func(b *testing.B) {
			body := bytes.Repeat([]byte("x"), tc.size)
			w := &discardWriter{header: http.Header{"Content-Type": {"application/octet-stream"}}}
			src := bytes.NewReader(body)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(body)
				rec := capture.NewRecorder(w, capture.DefaultMaxBody)
				n, err := rec.ReadFrom(src)
				if err != nil {
					b.Fatal(err)
				}
				if n != int64(tc.size) {
					b.Fatalf("ReadFrom copied %d bytes, want %d", n, tc.size)
				}
				rec.Release()
			}
		})
	}
}

func BenchmarkDecodeBodyGzip(b *testing.B) {
	plain := []byte(`{"items":[` + strings.Repeat(`{"sku":"A-1","quantity":1,"price":12.5},`, 400) + `{"sku":"B-2"}]}`)
	var compressed bytes.Buffer
	zw := gzip.NewWriter(&compressed)
	if _, err := zw.Write(plain); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(plain)))

	b.ReportAllocs()
	for b.Loop() {
		decoded, truncated, err := capture.DecodeBody("gzip", compressed.Bytes(), false, capture.DefaultMaxBody)
		if err != nil {
			b.Fatalf("DecodeBody: %v", err)
		}
		if truncated || len(decoded) != len(plain) {
			b.Fatalf("decoded %d bytes (truncated %v), want all %d", len(decoded), truncated, len(plain))
		}
	}
}

func BenchmarkRequestBodyRead(b *testing.B) {
	body := bytes.Repeat([]byte(`{"item":"book"}`), 1<<10) // 15 KiB
	buf := make([]byte, 4<<10)
	src := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))

	b.ReportAllocs()
	for b.Loop() {
		src.Reset(body)
		rb := capture.NewRequestBody(io.NopCloser(src), capture.DefaultMaxBody)
		for {
			_, err := rb.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		captured, truncated := rb.Seal()
		if truncated || len(captured) != len(body) {
			b.Fatalf("captured %d bytes (truncated %v), want all %d", len(captured), truncated, len(body))
		}
	}
}
