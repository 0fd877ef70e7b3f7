// Package codingtest compresses test data with the HTTP content codings
// that the handler decodes: gzip, br and zstd.
package codingtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Encode returns data compressed with coding, and fails the test for a
// coding it has no encoder for.
func Encode(t testing.TB, coding string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatalf("creating zstd writer: %v", err)
		}
		w = zw
	default:
		t.Fatalf("no test encoder for %q", coding)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("encoding %s: %v", coding, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("closing %s writer: %v", coding, err)
	}
	return buf.Bytes()
}
