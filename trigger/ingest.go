package trigger

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// DefaultIngestBatch is the default of IngestOptions.BatchSize.
const DefaultIngestBatch = 500

// IngestOptions tune IngestNotifications and IngestEvents; zero values
// take the defaults.
type IngestOptions struct {
	// BatchSize is the number of items (notifications or events) per
	// transaction. Default DefaultIngestBatch.
	BatchSize int
	// Workers is the number of goroutines that distil, check and match
	// the next batch while the current one is written. Default
	// runtime.GOMAXPROCS(0).
	Workers int
}

func (o IngestOptions) withDefaults() IngestOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultIngestBatch
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o
}

// IngestNotifications stores many notifications: it splits them, in
// order, into batches of opts.BatchSize, and writes each batch as
// AddNotifications does, in a transaction of its own. The batches are
// pipelined: while one batch is written, the next one is distilled,
// checked against the limits and matched against the triggers on
// opts.Workers goroutines, so that the CPU work of a batch overlaps the
// database work of the one before. The clock is read when a batch is
// written.
//
// Atomicity is per batch, and batches commit in input order. On success
// there is one Result per notification, in input order. When a batch
// cannot be written (its transaction failed after the retries AddEvents
// makes, or ctx ended), the batches before it stay committed: the results
// returned are those of their notifications (a prefix of the input,
// len(results) long), and the error names the failed batch. Nothing of
// the failed batch or of the batches after it is stored; a caller may
// submit bodies[len(results):] again (what was stored meanwhile comes back
// as Duplicate). The notifications of the batch prepared ahead of a failed
// one count as received in the manager's Stats though none was written.
func (m *Manager) IngestNotifications(ctx context.Context, bodies [][]byte, opts IngestOptions) ([]Result, error) {
	return m.ingest(ctx, len(bodies), opts, "notifications", func(lo, hi, workers int) *ingestBatch {
		return m.prepareNotifications(bodies[lo:hi], workers)
	})
}

// IngestEvents stores many events as IngestNotifications stores
// notifications: in batches of opts.BatchSize, one transaction each,
// checking and matching the next batch while one is written, with the same
// results and the same atomicity per batch.
func (m *Manager) IngestEvents(ctx context.Context, events []stream.Event, opts IngestOptions) ([]Result, error) {
	return m.ingest(ctx, len(events), opts, "events", func(lo, hi, workers int) *ingestBatch {
		c := m.check(events[lo:hi])
		c.prepareAhead(workers)
		return &ingestBatch{results: make([]Result, hi-lo), events: c, index: identity(hi - lo)}
	})
}

// ingestBatch is one batch of a pipelined ingest, ready to write: the
// results of its items that never reach the database (undistillable
// notifications) and its events, with the index of each event's item.
type ingestBatch struct {
	results []Result
	events  *checkedBatch
	index   []int
}

// ingest runs the pipeline of IngestNotifications and IngestEvents over n
// items: one goroutine prepares the batches in order (prepare(lo, hi,
// workers) for items lo to hi-1), at most one ahead of the one being
// written; the calling goroutine writes them in order.
func (m *Manager) ingest(ctx context.Context, n int, opts IngestOptions, what string, prepare func(lo, hi, workers int) *ingestBatch) ([]Result, error) {
	opts = opts.withDefaults()
	type prepared struct {
		lo, hi int
		b      *ingestBatch
	}
	ready := make(chan prepared) // unbuffered: the preparer is one batch ahead
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ready)
		for lo := 0; lo < n; lo += opts.BatchSize {
			hi := min(lo+opts.BatchSize, n)
			select {
			case ready <- prepared{lo, hi, prepare(lo, hi, opts.Workers)}:
			case <-stop:
				return
			}
		}
	})
	defer wg.Wait()
	defer close(stop)

	results := make([]Result, 0, n)
	for p := range ready {
		if err := ctx.Err(); err != nil {
			return results, fmt.Errorf("%s %d to %d: %w", what, p.lo, p.hi-1, context.Cause(ctx))
		}
		res, err := m.writeIngestBatch(ctx, p.b)
		if err != nil {
			return results, fmt.Errorf("%s %d to %d: %w", what, p.lo, p.hi-1, err)
		}
		results = append(results, res...)
	}
	return results, nil
}

// writeIngestBatch writes a prepared batch in one transaction and returns
// the results of its items.
func (m *Manager) writeIngestBatch(ctx context.Context, b *ingestBatch) ([]Result, error) {
	if len(b.index) == 0 {
		return b.results, nil
	}
	res, err := m.addChecked(ctx, b.events)
	if err != nil {
		return nil, err
	}
	for j, i := range b.index {
		b.results[i] = res[j]
	}
	return b.results, nil
}

// prepareNotifications distils bodies on up to workers goroutines, then
// checks and matches the events.
func (m *Manager) prepareNotifications(bodies [][]byte, workers int) *ingestBatch {
	results := make([]Result, len(bodies))
	events := make([]stream.Event, len(bodies))
	ok := make([]bool, len(bodies))
	parallel(len(bodies), workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			events[i], results[i], ok[i] = m.DistillNotification(bodies[i])
		}
	})
	var kept []stream.Event
	var index []int
	for i := range bodies {
		if ok[i] {
			kept = append(kept, events[i])
			index = append(index, i)
		}
	}
	c := m.check(kept)
	c.prepareAhead(workers)
	return &ingestBatch{results: results, events: c, index: index}
}

// prepareAhead does before the transaction what writeChecked would do in
// it without a database: it matches the valid events against the
// triggers on up to workers goroutines and, meanwhile, encodes them for
// the store (db.EncodeEvents). An event the store would refuse is left to
// SaveEvents, which fails the batch with the same error.
func (c *checkedBatch) prepareAhead(workers int) {
	encoded := make(chan struct{})
	go func() {
		defer close(encoded)
		if e, err := db.EncodeEvents(c.valid); err == nil {
			c.encoded = &e
		}
	}()
	matches := make([]eventMatch, len(c.valid))
	parallel(len(c.valid), workers, func(lo, hi int) {
		copy(matches[lo:hi], matchEvents(c.set, c.valid[lo:hi]))
	})
	c.matches = matches
	<-encoded
}

// minParallel is the fewest items per goroutine worth starting one for.
const minParallel = 32

// parallel calls fn over [0, n) split into up to workers contiguous
// ranges, each on a goroutine of its own, and waits for them.
func parallel(n, workers int, fn func(lo, hi int)) {
	workers = min(workers, n/minParallel)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		wg.Go(func() { fn(lo, min(lo+chunk, n)) })
	}
	wg.Wait()
}

func identity(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
