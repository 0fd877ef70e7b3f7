package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// maxZstdWindow is the largest zstd window that DecodeBody accepts: 8 MiB,
// the limit that RFC 9659 sets for the "zstd" HTTP content coding. A frame
// that declares a larger window is rejected before the window is allocated.
const maxZstdWindow = 8 << 20

// maxCodings is the largest number of content codings that DecodeBody
// removes from one body. Each coding costs a decoder with its own window, so
// a header that repeats a coding many times must not multiply that memory.
// Real responses use one coding, rarely two.
const maxCodings = 4

// DecodeBody returns the captured response body decoded from the content
// codings listed in contentEncoding, the value of the Content-Encoding
// header with several header lines joined by commas. It decodes gzip
// (also as x-gzip), br and zstd. Codings are listed in the order they were
// applied, so they are removed from last to first. Identity entries are
// skipped. If any other coding is listed, body and truncated are returned
// unchanged, because the result would still be encoded.
//
// truncated reports whether body is only the start of the response body.
// At most maxBody decoded bytes are kept in one buffer of maxBody+1 bytes.
// So a small compressed body that expands to gigabytes costs only that
// buffer plus the decoders' windows: 32 KiB for gzip, at most 16 MiB for br
// and 8 MiB for zstd. bodyTruncated is true when the output was cut at maxBody
// or when truncated is true.
//
// A decoder that runs out of input in a truncated body keeps what it
// decoded. Any other decoding error returns body and truncated unchanged
// together with the error, so the caller can fall back to the bytes as sent.
func DecodeBody(contentEncoding string, body []byte, truncated bool, maxBody int) (decoded []byte, bodyTruncated bool, err error) {
	codings, ok := parseCodings(contentEncoding)
	if !ok || len(codings) == 0 || len(body) == 0 {
		return body, truncated, nil
	}
	if maxBody <= 0 {
		return nil, true, nil
	}
	if len(codings) > maxCodings {
		return body, truncated, fmt.Errorf("decoding content codings %q: more than %d codings, so the body is left as sent", contentEncoding, maxCodings)
	}

	decoded, cut, err := decodeAll(codings, body, maxBody)
	if err != nil {
		if truncated && errors.Is(err, io.ErrUnexpectedEOF) {
			return decoded, true, nil
		}
		return body, truncated, fmt.Errorf("decoding content codings %q: %w", contentEncoding, err)
	}
	return decoded, cut || truncated, nil
}

// parseCodings returns the codings of a Content-Encoding value in lower
// case, without identity entries. ok is false when a coding is not one
// that DecodeBody can decode.
func parseCodings(contentEncoding string) (codings []string, ok bool) {
	for token := range strings.SplitSeq(contentEncoding, ",") {
		coding := strings.ToLower(strings.TrimSpace(token))
		switch coding {
		case "", "identity":
			continue
		case "x-gzip":
			coding = "gzip"
		case "gzip", "br", "zstd":
		default:
			return nil, false
		}
		codings = append(codings, coding)
	}
	return codings, true
}

// decodeAll chains one streaming decoder per coding, the last applied
// coding reading body first, and reads at most maxBody+1 bytes of the final
// output to learn whether there was more. Intermediate outputs are never
// held in full because each decoder reads from the one before it on demand.
func decodeAll(codings []string, body []byte, maxBody int) (decoded []byte, cut bool, err error) {
	var src io.Reader = bytes.NewReader(body)
	for _, coding := range slices.Backward(codings) {
		r, closeDecoder, err := newDecoder(coding, src)
		if err != nil {
			return nil, false, err
		}
		defer closeDecoder()
		src = r
	}

	// One byte more than maxBody shows whether the output goes on. The
	// buffer is allocated once at that size and never grows.
	buf := make([]byte, maxBody+1)
	n, err := readUntilFull(src, buf)
	if n > maxBody {
		return buf[:maxBody], true, nil
	}
	return buf[:n], false, err
}

// readUntilFull reads from src into buf until buf is full or src ends. It
// returns nil at the end of src, unlike io.ReadFull, so that an
// io.ErrUnexpectedEOF comes only from a decoder whose input ended early.
func readUntilFull(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, normalizeEOF(err)
		}
	}
	return n, nil
}

// newDecoder returns a reader that decodes one coding from src, and a
// function that releases the decoder's resources.
func newDecoder(coding string, src io.Reader) (io.Reader, func(), error) {
	switch coding {
	case "gzip":
		r, err := gzip.NewReader(src)
		if err != nil {
			return nil, nil, fmt.Errorf("reading gzip header: %w", normalizeEOF(err))
		}
		return r, func() { _ = r.Close() }, nil
	case "br":
		return brotli.NewReader(src), func() {}, nil
	case "zstd":
		// With one decoder goroutine the stream is decoded synchronously,
		// and the window limit bounds the memory that a frame can claim.
		d, err := zstd.NewReader(src,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, nil, fmt.Errorf("creating zstd decoder: %w", err)
		}
		return d, d.Close, nil
	}
	// parseCodings admits only the codings above.
	panic("capture: no decoder for content coding " + coding)
}

// normalizeEOF turns an io.EOF that a decoder returns for input that ended
// inside its stream into io.ErrUnexpectedEOF, so that callers test for one
// error only.
func normalizeEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
