package delivery

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// attemptJob is one fetched event and the runner that attempts it.
type attemptJob struct {
	target *runner
	ctx    context.Context
	msg    jetstream.Msg
}

// workerPool runs the attempts of one fetch loop on goroutines that live
// on from one attempt to the next, so an attempt neither starts a goroutine
// nor grows a new stack. It starts workers as needed, up to the runner's
// Concurrency, and they end when jobs is closed. Only the fetch loop calls
// start.
type workerPool struct {
	runner  *runner
	wg      *sync.WaitGroup
	jobs    chan attemptJob
	workers int
}

// start hands job to an idle worker, or starts a worker for it when none is
// waiting and the pool is not full. A full pool has a worker that has
// released its slot and is on its way back to jobs, because a slot was free
// for job, so the wait is short. jobs is unbuffered, so the job never
// waits in a buffer.
func (p *workerPool) start(job attemptJob) {
	select {
	case p.jobs <- job:
		return
	default:
	}
	if p.workers < cap(p.runner.slots) {
		p.workers++
		p.wg.Go(func() { p.work(job) })
		return
	}
	p.jobs <- job
}

// work attempts job, releases its slot, and takes the next job until jobs
// is closed.
func (p *workerPool) work(job attemptJob) {
	for {
		job.target.handle(job.ctx, job.msg)
		<-p.runner.slots

		var ok bool
		if job, ok = <-p.jobs; !ok {
			return
		}
	}
}
