package main

import (
	"testing"
	"time"
)

func TestParseTopCum(t *testing.T) {
	out := []byte(`File: caddy
Type: cpu
Duration: 15s, Total samples = 14.53s (96.86%)
Showing nodes accounting for 3.18s, 21.89% of 14.53s total
      flat  flat%   sum%        cum   cum%
     0.01s 0.069% 0.069%      8.85s 60.91%  net/http.(*conn).serve
         0     0%  0.41%      5.95s 40.95%  net/http.serverHandler.ServeHTTP
    10ms  0.07%  0.48%      70ms  0.48%  github.com/nats-io/nats%2ego.(*Conn).waitForMsgs
         0     0%  0.48%      0.07s  0.48%  runtime.gcBgMarkWorker.func2 (inline)
`)
	want := map[string]time.Duration{
		"net/http.(*conn).serve":                           8850 * time.Millisecond,
		"net/http.serverHandler.ServeHTTP":                 5950 * time.Millisecond,
		"github.com/nats-io/nats%2ego.(*Conn).waitForMsgs": 70 * time.Millisecond,
		"runtime.gcBgMarkWorker.func2 (inline)":            70 * time.Millisecond,
	}
	got := parseTopCum(out)
	if len(got) != len(want) {
		t.Errorf("parsed %d functions, want %d: %v", len(got), len(want), got)
	}
	for name, d := range want {
		if got[name] != d {
			t.Errorf("cumulative time of %s = %v, want %v", name, got[name], d)
		}
	}
}
