package alerts

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// sink records the digests a Collector sends.
type sink struct {
	mu      sync.Mutex
	digests []Digest
	sent    chan struct{}
}

func newSink() *sink { return &sink{sent: make(chan struct{}, 100)} }

func (s *sink) send(d Digest) {
	s.mu.Lock()
	s.digests = append(s.digests, d)
	s.mu.Unlock()
	s.sent <- struct{}{}
}

func (s *sink) all() []Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Digest(nil), s.digests...)
}

func (s *sink) wait(t *testing.T, n int) []Digest {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for range n {
		select {
		case <-s.sent:
		case <-deadline:
			t.Fatalf("got %d digests, want %d", len(s.all()), n)
		}
	}
	return s.all()
}

func TestCollectorOneDigestPerInterval(t *testing.T) {
	s := newSink()
	c := NewCollector(100*time.Millisecond, s.send)
	now := time.Now()
	for i := range 3 {
		c.Add(DeadLetter{Destination: "orders", EventID: fmt.Sprintf("ev%d", i), EventType: "order.created", Reason: "status 500", Time: now.Add(time.Duration(i) * time.Millisecond)})
	}

	digests := s.wait(t, 1)
	if len(digests) != 1 {
		t.Fatalf("got %d digests for 3 dead letters in one interval, want 1", len(digests))
	}
	d := digests[0]
	if d.Destination != "orders" || d.Count != 3 {
		t.Errorf("digest destination %q count %d, want orders and 3", d.Destination, d.Count)
	}
	if len(d.EventIDs) != 3 || d.EventIDs[0] != "ev0" || d.EventIDs[2] != "ev2" {
		t.Errorf("digest event ids %v, want ev0 ev1 ev2", d.EventIDs)
	}
	if len(d.EventTypes) != 1 || d.EventTypes[0] != "order.created" {
		t.Errorf("digest event types %v, want [order.created]", d.EventTypes)
	}
	if !d.First.Equal(now) || !d.Last.Equal(now.Add(2*time.Millisecond)) {
		t.Errorf("digest spans %v to %v, want the first and last dead letter's times", d.First, d.Last)
	}

	// A dead letter after the digest went out starts a new interval.
	c.Add(DeadLetter{Destination: "orders", EventID: "ev3", Time: time.Now()})
	if digests := s.wait(t, 1); len(digests) != 2 || digests[1].Count != 1 {
		t.Errorf("digests after a later dead letter: %+v, want a second digest of 1", digests)
	}
}

func TestCollectorSeparatesDestinations(t *testing.T) {
	s := newSink()
	c := NewCollector(50*time.Millisecond, s.send)
	c.Add(DeadLetter{Destination: "orders", EventID: "a"})
	c.Add(DeadLetter{Destination: "billing", EventID: "b"})

	digests := s.wait(t, 2)
	seen := map[string]int{}
	for _, d := range digests {
		seen[d.Destination] += d.Count
	}
	if seen["orders"] != 1 || seen["billing"] != 1 {
		t.Errorf("digest counts by destination %v, want one each for orders and billing", seen)
	}
}

func TestCollectorBoundsEventIDs(t *testing.T) {
	s := newSink()
	c := NewCollector(time.Hour, s.send)
	for i := range MaxDigestIDs + 30 {
		c.Add(DeadLetter{Destination: "orders", EventID: fmt.Sprint(i), EventType: fmt.Sprint("type", i)})
	}
	c.Close(context.Background())

	d := s.wait(t, 1)[0]
	if d.Count != MaxDigestIDs+30 {
		t.Errorf("count %d, want %d", d.Count, MaxDigestIDs+30)
	}
	if len(d.EventIDs) != MaxDigestIDs || len(d.EventTypes) != MaxDigestIDs {
		t.Errorf("digest lists %d ids and %d types, want at most %d each", len(d.EventIDs), len(d.EventTypes), MaxDigestIDs)
	}
}

func TestCollectorCloseSendsPending(t *testing.T) {
	s := newSink()
	c := NewCollector(time.Hour, s.send)
	c.Add(DeadLetter{Destination: "orders", EventID: "a"})
	c.Close(context.Background())

	if digests := s.all(); len(digests) != 1 || digests[0].Count != 1 {
		t.Fatalf("digests after Close: %+v, want the pending one", digests)
	}
	c.Add(DeadLetter{Destination: "orders", EventID: "b"})
	time.Sleep(20 * time.Millisecond)
	if digests := s.all(); len(digests) != 1 {
		t.Errorf("Add after Close produced a digest: %+v", digests)
	}
}
