package delivery

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func TestRecordWriterStoresEveryRecord(t *testing.T) {
	js := startJetStream(t)
	w := newRecordWriter(js, defaultLayout, zaptest.NewLogger(t))

	// More records than maxPendingRecords, so write also waits for space.
	const records = 2*maxPendingRecords + 10
	for i := range records {
		w.write(AttemptRecord{
			EventID:        fmt.Sprintf("evt%04d", i),
			Destination:    "orders",
			StreamSequence: uint64(i + 1),
			Attempt:        1,
			Outcome:        OutcomeSuccess,
		})
	}
	if !w.wait(t.Context()) {
		t.Fatal("wait returned false before every record was confirmed")
	}
	for _, i := range []int{0, maxPendingRecords, records - 1} {
		id := fmt.Sprintf("evt%04d", i)
		if got := attemptRecords(t, js, "orders", id); len(got) != 1 {
			t.Errorf("event %s has %d attempt records, want 1", id, len(got))
		}
	}
	waitUntil(t, 5*time.Second, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.collecting {
			return fmt.Errorf("collector still running with %d queued", len(w.queue))
		}
		return nil
	})
}
