package receiver

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseSeq(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int64
		ok   bool
	}{
		{"envelope", `{"type":"bench.delivered","data":{"request":{"query":{"seq":["123"]}}}}`, 123, true},
		{"no query", `{"type":"bench.delivered","data":{"request":{"query":{}}}}`, 0, false},
		{"not a number", `{"query":{"seq":["abc"]}}`, 0, false},
		{"zero", `{"query":{"seq":["0"]}}`, 0, false},
		{"cut off", `{"query":{"seq":["12`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseSeq([]byte(tt.body))
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseSeq(%s) = %d, %v; want %d, %v", tt.body, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// post sends one webhook and returns the status.
func post(t *testing.T, url, id, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("webhook-id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("posting webhook %s: %v", id, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func envelope(seq string) string {
	return `{"data":{"request":{"query":{"seq":["` + seq + `"]}}}}`
}

func TestReceiverCountsEventsAndDuplicates(t *testing.T) {
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	if got := post(t, r.URL, "evt_1", envelope("1")); got != http.StatusNoContent {
		t.Errorf("status = %d, want 204", got)
	}
	post(t, r.URL, "evt_2", envelope("2"))
	post(t, r.URL, "evt_2", envelope("2"))
	post(t, r.URL, "evt_3", `{"data":{}}`)

	stats := r.Stats()
	if stats.Requests != 4 {
		t.Errorf("Requests = %d, want 4", stats.Requests)
	}
	if stats.Events != 3 {
		t.Errorf("Events = %d, want 3", stats.Events)
	}
	if stats.Duplicates != 1 {
		t.Errorf("Duplicates = %d, want 1", stats.Duplicates)
	}
	if stats.WithoutSeq != 1 {
		t.Errorf("WithoutSeq = %d, want 1", stats.WithoutSeq)
	}
	if missing := r.Missing([]int64{1, 2, 3}); len(missing) != 1 || missing[0] != 3 {
		t.Errorf("Missing(1, 2, 3) = %v, want [3]", missing)
	}
	if _, ok := r.Arrived(2); !ok {
		t.Error("Arrived(2) reports no arrival")
	}
}

func TestReceiverStatus(t *testing.T) {
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	r.SetStatus(http.StatusServiceUnavailable)
	if got := post(t, r.URL, "evt_1", envelope("1")); got != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", got)
	}
}

func TestReceiverHoldAndRelease(t *testing.T) {
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	r.Hold()
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post(r.URL, "application/json", strings.NewReader(envelope("7")))
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()

	// The held webhook must stay unanswered and unrecorded.
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case status := <-answered:
			t.Fatalf("held webhook answered with %d before Release", status)
		default:
		}
		if stats := r.Stats(); stats.Requests != 0 {
			t.Fatalf("held webhook recorded before Release: %+v", stats)
		}
		time.Sleep(10 * time.Millisecond)
	}

	r.Release()
	select {
	case status := <-answered:
		if status != http.StatusNoContent {
			t.Errorf("status after Release = %d, want 204", status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held webhook still unanswered 5s after Release")
	}
	if missing := r.WaitAll(context.Background(), []int64{7}, 5*time.Second); len(missing) != 0 {
		t.Errorf("WaitAll reports %v missing after Release", missing)
	}
}
