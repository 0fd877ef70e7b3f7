package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	values := []time.Duration{ms(1), ms(2), ms(3), ms(4), ms(5), ms(6), ms(7), ms(8), ms(9), ms(10)}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"no values", nil, 0.5, 0},
		{"one value", []time.Duration{ms(7)}, 0.99, ms(7)},
		{"median of ten", values, 0.5, ms(5)},
		{"p90 of ten", values, 0.9, ms(9)},
		{"p99 of ten", values, 0.99, ms(10)},
		{"p0 is the minimum", values, 0, ms(1)},
		{"p100 is the maximum", values, 1, ms(10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p=%v) = %s, want %s", tt.p, got, tt.want)
			}
		})
	}
}

// seqServer records the sequence numbers it receives and fails every
// request whose number is divisible by failEvery, if failEvery is set.
type seqServer struct {
	mu        sync.Mutex
	seqs      []int64
	failEvery int64
}

func (s *seqServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseInt(r.URL.Query().Get(SeqParameter), 10, 64)
	if err != nil {
		http.Error(w, "missing seq", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.seqs = append(s.seqs, seq)
	s.mu.Unlock()
	if s.failEvery > 0 && seq%s.failEvery == 0 {
		http.Error(w, "failing on purpose", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func TestClosedLoopRequestCount(t *testing.T) {
	srv := &seqServer{failEvery: 10}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	run := ClosedLoop{
		Target:      Target{Client: NewClient(4), URL: ts.URL + "/items/1", Seq: new(Sequence)},
		Connections: 4,
		Requests:    50,
	}
	res, err := run.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	if len(srv.seqs) != 50 {
		t.Errorf("server got %d requests, want 50", len(srv.seqs))
	}
	if len(res.Succeeded) != 45 {
		t.Errorf("Succeeded has %d requests, want 45", len(res.Succeeded))
	}
	if res.Failed != 5 {
		t.Errorf("Failed = %d, want 5 (every tenth request answers 503)", res.Failed)
	}
	if res.FirstError == nil {
		t.Error("FirstError is nil after failed requests")
	}

	var seqs []int64
	for _, d := range res.Succeeded {
		if d.Seq%10 == 0 {
			t.Errorf("request %d answered 503 but is listed as succeeded", d.Seq)
		}
		if d.Latency <= 0 || d.At.IsZero() {
			t.Errorf("request %d has latency %s and time %v, want both set", d.Seq, d.Latency, d.At)
		}
		seqs = append(seqs, d.Seq)
	}
	slices.Sort(seqs)
	if len(slices.Compact(seqs)) != len(res.Succeeded) {
		t.Error("sequence numbers of succeeded requests repeat")
	}
	if !slices.IsSortedFunc(res.Succeeded, func(a, b Done) int { return int(a.Latency - b.Latency) }) {
		t.Error("Succeeded is not sorted by latency")
	}
}

func TestClosedLoopDurationLetsRequestsFinish(t *testing.T) {
	// Every request takes 50ms, so requests are in flight when the
	// duration ends. They must complete rather than be canceled.
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		_, _ = w.Write([]byte("{}"))
	})
	ts := httptest.NewServer(slow)
	defer ts.Close()

	run := ClosedLoop{
		Target:      Target{Client: NewClient(3), URL: ts.URL, Seq: new(Sequence)},
		Connections: 3,
		Duration:    120 * time.Millisecond,
	}
	res, err := run.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Failed != 0 {
		t.Errorf("Failed = %d (first error %v), want 0", res.Failed, res.FirstError)
	}
	if len(res.Succeeded) < 3 {
		t.Errorf("Succeeded has %d requests, want at least 3", len(res.Succeeded))
	}
	if res.Rate() <= 0 {
		t.Errorf("Rate() = %v, want a positive rate", res.Rate())
	}
}

func TestClosedLoopRejectsMissingLimit(t *testing.T) {
	run := ClosedLoop{Target: Target{Client: NewClient(1), URL: "http://127.0.0.1:1", Seq: new(Sequence)}, Connections: 1}
	if _, err := run.Run(context.Background()); err == nil {
		t.Error("Run without a duration or request count returned no error")
	}
}

func TestOpenLoopSendsAtRate(t *testing.T) {
	srv := new(seqServer)
	ts := httptest.NewServer(srv)
	defer ts.Close()

	run := OpenLoop{
		Target:      Target{Client: NewClient(8), URL: ts.URL, Seq: new(Sequence)},
		PerSecond:   200,
		Duration:    250 * time.Millisecond,
		MaxInFlight: 8,
	}
	res, err := run.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// 200/s for 250ms schedules exactly 50 requests.
	if len(res.Succeeded) != 50 {
		t.Errorf("Succeeded has %d requests (failed %d: %v), want 50", len(res.Succeeded), res.Failed, res.FirstError)
	}
	if res.Elapsed < 245*time.Millisecond {
		t.Errorf("Elapsed = %s, want at least the 245ms over which the requests were scheduled", res.Elapsed)
	}
}

func TestOpenLoopRejectsZeroRate(t *testing.T) {
	run := OpenLoop{Target: Target{Client: NewClient(1), URL: "http://127.0.0.1:1", Seq: new(Sequence)}, Duration: time.Second, MaxInFlight: 1}
	if _, err := run.Run(context.Background()); err == nil {
		t.Error("Run with rate 0 returned no error")
	}
}
