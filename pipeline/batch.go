package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// maxGroup bounds the streams completed by one transaction.
const maxGroup = 1000

// claimHorizon is about how long the streams of one claim take to start:
// a worker whose pipelines are slow claims fewer than BatchSize streams at
// a time, so that workers sharing a database share the slow streams
// instead of one of them holding a large batch (see claimLimit).
const claimHorizon = 2 * time.Second

// claimLimit is how many streams the next claim of Run takes: BatchSize, or
// fewer when the recent pipeline run times say that the worker's slots
// would take longer than claimHorizon to start them all (but at least one
// per slot).
func (w *Worker) claimLimit() int {
	w.mu.Lock()
	avg := w.avgRun
	w.mu.Unlock()
	if avg <= 0 {
		return w.cfg.BatchSize
	}
	n := int64(w.cfg.Concurrency) * int64(claimHorizon/avg)
	return int(min(max(n, int64(w.cfg.Concurrency)), int64(w.cfg.BatchSize)))
}

// observeRun adds a pipeline's run time to the moving average.
func (w *Worker) observeRun(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.avgRun <= 0 {
		w.avgRun = max(d, time.Nanosecond)
		return
	}
	w.avgRun += (d - w.avgRun) / 8
}

// task is what a claimed stream's goroutine gets from its batch: the
// stream's events when the batch loaded them, the function that frees its
// slot, and the batch's completer.
type task struct {
	// The stream's resolution (what it runs), when the batch found it.
	resolved bool
	res      Resolution
	resOK    bool
	resErr   error
	events   []stream.Event
	loaded   bool // events were loaded with the batch
	// finish frees the stream's slot; it may be called more than once.
	finish func()
	*completer
}

// process claims up to limit streams ready for action in one statement, loads their events in one query and starts their pipelines,
// Concurrency at a time, in deadline order; finished streams are
// completed in groups (see completer). It returns the number of streams
// claimed once every one of them is started or handed back. While claimed
// streams wait for a slot their leases are renewed together; when ctx ends
// (shutdown), those not started are handed back.
func (w *Worker) process(ctx, work context.Context, action db.Action, limit int, res *PassResult, col *collector) (int, error) {
	if ctx.Err() != nil {
		return 0, nil // shutting down: claim nothing more
	}
	now := stream.NormalizeTime(w.cfg.Clock.Now())
	claimed, err := w.store.ClaimStreams(ctx, db.ClaimParams{
		Action: action, Now: now, Limit: limit, Owner: w.cfg.Name, LeaseUntil: now.Add(w.cfg.Lease),
	})
	if errors.Is(err, db.ErrAborted) {
		// The database was busy with other work: nothing was claimed and
		// the next pass tries again.
		w.log.Debug("claim aborted by concurrent work; the next pass tries again", "action", action.String(), "error", err)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("claim streams ready to %s: %w", action, err)
	}
	res.Stats.Loaded += len(claimed)
	res.Claimed += len(claimed)
	if len(claimed) == 0 {
		return 0, nil
	}
	w.log.Debug("claimed streams", "action", action.String(), "streams", len(claimed))
	col.claimed(action, claimed)
	tasks := make([]task, len(claimed))
	events, loaded := w.batchEvents(work, claimed, tasks)

	comp := &completer{w: w, reqs: make(chan *completion, len(claimed))}
	var batch sync.WaitGroup // the dispatch below and the streams' goroutines
	batch.Add(1)
	w.inflight.Add(2)
	go func() {
		defer w.inflight.Done()
		comp.run(work)
	}()
	go func() {
		defer w.inflight.Done()
		batch.Wait()
		close(comp.reqs)
	}()
	defer batch.Done()

	renew := time.NewTimer(w.cfg.Lease / 3)
	defer renew.Stop()
	queue := claimed
	taskOf := make(map[int64]task, len(claimed))
	for i, s := range claimed {
		taskOf[s.ID] = tasks[i]
	}
	for len(queue) > 0 {
		s := queue[0]
		if ctx.Err() != nil {
			w.handBackQueued(work, action, queue, col)
			return len(claimed), nil
		}
		// Wait for a free slot; the claims still waiting keep their leases.
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			continue // hands the queue back
		case <-renew.C:
			queue = w.renewQueued(work, action, queue, col)
			renew.Reset(w.cfg.Lease / 3)
			continue
		}
		queue = queue[1:]
		var once sync.Once
		t := taskOf[s.ID]
		t.events, t.loaded, t.completer = events[s.ID], loaded, comp
		t.finish = func() { once.Do(func() { <-w.slots }) }
		if t.loaded && t.events == nil {
			t.events = []stream.Event{}
		}
		a := Attempt{Action: action, StreamID: s.ID, Trigger: s.Name, Stream: s}
		batch.Add(1)
		w.inflight.Add(1)
		col.wg.Add(1)
		go func() {
			defer col.wg.Done()
			defer w.inflight.Done()
			defer batch.Done()
			start := time.Now()
			done := w.processClaimed(work, action, s, a, t)
			done.Duration = time.Since(start)
			w.record(done, col)
		}()
	}
	return len(claimed), nil
}

// batchEvents resolves what each claimed stream runs (into tasks[i]) and
// loads the events of those that have a pipeline to run, in one query.
// When that fails, loaded is false and each stream reads its own (and
// meets the failure alone).
func (w *Worker) batchEvents(ctx context.Context, claimed []stream.Stream, tasks []task) (map[int64][]stream.Event, bool) {
	var ids []int64
	for i, s := range claimed {
		res, ok, err := w.resolve(ctx, s)
		tasks[i].resolved, tasks[i].res, tasks[i].resOK, tasks[i].resErr = true, res, ok, err
		if err != nil || !ok {
			continue // the stream fails without reading its events
		}
		name := res.Fire
		if action, _ := s.State.ClaimedFor(); action == stream.Expire {
			name = res.Expire
		}
		if _, defined := res.Pipelines.Pipeline(name); defined {
			ids = append(ids, s.ID)
		}
	}
	if len(ids) == 0 {
		return nil, true
	}
	events, err := w.store.StreamsEvents(ctx, ids)
	if err != nil {
		w.log.Warn("cannot read the events of the claimed streams together; reading them stream by stream", "streams", len(ids), "error", err)
		return nil, false
	}
	return events, true
}

// renewQueued renews the leases of claimed streams still waiting for a
// slot, in one statement, and returns those still held; the others were
// taken over by another worker and are recorded as lost claims.
func (w *Worker) renewQueued(ctx context.Context, action db.Action, queue []stream.Stream, col *collector) []stream.Stream {
	refs := make([]db.StreamSerial, len(queue))
	for i, s := range queue {
		refs[i] = db.StreamSerial{ID: s.ID, SerialNo: s.SerialNo}
	}
	until := stream.NormalizeTime(w.cfg.Clock.Now()).Add(w.cfg.Lease)
	renewed, err := w.store.RenewLeases(context.WithoutCancel(ctx), refs, until)
	if err != nil {
		// Aborted by concurrent work or unavailable: the claims still
		// hold; the next tick tries again.
		w.log.Warn("could not renew the leases of the claims waiting for a slot", "streams", len(queue), "error", err)
		return queue
	}
	kept := queue[:0:0]
	for _, s := range queue {
		serial, ok := renewed[s.ID]
		if !ok {
			w.log.Warn("lost a claim while it waited for a slot", "stream_id", s.ID, "trigger", s.Name)
			w.record(Attempt{Action: action, StreamID: s.ID, Trigger: s.Name, Stream: s, LostClaim: true,
				Err: fmt.Errorf("%w: taken over while waiting for a slot", errLeaseLost)}, col)
			continue
		}
		s.SerialNo, s.LeaseUntil = serial, until
		kept = append(kept, s)
	}
	return kept
}

// handBackQueued gives back the claimed streams that did not start before
// the shutdown, ready at once and without counting an attempt.
func (w *Worker) handBackQueued(ctx context.Context, action db.Action, queue []stream.Stream, col *collector) {
	for _, s := range queue {
		log := w.log.With("stream_id", s.ID, "trigger", s.Name, "action", action.String())
		a := Attempt{Action: action, StreamID: s.ID, Trigger: s.Name, Stream: s, Err: ErrShutdown}
		if err := w.release(ctx, action, s, log); err != nil {
			log.Error("cannot hand the stream back; another worker recovers it when the claim's lease ends", "error", err)
		}
		w.record(a, col)
	}
	w.log.Debug("handed back claimed streams that had not started", "streams", len(queue))
}

// completer completes the finished streams of one batch in groups: it
// takes every completion waiting when it is free and writes them in one
// transaction, so a stream that finished waits at most for the group
// before it, and a slow or failing pipeline holds back nobody.
type completer struct {
	w    *Worker
	reqs chan *completion
}

// completion is one finished stream waiting to be completed.
type completion struct {
	claimed   stream.Stream
	newEvents []stream.Event
	log       *slog.Logger
	done      chan error
}

// complete stores the stream's new events and completes it (purge or
// state completed) together with the other streams finished meanwhile,
// and returns the stream's outcome: as Worker.complete's.
func (c *completer) complete(ctx context.Context, claimed stream.Stream, newEvents []stream.Event, log *slog.Logger) error {
	r := &completion{claimed: claimed, newEvents: newEvents, log: log, done: make(chan error, 1)}
	c.reqs <- r
	return <-r.done
}

// run completes groups until reqs is closed.
func (c *completer) run(ctx context.Context) {
	for r := range c.reqs {
		group := []*completion{r}
	drain:
		for len(group) < maxGroup {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		c.w.completeGroup(ctx, group)
	}
}

// completeGroup stores the new events of a group of finished streams and
// completes them in one transaction, with a compare-and-set per stream: a
// stream whose claim was lost is left out (its new events are not
// stored), not the whole group. A transaction aborted by concurrent work
// runs again, one that met an unavailable database too while the leases
// last; when the group fails otherwise (new events the store refuses),
// each stream is completed alone so that only its own outcome is a
// failure.
func (w *Worker) completeGroup(ctx context.Context, group []*completion) {
	if len(group) == 1 {
		r := group[0]
		r.done <- w.complete(ctx, r.claimed, r.newEvents, r.log)
		return
	}
	refs := make([]db.StreamSerial, len(group))
	first := group[0].claimed // the earliest lease bounds the retries
	for i, r := range group {
		refs[i] = db.StreamSerial{ID: r.claimed.ID, SerialNo: r.claimed.SerialNo}
		if r.claimed.LeaseUntil.Before(first.LeaseUntil) {
			first = r.claimed
		}
	}
	var lost []int64
	err := w.retryStore(ctx, first, w.log, "complete streams", func(ctx context.Context) error {
		return w.store.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			var err error
			if lost, err = tx.CompleteStreams(ctx, refs, w.cfg.Purge); err != nil {
				return err
			}
			var events []stream.Event
			for _, r := range group {
				if !slices.Contains(lost, r.claimed.ID) {
					events = append(events, r.newEvents...)
				}
			}
			if len(events) == 0 {
				return nil
			}
			if err := w.feed(ctx, tx, events); err != nil {
				return fmt.Errorf("store new events: %w", err)
			}
			return nil
		})
	})
	switch {
	case err == nil:
		for _, r := range group {
			if slices.Contains(lost, r.claimed.ID) {
				r.done <- fmt.Errorf("complete stream %d: %w", r.claimed.ID, db.ErrConflict)
			} else {
				r.done <- nil
			}
		}
	case errors.Is(err, db.ErrUnavailable):
		for _, r := range group {
			r.done <- err
		}
	default:
		w.log.Warn("cannot complete the streams together; completing them one by one", "streams", len(group), "error", err)
		for _, r := range group {
			r.done <- w.complete(ctx, r.claimed, r.newEvents, r.log)
		}
	}
}
