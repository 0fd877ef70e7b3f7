package capture

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/caddy-webhooks/caddy-webhooks/internal/codingtest"
)

// incompressible returns n bytes that no coding shrinks much, so that a
// compressed copy is about as long as the data.
func incompressible(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func TestDecodeBodyRoundTrip(t *testing.T) {
	data := []byte(`{"id":42,"items":["` + strings.Repeat("book ", 500) + `"]}`)
	for _, coding := range []string{"gzip", "x-gzip", "br", "zstd", "GZIP", " zstd "} {
		t.Run(coding, func(t *testing.T) {
			encoder := strings.ToLower(strings.TrimSpace(coding))
			if encoder == "x-gzip" {
				encoder = "gzip"
			}
			body := codingtest.Encode(t, encoder, data)

			decoded, truncated, err := DecodeBody(coding, body, false, DefaultMaxBody)
			if err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			if !bytes.Equal(decoded, data) {
				t.Errorf("decoded %d bytes %.40q, want the %d bytes encoded", len(decoded), decoded, len(data))
			}
			if truncated {
				t.Error("truncated = true for a complete body")
			}
		})
	}
}

func TestDecodeBodyCutAtLimit(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	for _, coding := range []string{"gzip", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			body := codingtest.Encode(t, coding, data)

			decoded, truncated, err := DecodeBody(coding, body, false, 4096)
			if err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			if !bytes.Equal(decoded, data[:4096]) {
				t.Errorf("decoded %d bytes, want the first 4096 bytes of the data", len(decoded))
			}
			if !truncated {
				t.Error("truncated = false for output cut at the limit")
			}
		})
	}
}

func TestDecodeBodyExactlyAtLimit(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 4096)
	body := codingtest.Encode(t, "gzip", data)

	decoded, truncated, err := DecodeBody("gzip", body, false, 4096)
	if err != nil {
		t.Fatalf("DecodeBody: %v", err)
	}
	if len(decoded) != 4096 {
		t.Errorf("decoded %d bytes, want 4096", len(decoded))
	}
	if truncated {
		t.Error("truncated = true for output exactly at the limit")
	}
}

func TestDecodeBodyTruncatedCapture(t *testing.T) {
	data := incompressible(32 << 10)
	for _, coding := range []string{"gzip", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			full := codingtest.Encode(t, coding, data)
			body := full[:len(full)/2]

			decoded, truncated, err := DecodeBody(coding, body, true, DefaultMaxBody)
			if err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			if !truncated {
				t.Error("truncated = false for a truncated capture")
			}
			if len(decoded) >= len(data) {
				t.Errorf("decoded %d bytes from half the stream, want fewer than %d", len(decoded), len(data))
			}
			if !bytes.Equal(decoded, data[:len(decoded)]) {
				t.Error("decoded bytes are not a prefix of the data")
			}
		})
	}
}

func TestDecodeBodyTruncatedCaptureCompleteOutput(t *testing.T) {
	// The stream decodes completely, but the recorder saw more bytes than it
	// kept, so the body may continue after it.
	data := []byte(`{"id":42}`)
	body := codingtest.Encode(t, "gzip", data)

	decoded, truncated, err := DecodeBody("gzip", body, true, DefaultMaxBody)
	if err != nil {
		t.Fatalf("DecodeBody: %v", err)
	}
	if !bytes.Equal(decoded, data) {
		t.Errorf("decoded %q, want %q", decoded, data)
	}
	if !truncated {
		t.Error("truncated = false although the capture was truncated")
	}
}

func TestDecodeBodyCorrupt(t *testing.T) {
	data := []byte(`{"id":42,"note":"` + strings.Repeat("abc", 300) + `"}`)
	tests := []struct {
		name      string
		coding    string
		body      []byte
		truncated bool
	}{
		{"gzip garbage", "gzip", []byte("this is not gzip at all"), false},
		{"gzip garbage truncated", "gzip", []byte("this is not gzip at all"), true},
		{"gzip cut without truncation", "gzip", codingtest.Encode(t, "gzip", data)[:40], false},
		{"gzip bad checksum", "gzip", flipByte(codingtest.Encode(t, "gzip", data), -6), false},
		{"br garbage", "br", []byte("\xff\xff\xff\xff not brotli"), false},
		{"zstd garbage", "zstd", []byte("not zstd either"), false},
		{"zstd bad magic", "zstd", flipByte(codingtest.Encode(t, "zstd", data), 0), false},
		{"plain text labeled gzip", "gzip", data, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decoded, truncated, err := DecodeBody(tt.coding, tt.body, tt.truncated, DefaultMaxBody)
			if err == nil {
				t.Fatalf("DecodeBody returned %d bytes and no error for a corrupt stream", len(decoded))
			}
			if !bytes.Equal(decoded, tt.body) {
				t.Errorf("decoded = %.40q, want the body as sent", decoded)
			}
			if truncated != tt.truncated {
				t.Errorf("truncated = %v, want the capture's %v", truncated, tt.truncated)
			}
		})
	}
}

// flipByte returns a copy of b with the byte at index i inverted. A
// negative i counts from the end.
func flipByte(b []byte, i int) []byte {
	b = bytes.Clone(b)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0xff
	return b
}

func TestDecodeBodyLeavesOtherCodingsAlone(t *testing.T) {
	gz := codingtest.Encode(t, "gzip", []byte("hello"))
	tests := []struct {
		name     string
		encoding string
		body     []byte
	}{
		{"no header", "", []byte(`{"id":42}`)},
		{"identity", "identity", []byte(`{"id":42}`)},
		{"unknown", "compress", []byte("\x1f\x9d\x90abc")},
		{"deflate", "deflate", []byte("x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15")},
		{"unknown outside gzip", "gzip, snappy", gz},
		{"unknown inside gzip", "snappy, gzip", gz},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, truncated := range []bool{false, true} {
				decoded, gotTruncated, err := DecodeBody(tt.encoding, tt.body, truncated, DefaultMaxBody)
				if err != nil {
					t.Fatalf("DecodeBody: %v", err)
				}
				if !bytes.Equal(decoded, tt.body) {
					t.Errorf("decoded = %q, want the body unchanged", decoded)
				}
				if gotTruncated != truncated {
					t.Errorf("truncated = %v, want the capture's %v", gotTruncated, truncated)
				}
			}
		})
	}
}

func TestDecodeBodyMultipleCodings(t *testing.T) {
	data := []byte(`{"id":42,"name":"layered"}`)
	tests := []struct {
		encoding string
		applied  []string // in the order the encoder applied them
	}{
		{"gzip, br", []string{"gzip", "br"}},
		{"br,zstd", []string{"br", "zstd"}},
		{"zstd, identity, gzip", []string{"zstd", "gzip"}},
		{"gzip", []string{"gzip"}},
		{"gzip, gzip", []string{"gzip", "gzip"}},
		{"gzip, gzip, gzip, gzip", []string{"gzip", "gzip", "gzip", "gzip"}},
	}
	for _, tt := range tests {
		t.Run(tt.encoding, func(t *testing.T) {
			body := data
			for _, coding := range tt.applied {
				body = codingtest.Encode(t, coding, body)
			}

			decoded, truncated, err := DecodeBody(tt.encoding, body, false, DefaultMaxBody)
			if err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			if !bytes.Equal(decoded, data) {
				t.Errorf("decoded = %q, want %q", decoded, data)
			}
			if truncated {
				t.Error("truncated = true for a complete body")
			}
		})
	}
}

func TestDecodeBodyWrongOrderFails(t *testing.T) {
	// gzip was applied last, so the header must list it last.
	body := codingtest.Encode(t, "br", codingtest.Encode(t, "gzip", []byte(`{"id":42}`)))

	decoded, _, err := DecodeBody("br, gzip", body, false, DefaultMaxBody)
	if err == nil {
		t.Fatalf("DecodeBody returned %q and no error for codings in the wrong order", decoded)
	}
	if !bytes.Equal(decoded, body) {
		t.Error("decoded is not the body as sent")
	}
}

func TestDecodeBodyTooManyCodings(t *testing.T) {
	body := []byte(`{"id":42}`)
	for range maxCodings + 1 {
		body = codingtest.Encode(t, "gzip", body)
	}
	encoding := strings.TrimSuffix(strings.Repeat("gzip, ", maxCodings+1), ", ")

	decoded, truncated, err := DecodeBody(encoding, body, false, DefaultMaxBody)
	if err == nil {
		t.Fatalf("DecodeBody returned %q and no error for %d codings", decoded, maxCodings+1)
	}
	if !bytes.Equal(decoded, body) {
		t.Error("decoded is not the body as sent")
	}
	if truncated {
		t.Error("truncated = true for a complete body")
	}
}

func TestDecodeBodyEmptyAndNoRoom(t *testing.T) {
	decoded, truncated, err := DecodeBody("gzip", nil, false, DefaultMaxBody)
	if err != nil || decoded != nil || truncated {
		t.Errorf("empty body: got (%q, %v, %v), want (nil, false, nil)", decoded, truncated, err)
	}

	body := codingtest.Encode(t, "gzip", []byte("hello"))
	decoded, truncated, err = DecodeBody("gzip", body, false, 0)
	if err != nil || len(decoded) != 0 || !truncated {
		t.Errorf("limit 0: got (%q, %v, %v), want (nil, true, nil)", decoded, truncated, err)
	}
}

// bomb returns size zero bytes encoded with coding, written in chunks so the
// test never holds the decoded data.
func bomb(t *testing.T, coding string, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		// A gzip body may hold several members back to back, so one member
		// of 1 MiB of zeros repeated stands for the whole stream and is
		// much quicker to build than one large member.
		member := codingtest.Encode(t, "gzip", make([]byte, 1<<20))
		return bytes.Repeat(member, size>>20)
	case "br":
		w = brotli.NewWriterLevel(&buf, brotli.BestSpeed)
	case "zstd":
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	chunk := make([]byte, 1<<20)
	for written := 0; written < size; written += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatalf("writing %s bomb: %v", coding, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("closing %s bomb: %v", coding, err)
	}
	return buf.Bytes()
}

func TestDecodeBodyBomb(t *testing.T) {
	const size = 100 << 20
	for _, coding := range []string{"gzip", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			body := bomb(t, coding, size)

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			decoded, truncated, err := DecodeBody(coding, body, false, DefaultMaxBody)
			runtime.ReadMemStats(&after)

			if err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			if len(decoded) != DefaultMaxBody {
				t.Errorf("decoded %d bytes, want the limit %d", len(decoded), DefaultMaxBody)
			}
			if !truncated {
				t.Error("truncated = false for a 100 MiB output")
			}
			// The decoders' windows (32 KiB for gzip, at most 16 MiB for br
			// and 8 MiB for zstd) and the output buffer are all that may be
			// allocated, far below the 100 MiB that the body expands to.
			allocated := after.TotalAlloc - before.TotalAlloc
			if allocated > 32<<20 {
				t.Errorf("decoding allocated %s, want at most 32 MiB", mebibytes(allocated))
			}
			t.Logf("%s: %d compressed bytes, %s allocated", coding, len(body), mebibytes(allocated))
		})
	}
}

func mebibytes(n uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
