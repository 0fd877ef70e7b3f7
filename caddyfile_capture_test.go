package webhooks

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfileCapture(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // the rule's capture as JSON
	}{
		{"request body on the line", "capture request_body", `{"request_body":true}`},
		{"none", "capture none", `{"response_body":false}`},
		{"both bodies on the line", "capture request_body response_body", `{"request_body":true,"response_body":true}`},
		{
			name:  "block",
			input: "capture {\n request_body\n response_body off\n request_header X-Tenant X-Request-Id\n request_header Authorization\n response_header Location\n max_body 128KiB\n}",
			want:  `{"request_body":true,"response_body":false,"request_headers":["X-Tenant","X-Request-Id","Authorization"],"response_headers":["Location"],"max_body":131072}`,
		},
		{"response body on", "capture {\n response_body on\n}", `{"response_body":true}`},
		{"every header", "capture {\n request_header *\n}", `{"request_headers":["*"]}`},
		{"none in block", "capture {\n none\n}", `{"response_body":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := "webhooks {\n event a.b {\n" + tt.input + "\n }\n}"
			h := new(Handler)
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			got, err := json.Marshal(h.Rules[0].Capture)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("capture = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestUnmarshalCaddyfilePayload(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // the rule's payload, compacted
	}{
		{
			name:  "flat block",
			input: "payload {\n\"order_id\": \"{webhook.response.body.id}\",\n\"status\": \"{webhook.response.status}\"\n}",
			want:  `{"order_id":"{webhook.response.body.id}","status":"{webhook.response.status}"}`,
		},
		{
			name:  "nested object without comma after it",
			input: "payload {\n\"customer\": {\n\"id\": \"{webhook.request.body.customer.id}\"\n}\n\"n\": 1\n}",
			want:  `{"customer":{"id":"{webhook.request.body.customer.id}"},"n":1}`,
		},
		{
			name:  "nested object last",
			input: "payload {\n\"a\": [1, 2],\n\"customer\": {\n\"id\": 7\n}\n}",
			want:  `{"a":[1,2],"customer":{"id":7}}`,
		},
		{
			name:  "json escapes in a quoted string",
			input: "payload {\n\"text\": \"line\\nbreak \\\"quoted\\\" \\u2028 tab\\t\"\n}",
			want:  `{"text":"line\nbreak \"quoted\" \u2028 tab\t"}`,
		},
		{
			name:  "backticks",
			input: "payload `{\"id\": \"{webhook.event.id}\", \"nested\": {\"x\": [1]}}`",
			want:  `{"id":"{webhook.event.id}","nested":{"x":[1]}}`,
		},
		{
			name:  "heredoc",
			input: "payload <<JSON\n{\"id\": \"{webhook.event.id}\", \"nested\": {\"x\": [1]}}\nJSON",
			want:  `{"id":"{webhook.event.id}","nested":{"x":[1]}}`,
		},
		{
			name:  "unquoted json on the line",
			input: `payload {"id":"{webhook.event.id}"}`,
			want:  `{"id":"{webhook.event.id}"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := "webhooks {\n event a.b {\n" + tt.input + "\n }\n}"
			h := new(Handler)
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, h.Rules[0].Payload); err != nil {
				t.Fatalf("payload %s is not valid JSON: %v", h.Rules[0].Payload, err)
			}
			if compact.String() != tt.want {
				t.Errorf("payload = %s, want %s", compact.String(), tt.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileCaptureErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"unknown item on the line", "capture headers", `unrecognized capture item "headers" on the capture line`},
		{"unknown item in block", "capture {\n bodies\n}", `unrecognized capture item "bodies"`},
		{"none with others", "capture none request_body", "capture none keeps nothing"},
		{"none with block items", "capture {\n none\n request_header X\n}", "capture none keeps nothing"},
		{"twice", "capture request_body\ncapture none", "capture is given twice"},
		{"header without name", "capture {\n request_header\n}", "capture request_header needs at least one field name"},
		{"max_body zero", "capture {\n max_body 0\n}", `invalid capture max_body "0"`},
		{"max_body too large", "capture {\n max_body 1MiB\n}", `invalid capture max_body "1MiB": use a size from 1B to 256KiB`},
		{"max_body not a size", "capture {\n max_body lots\n}", `invalid capture max_body "lots"`},
		{"max_body two sizes", "capture {\n max_body 1KiB 2KiB\n}", "capture max_body takes one size"},
		{"response_body bad value", "capture {\n response_body maybe\n}", `capture response_body: invalid value "maybe"`},
		{"request_body argument", "capture {\n request_body yes\n}", "capture request_body takes no arguments"},
		{"payload invalid json", "payload {\n\"a\": \n}", "invalid payload template"},
		{"payload twice", "payload `{}`\npayload `{}`", "payload is given twice"},
		{"payload empty", "payload", "payload needs a JSON template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := "webhooks {\n event a.b {\n" + tt.input + "\n }\n}"
			err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
			if err == nil {
				t.Fatalf("UnmarshalCaddyfile succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
