//go:build unix

package emitter

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"
)

// BenchmarkPublish measures what storing one event costs the process, from
// Enqueue until JetStream's acknowledgement: the publisher's goroutine, the
// nats.go client and the embedded server, which writes the event to its
// file store. Events are enqueued as fast as the queue takes them, keeping
// up to 1000 pending, as a busy site does. cpu-µs/event is the process's
// CPU time (user and system) per event, the figure to compare with the CPU
// that a proxied request costs. ns/op is wall time, and allocs/op counts
// the allocations of every goroutine, the server's included.
func BenchmarkPublish(b *testing.B) {
	var published atomic.Int64
	hooks := Hooks{Published: func(*Event, time.Duration) { published.Add(1) }}
	broker := acquire(b, testConfig(b), zap.NewNop(), hooks)
	ensureStreams(b, broker)
	publisher := broker.Publisher()

	// An envelope of the size the load harness's events have: a GET with
	// a query and a 70-byte JSON response.
	events := make([]*Event, b.N)
	for i := range events {
		id := ulid.Make().String()
		events[i] = &Event{
			ID:   id,
			Type: "bench.stored",
			Payload: fmt.Appendf(nil, `{"id":%q,"type":"bench.stored","timestamp":"2026-12-05T03:20:00.000000000Z",`+
				`"data":{"request":{"method":"GET","host":"127.0.0.1","path":"/items/1","query":{"seq":["%d"]}},`+
				`"response":{"status":200,"body":{"id":"1","name":"item 1","price":12.5,"tags":["a","b"],"stock":7}}}}`, id, i),
		}
	}

	const maxPending = 1000
	b.ReportAllocs()
	b.ResetTimer()
	cpuBefore := processCPU(b)
	for _, ev := range events {
		for publisher.Pending() >= maxPending {
			time.Sleep(200 * time.Microsecond)
		}
		if err := publisher.Enqueue(ev); err != nil {
			b.Fatalf("Enqueue(%s): %v", ev.ID, err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for published.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events acknowledged after a minute", published.Load(), b.N)
		}
		time.Sleep(100 * time.Microsecond)
	}
	cpu := processCPU(b) - cpuBefore
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}

// processCPU returns the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
