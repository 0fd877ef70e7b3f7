package webhooks_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// streamingUpstream serves a websocket echo on /ws and a server-sent-events
// stream on /events that sends its second event only when release closes.
func streamingUpstream(t *testing.T, release <-chan struct{}) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		for {
			typ, data, err := conn.Read(r.Context())
			if err != nil {
				return
			}
			if err := conn.Write(r.Context(), typ, data); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		fmt.Fprint(w, "data: first\n\n")
		_ = rc.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: second\n\n")
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Close() })
	return ln.Addr().String()
}

func TestWebsocketAndSSEThroughMatchingRules(t *testing.T) {
	release := make(chan struct{})
	upstream := streamingUpstream(t, release)
	rc := newReceiver(t, nil)

	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port := freePort(t)
	config := fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	webhooks {
		endpoint main %s {
			events stream.*
			allow_private
		}
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	webhooks {
		event stream.socket {
			path /ws
			status 101
		}
		event stream.events {
			path /events
			status 200
		}
	}
	reverse_proxy %s
}
`, admin, rc.URL, port, upstream)
	startCaddy(t, config, "", admin)
	base := fmt.Sprintf("127.0.0.1:%d", port)

	// The websocket echo works through the handler.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+base+"/ws", nil)
	if err != nil {
		t.Fatalf("dialing the websocket through Caddy: %v", err)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatalf("writing to the websocket: %v", err)
	}
	_, echoed, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("reading the websocket echo: %v", err)
	}
	if string(echoed) != "ping" {
		t.Errorf("websocket echo = %q, expected ping", echoed)
	}
	conn.Close(websocket.StatusNormalClosure, "")

	// The first SSE event reaches the client while the stream is still open.
	resp, err := http.Get("http://" + base + "/events")
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	firstLine := make(chan string, 1)
	go func() {
		line, _ := lines.ReadString('\n')
		firstLine <- line
	}()
	select {
	case line := <-firstLine:
		if strings.TrimSpace(line) != "data: first" {
			t.Errorf("first SSE line = %q, expected %q", line, "data: first")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first SSE event did not reach the client while the stream was open")
	}
	close(release)
	rest, _ := lines.ReadString(0)
	if !strings.Contains(rest, "data: second") {
		t.Errorf("rest of the SSE stream = %q, expected the second event", rest)
	}

	// Both rules emitted their event once the exchanges ended.
	ds := rc.waitCount(t, 30*time.Second, 2)
	types := map[string]int{}
	for _, d := range ds {
		var envelope struct {
			Type string `json:"type"`
			Data struct {
				Response struct {
					Status int `json:"status"`
				} `json:"response"`
			} `json:"data"`
		}
		if err := json.Unmarshal(d.Body, &envelope); err != nil {
			t.Fatal(err)
		}
		types[fmt.Sprintf("%s %d", envelope.Type, envelope.Data.Response.Status)]++
	}
	if types["stream.socket 101"] != 1 || types["stream.events 200"] != 1 {
		t.Errorf("events = %v, expected one stream.socket 101 and one stream.events 200", types)
	}
}
