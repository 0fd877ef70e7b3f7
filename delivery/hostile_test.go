package delivery

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// rawReceiver is a TCP server on 127.0.0.1 that reads one HTTP request per
// connection and lets write send any bytes back, so a test can break HTTP
// in ways net/http servers do not allow. write should return when stop is
// closed or a write fails.
type rawReceiver struct {
	ln      net.Listener
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	written []int // bytes written on each connection, in order of closing
}

func newRawReceiver(t *testing.T, write func(conn net.Conn, stop <-chan struct{}) int) *rawReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	rr := &rawReceiver{ln: ln, stop: make(chan struct{})}
	rr.wg.Add(1)
	go func() {
		defer rr.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			rr.wg.Add(1)
			go func() {
				defer rr.wg.Done()
				defer conn.Close()
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				n := write(conn, rr.stop)
				rr.mu.Lock()
				rr.written = append(rr.written, n)
				rr.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		close(rr.stop)
		ln.Close()
		rr.wg.Wait()
	})
	return rr
}

func (rr *rawReceiver) url() string { return "http://" + rr.ln.Addr().String() + "/hook" }

// trickle writes text one byte per interval until it is all written, a
// write fails or stop is closed.
func trickle(conn net.Conn, stop <-chan struct{}, text string, interval time.Duration) int {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for i := range len(text) {
		if _, err := conn.Write([]byte{text[i]}); err != nil {
			return i
		}
		select {
		case <-stop:
			return i + 1
		case <-ticker.C:
		}
	}
	return len(text)
}

// endless writes the head and then body chunks until a write fails or stop
// is closed, and returns the bytes written.
func endless(conn net.Conn, stop <-chan struct{}, head string) int {
	n, err := conn.Write([]byte(head))
	if err != nil {
		return n
	}
	chunk := []byte("8000\r\n" + strings.Repeat("x", 0x8000) + "\r\n")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-stop:
			return n
		default:
		}
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		written, err := conn.Write(chunk)
		n += written
		if err != nil && !isTimeout(err) {
			return n
		}
	}
	return n
}

func isTimeout(err error) bool {
	netErr, ok := err.(net.Error)
	return ok && netErr.Timeout()
}

func TestEndlessBodyKeepsMemoryFlat(t *testing.T) {
	rr := newRawReceiver(t, func(conn net.Conn, stop <-chan struct{}) int {
		return endless(conn, stop, "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n")
	})
	s := guardedSender(t, rr.url(), func(e *Endpoint) {
		e.AllowPrivate = true
		e.Timeout = ms(2000)
	})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := sendTestEvent(t, s)
	runtime.ReadMemStats(&after)

	if res.errorClass != ClassStatus || res.statusCode != http.StatusInternalServerError {
		t.Errorf("class %q, status %d; want %q, 500 (error: %v)", res.errorClass, res.statusCode, ClassStatus, res.err)
	}
	if len(res.response) != maxResponseBytes {
		t.Errorf("kept %d bytes of the response, want %d", len(res.response), maxResponseBytes)
	}
	if res.duration >= 2*time.Second {
		t.Errorf("attempt took %s, want it to end before the 2s timeout once 4 KiB are read", res.duration)
	}
	// The heap may grow by the connection's buffers, but not by the body.
	const maxGrowth = 10 << 20
	if growth := int64(after.HeapAlloc) - int64(before.HeapAlloc); growth > maxGrowth {
		t.Errorf("heap grew by %d bytes during the attempt, want at most %d", growth, maxGrowth)
	}

	// The sender closes the connection instead of draining the body, so
	// the receiver's writes fail.
	waitUntil(t, 10*time.Second, func() error {
		rr.mu.Lock()
		defer rr.mu.Unlock()
		if len(rr.written) != 1 {
			return fmt.Errorf("receiver is still writing: %d connections ended, want 1", len(rr.written))
		}
		return nil
	})
}

func TestHostileReceiversAreRetried(t *testing.T) {
	const timeout = time.Second
	const margin = 900 * time.Millisecond
	hugeHeader := "X-Filler: " + strings.Repeat("a", 70<<10) + "\r\n"
	tests := []struct {
		name      string
		write     func(conn net.Conn, stop <-chan struct{}) int
		wantClass string
		wantError string
		// atTimeout is true when the attempt must last the whole timeout.
		atTimeout bool
	}{
		{
			name: "headers one byte a second",
			write: func(conn net.Conn, stop <-chan struct{}) int {
				return trickle(conn, stop, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", time.Second)
			},
			wantClass: ClassTimeout,
			atTimeout: true,
		},
		{
			name: "body one byte a second",
			write: func(conn net.Conn, stop <-chan struct{}) int {
				n, err := conn.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\nRetry-After: soon\r\n\r\n"))
				if err != nil {
					return n
				}
				return n + trickle(conn, stop, strings.Repeat("z", 100), time.Second)
			},
			wantClass: ClassStatus,
			wantError: "503",
			atTimeout: true,
		},
		{
			name: "endless body",
			write: func(conn net.Conn, stop <-chan struct{}) int {
				return endless(conn, stop, "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n")
			},
			wantClass: ClassStatus,
			wantError: "500",
		},
		{
			name: "endless 103 Early Hints",
			write: func(conn net.Conn, stop <-chan struct{}) int {
				hint := []byte("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
				n := 0
				for range 100000 {
					select {
					case <-stop:
						return n
					default:
					}
					written, err := conn.Write(hint)
					n += written
					if err != nil {
						return n
					}
				}
				return n
			},
			wantClass: ClassConnection,
			wantError: "exceeded 65536 bytes",
		},
		{
			name: "huge headers",
			write: func(conn net.Conn, _ <-chan struct{}) int {
				n, _ := conn.Write([]byte("HTTP/1.1 200 OK\r\n" + hugeHeader + "Content-Length: 0\r\n\r\n"))
				return n
			},
			wantClass: ClassConnection,
			wantError: "exceeded 65536 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startJetStream(t)
			rr := newRawReceiver(t, tt.write)
			retry := 300 * time.Millisecond
			e := newEndpoint(t, "hostile", rr.url(), func(e *Endpoint) {
				e.Timeout = caddy.Duration(timeout)
				e.Retry = []caddy.Duration{caddy.Duration(retry)}
			})
			startWorkers(t, js, Options{}, e)

			publishEvent(t, js, "evt-hostile", "order.created", []byte(`{"id":1}`))
			waitUntil(t, 20*time.Second, func() error {
				if dead := deadLetters(t, js, "hostile"); len(dead) != 1 {
					return fmt.Errorf("got %d dead letters, want 1", len(dead))
				}
				return nil
			})

			records := attemptRecords(t, js, "hostile", "evt-hostile")
			if len(records) != 2 {
				t.Fatalf("got %d attempt records, want 2", len(records))
			}
			for i, want := range []string{OutcomeRetry, OutcomeDeadLetter} {
				rec := records[i]
				if rec.Outcome != want || rec.ErrorClass != tt.wantClass {
					t.Errorf("attempt %d: outcome %q, class %q; want %q, %q (error: %s)", i+1, rec.Outcome, rec.ErrorClass, want, tt.wantClass, rec.Error)
				}
				if !strings.Contains(rec.Error, tt.wantError) {
					t.Errorf("attempt %d: error %q does not contain %q", i+1, rec.Error, tt.wantError)
				}
				duration := time.Duration(rec.DurationMS * float64(time.Millisecond))
				if duration > timeout+margin {
					t.Errorf("attempt %d took %s, want at most the %s timeout plus %s", i+1, duration, timeout, margin)
				}
				if tt.atTimeout && duration < timeout {
					t.Errorf("attempt %d took %s, want it to last the %s timeout", i+1, duration, timeout)
				}
				if len(rec.Response) > maxResponseBytes {
					t.Errorf("attempt %d kept %d bytes of the response, want at most %d", i+1, len(rec.Response), maxResponseBytes)
				}
			}

			// The retry waits for the schedule's delay, less its 20% jitter,
			// and a garbage Retry-After does not change it.
			first, err := time.Parse(TimeFormat, records[0].Time)
			if err != nil {
				t.Fatal(err)
			}
			second, err := time.Parse(TimeFormat, records[1].Time)
			if err != nil {
				t.Fatal(err)
			}
			firstDuration := time.Duration(records[0].DurationMS * float64(time.Millisecond))
			if gap := second.Sub(first) - firstDuration; gap < retry*8/10 {
				t.Errorf("second attempt started %s after the first ended, want at least %s", gap, retry*8/10)
			}
		})
	}
}
