package payload_test

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/payload"
)

func BenchmarkDefault(b *testing.B) {
	jsonBody := `{"id":42,"items":[` + strings.Repeat(`{"sku":"A-1","quantity":1,"price":12.5},`, 400) + `{"sku":"B-2","quantity":2,"price":3}]}`
	binaryBody := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0x00, 0xff}, 2731) // 16 KiB that is not UTF-8
	cases := []struct {
		name      string
		body      []byte
		truncated bool
	}{
		{"empty body", nil, false},
		{"small JSON body", []byte(`{"id":42,"status":"created"}`), false},
		{"16 KiB JSON body", []byte(jsonBody), false},
		{"16 KiB text body", []byte(strings.Repeat("order 42 created. ", 910)), false},
		{"16 KiB binary body", binaryBody, false},
		{"64 KiB truncated JSON body", []byte(strings.Repeat(jsonBody, 5)[:64<<10]), true},
	}
	query := url.Values{"source": {"web"}, "tag": {"a", "b"}}
	observed := time.Date(2026, 12, 4, 19, 20, 0, 123_000_000, time.UTC)

	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			x := &payload.Exchange{
				EventID:   "01JEX3Q5V6M2B8K7T9W4R1N0ZC",
				EventType: "order.created",
				Timestamp: observed,
				Request:   payload.Request{Method: "POST", Host: "api.example.com", Path: "/orders", Query: query},
				Response:  payload.Response{Status: 201, Body: tc.body, BodyTruncated: tc.truncated},
			}
			b.SetBytes(int64(len(tc.body)))

			b.ReportAllocs()
			for b.Loop() {
				envelope, err := payload.Default(x)
				if err != nil {
					b.Fatalf("Default: %v", err)
				}
				if len(envelope) == 0 {
					b.Fatal("Default returned an empty envelope")
				}
			}
		})
	}
}
