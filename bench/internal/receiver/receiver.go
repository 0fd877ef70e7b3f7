// Package receiver is a webhook receiver for load tests. It listens on
// 127.0.0.1, responds to every webhook with one status, and records when
// each event arrived. It can hold webhooks back, so that a load test can fill a
// backlog and then release it at once.
package receiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/loadgen"
)

// seqMarker starts the sequence number in the event envelope's query
// object: "query":{"seq":["123"]}.
var seqMarker = []byte(`"` + loadgen.SeqParameter + `":["`)

// Receiver is a running webhook receiver.
type Receiver struct {
	// URL is the receiver's URL, for the endpoint config.
	URL string

	server *http.Server

	mu       sync.Mutex
	status   int
	held     chan struct{} // closed on release; nil while not holding
	requests int
	byID     map[string]int
	bySeq    map[int64]time.Time
	noSeq    int
	last     time.Time
}

// Start starts a receiver on a port of 127.0.0.1 picked by the kernel. It
// responds with 204 No Content until SetStatus changes that.
func Start() (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for webhooks on 127.0.0.1: %w", err)
	}
	r := &Receiver{
		URL:    "http://" + ln.Addr().String() + "/hooks",
		status: http.StatusNoContent,
		byID:   make(map[string]int),
		bySeq:  make(map[int64]time.Time),
	}
	r.server = &http.Server{Handler: http.HandlerFunc(r.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.server.Serve(ln) }()
	return r, nil
}

// Close releases held webhooks and stops the receiver.
func (r *Receiver) Close() error {
	r.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.server.Shutdown(ctx); err != nil {
		return errors.Join(err, r.server.Close())
	}
	return nil
}

// SetStatus sets the status of the following responses.
func (r *Receiver) SetStatus(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = status
}

// Hold makes the following webhooks wait, unanswered and unrecorded, until
// Release.
func (r *Receiver) Hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held == nil {
		r.held = make(chan struct{})
	}
}

// Release lets the held webhooks through and stops holding.
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held != nil {
		close(r.held)
		r.held = nil
	}
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}

	r.mu.Lock()
	held := r.held
	r.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-req.Context().Done():
			return
		}
	}

	id := req.Header.Get("webhook-id")
	seq, hasSeq := parseSeq(body)
	now := time.Now()

	r.mu.Lock()
	status := r.status
	r.requests++
	r.last = now
	if id != "" {
		r.byID[id]++
	}
	switch {
	case !hasSeq:
		r.noSeq++
	case r.bySeq[seq].IsZero():
		r.bySeq[seq] = now
	}
	r.mu.Unlock()

	w.WriteHeader(status)
}

// parseSeq finds the request's sequence number in an event envelope.
func parseSeq(body []byte) (int64, bool) {
	i := bytes.Index(body, seqMarker)
	if i < 0 {
		return 0, false
	}
	digits := body[i+len(seqMarker):]
	end := bytes.IndexByte(digits, '"')
	if end < 0 {
		return 0, false
	}
	seq, err := strconv.ParseInt(string(digits[:end]), 10, 64)
	if err != nil || seq <= 0 {
		return 0, false
	}
	return seq, true
}

// Stats are the counts of a receiver.
type Stats struct {
	// Requests counts the webhooks responded to, retries included.
	Requests int

	// Events counts the distinct webhook-id values.
	Events int

	// Duplicates counts the webhooks whose webhook-id had arrived before.
	Duplicates int

	// WithoutSeq counts the webhooks whose body had no sequence number.
	WithoutSeq int

	// Last is the time of the last response.
	Last time.Time
}

// Stats returns the current counts.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	duplicates := 0
	for _, n := range r.byID {
		duplicates += n - 1
	}
	return Stats{
		Requests:   r.requests,
		Events:     len(r.byID),
		Duplicates: duplicates,
		WithoutSeq: r.noSeq,
		Last:       r.last,
	}
}

// Arrived returns when the first webhook of request seq arrived.
func (r *Receiver) Arrived(seq int64) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.bySeq[seq]
	return at, ok
}

// Missing returns the sequence numbers of seqs whose webhook has not
// arrived, in the order of seqs.
func (r *Receiver) Missing(seqs []int64) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var missing []int64
	for _, seq := range seqs {
		if _, ok := r.bySeq[seq]; !ok {
			missing = append(missing, seq)
		}
	}
	return missing
}

// WaitAll waits until the webhooks of every request in seqs have arrived,
// or timeout passes, or ctx ends. It returns the requests still missing,
// none on success.
func (r *Receiver) WaitAll(ctx context.Context, seqs []int64, timeout time.Duration) []int64 {
	deadline := time.Now().Add(timeout)
	missing := r.Missing(seqs)
	for len(missing) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		missing = r.Missing(missing)
	}
	return missing
}
