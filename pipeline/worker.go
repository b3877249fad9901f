package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger/timex"
)

// LookupFunc returns the fire and expire pipeline names of a trigger ("" for
// none), and false when no trigger of that name is defined.
type LookupFunc func(trigger string) (fire, expire string, ok bool)

// Resolution is what a stream runs: its trigger's fire and expire
// pipeline names ("" for none) and the pipelines they name.
type Resolution struct {
	Fire, Expire string
	Pipelines    *Definitions
}

// ResolveFunc returns what a stream runs, found by its trigger and the
// version of the definitions it was created under; false when its
// trigger is not defined there. An error (the definitions could not be
// read) fails the attempt, to be retried.
type ResolveFunc func(ctx context.Context, s stream.Stream) (Resolution, bool, error)

// FeedFunc stores new events produced by a pipeline and puts them into
// streams, inside the worker's transaction (trigger.Manager.AddEventsTx).
type FeedFunc func(ctx context.Context, tx db.Ops, events []stream.Event) error

// Worker defaults.
const (
	DefaultBatchSize     = 1000
	DefaultDelay         = 10 * time.Second
	DefaultLease         = 30 * time.Second
	DefaultMaxRetries    = 0
	DefaultRetryBackoff  = 30 * time.Second
	DefaultTrimBatchSize = 100
	DefaultTrimAge       = "$timestamp - 14d"
	DefaultStatsPeriod   = 10 * time.Second
	DefaultShutdownGrace = 30 * time.Second
	DefaultConcurrency   = 1
	maxOutageBackoff     = 5 * time.Second
)

// Backoff of a claimed stream's storage writes (completion, release,
// failure record) while the database is unavailable: they are retried
// until the claim's lease ends.
const (
	minStoreRetry = 250 * time.Millisecond
	maxStoreRetry = 2 * time.Second
)

// ErrShutdown is the cancellation cause of pipelines still running when the
// shutdown grace period ends.
var ErrShutdown = errors.New("pipeline worker shutting down")

// WorkerConfig holds a worker's settings; zero values take the defaults.
type WorkerConfig struct {
	// Name identifies the worker in claims and logs.
	Name string
	// BatchSize is the number of ready streams claimed per statement.
	// Claimed streams wait for a free slot (Concurrency) with their
	// leases renewed together. Run claims fewer when its pipelines are
	// slow: about as many as its slots start in two seconds, judged by
	// the recent run times, so that workers sharing a database share slow
	// streams.
	BatchSize int
	// Delay is how long Run sleeps when a pass found nothing to do.
	Delay time.Duration
	// Purge deletes completed streams; otherwise they are kept as completed.
	Purge bool
	// Concurrency is how many streams the worker runs at once
	// (DefaultConcurrency when 0). Streams are still claimed in deadline
	// order; a slow pipeline holds one slot, not the worker.
	Concurrency int
	// Lease is how long a claim holds before another worker may rescue the
	// stream. It is renewed while a pipeline runs.
	Lease time.Duration
	// MaxRetries is how many times a failed stream is retried
	// automatically (with exponential backoff from RetryBackoff) before it
	// stays in its error state for an operator. 0: never.
	MaxRetries   int
	RetryBackoff time.Duration
	// NoRescue leaves stale claims alone in passes: something else calls
	// Rescue on a schedule (the engine's built-in rescue_stale_claims
	// job), so an idle pass costs two queries, not three.
	NoRescue bool
	// Trim enables event trimming: events older than TrimAge (a timex
	// expression evaluated at the clock's now) that belong to no
	// unfinished stream are deleted, TrimBatchSize per pass.
	Trim          bool
	TrimAge       *timex.Expr
	TrimBatchSize int
	// StatsPeriod is how often Run logs statistics.
	StatsPeriod time.Duration
	// ShutdownGrace is how long running pipelines may finish after Run's
	// context is cancelled before they are cancelled with ErrShutdown.
	ShutdownGrace time.Duration
	Clock         stream.Clock
	Logger        *slog.Logger
	// DebugLevelFunc returns a trigger's debug_level; per-trigger counters
	// (fired, expired, errors, lost_claims) are logged with the statistics for
	// triggers whose level is 1 or more. Nil: none are.
	DebugLevelFunc func(trigger string) int
	// Sleep waits between idle passes; tests and replays replace it.
	SleepFunc func(ctx context.Context, d time.Duration) error
	// ResolveFunc, when set, finds the pipelines of each stream instead of
	// the lookup and pipelines given to NewWorker (versioned, live
	// definitions).
	ResolveFunc ResolveFunc
	// AttemptFunc, when set, is called with every stream a pass processed
	// (metrics). It may be called from several goroutines at once (one per
	// running pipeline) and must be quick.
	AttemptFunc func(Attempt)
	// StepFunc, when set, is called after every HandleEvents and Commit
	// call of the pipelines the worker runs (metrics: Env.StepFunc). It may
	// be called from several goroutines at once and must be quick.
	StepFunc func(Step)
}

// Store is the part of db.Store a worker uses (every db.Store has it):
// claiming, lease renewal and the state compare-and-set, the claimed
// streams' events, the stale-claim and trim queries, and a transaction for
// completing streams, whose Ops the FeedFunc receives.
type Store interface {
	ClaimStreams(ctx context.Context, p db.ClaimParams) ([]stream.Stream, error)
	RenewLeases(ctx context.Context, claims []db.StreamSerial, leaseUntil time.Time) (renewed map[int64]int64, err error)
	SetStreamState(ctx context.Context, p db.SetStateParams) (stream.Stream, error)
	StreamEvents(ctx context.Context, streamID int64) ([]stream.Event, error)
	StreamsEvents(ctx context.Context, streamIDs []int64) (map[int64][]stream.Event, error)
	StaleClaims(ctx context.Context, now time.Time, limit int) ([]stream.Stream, error)
	TrimEvents(ctx context.Context, before time.Time, limit int) (int, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx db.Ops) error) error
}

// Worker claims ready streams and runs their pipelines. Any number of
// workers, in any number of processes, may share one database: every
// transition is a compare-and-set on the stream's state_serial_no, so a
// stream is processed by one worker at a time, and a claim carries a lease
// after which a dead worker's stream is rescued by another.
type Worker struct {
	store     Store
	pipelines *Definitions
	lookup    LookupFunc
	feed      FeedFunc
	cfg       WorkerConfig
	log       *slog.Logger

	slots    chan struct{} // one token per running stream
	inflight sync.WaitGroup

	mu         sync.Mutex
	stats      WorkerStats
	perTrigger map[string]*TriggerCounters
	// avgRun is the moving average of pipeline run times (0: none yet),
	// which sizes the claims (claimLimit).
	avgRun time.Duration
}

// TriggerCounters are the per-trigger counters of a worker.
type TriggerCounters struct {
	Fired, Expired, Errors, LostClaims int
}

// WorkerStats counts what a worker did since the last statistics log.
type WorkerStats struct {
	Loaded     int // streams returned by the ready queries
	Fired      int // fire pipelines completed
	Expired    int // expire pipelines completed
	Errors     int // streams put into an error or retry state
	LostClaims int // claim races lost to another worker
	Rescued    int // stale claims recovered
	Trimmed    int // events trimmed
	NewEvents  int // events produced by pipelines
	// HandlerErrors counts handler failures that on_error: continue
	// pipelines skipped.
	HandlerErrors int
}

func (s *WorkerStats) add(o WorkerStats) {
	s.Loaded += o.Loaded
	s.Fired += o.Fired
	s.Expired += o.Expired
	s.Errors += o.Errors
	s.LostClaims += o.LostClaims
	s.Rescued += o.Rescued
	s.Trimmed += o.Trimmed
	s.NewEvents += o.NewEvents
	s.HandlerErrors += o.HandlerErrors
}

// Processed is the number of streams a pass finished (completed or failed).
func (s WorkerStats) Processed() int { return s.Fired + s.Expired + s.Errors }

// NewWorker returns a worker.
func NewWorker(store Store, pipelines *Definitions, lookup LookupFunc, feed FeedFunc, cfg WorkerConfig) (*Worker, error) {
	if cfg.Name == "" {
		cfg.Name = "pipeline_worker"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Delay <= 0 {
		cfg.Delay = DefaultDelay
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.TrimBatchSize <= 0 {
		cfg.TrimBatchSize = DefaultTrimBatchSize
	}
	if cfg.Trim && cfg.TrimAge == nil {
		e, err := timex.Parse(DefaultTrimAge)
		if err != nil {
			return nil, fmt.Errorf("default trim age: %w", err)
		}
		cfg.TrimAge = e
	}
	if cfg.StatsPeriod <= 0 {
		cfg.StatsPeriod = DefaultStatsPeriod
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Clock == nil {
		cfg.Clock = stream.SystemClock{}
	}
	if cfg.SleepFunc == nil {
		cfg.SleepFunc = sleep
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{
		store: store, pipelines: pipelines, lookup: lookup, feed: feed, cfg: cfg,
		slots: make(chan struct{}, cfg.Concurrency),
		log:   log.With("component", "pipeline_worker", "worker_id", cfg.Name),
	}, nil
}

// resolve finds what stream s runs: with the ResolveFunc, or the lookup
// and pipelines of the worker.
func (w *Worker) resolve(ctx context.Context, s stream.Stream) (Resolution, bool, error) {
	if w.cfg.ResolveFunc != nil {
		return w.cfg.ResolveFunc(ctx, s)
	}
	fire, expire, ok := w.lookup(s.Name)
	return Resolution{Fire: fire, Expire: expire, Pipelines: w.pipelines}, ok, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Attempt is the outcome of one stream processed by a pass.
type Attempt struct {
	Action   db.Action
	StreamID int64
	Trigger  string
	Pipeline string // "" when the trigger has none
	// OK is true when the stream completed; false when it failed, was
	// claimed first by another worker, or had no trigger definition.
	OK bool
	// LostClaim is true when another worker claimed the stream first (this
	// worker lost the claim race; nothing is wrong with the stream).
	LostClaim bool
	Err       error
	// NewEvents is how many events the pipeline produced.
	NewEvents int
	// Skipped are the handler failures an on_error: continue pipeline
	// went past.
	Skipped []*HandlerError
	// Events are the stream's events as handed to the pipeline.
	Events []stream.Event
	Stream stream.Stream // as claimed
	// Duration is the time from the claim to the stream's final state.
	Duration time.Duration
}

// PassResult is what one pass did.
type PassResult struct {
	LoadedFire   int
	LoadedExpire int
	// Claimed is how many streams the pass claimed (and started).
	Claimed int
	// Attempts are in claim order (fire, then expire, each in deadline
	// order), whatever order the streams finished in.
	Attempts []Attempt
	Stats    WorkerStats
}

// Pass runs one worker pass at the clock's now: a fire pass, then an expire
// pass (each over up to BatchSize ready streams in deadline order), then,
// unless NoRescue is set, rescues stale claims and, when enabled, trims
// old events. Up to
// Concurrency streams run at once; Pass returns when all of them are done.
// ctx is the claiming context: when it is done no further stream is
// claimed; work is the context pipelines run under.
func (w *Worker) Pass(ctx, work context.Context) (PassResult, error) {
	return w.pass(ctx, work, true)
}

// pass is Pass; with wait false it returns once every ready stream is
// claimed and started, leaving them running (Run waits for them at the
// end), so a slow stream never holds up the next pass.
func (w *Worker) pass(ctx, work context.Context, wait bool) (PassResult, error) {
	var res PassResult
	col := &collector{}
	var err error
	// A single Pass claims up to BatchSize streams per action; Run sizes
	// its claims to how fast its slots start streams.
	limit := w.cfg.BatchSize
	if !wait {
		limit = w.claimLimit()
	}
	for _, action := range []db.Action{db.Fire, db.Expire} {
		var n int
		n, err = w.process(ctx, work, action, limit, &res, col)
		if action == db.Fire {
			res.LoadedFire = n
		} else {
			res.LoadedExpire = n
		}
		if err != nil {
			break
		}
	}
	if err == nil && !w.cfg.NoRescue {
		res.Stats.Rescued, err = w.Rescue(ctx)
	}
	if err == nil && w.cfg.Trim {
		err = w.trim(ctx, &res)
	}
	w.mu.Lock()
	w.stats.add(WorkerStats{Loaded: res.Stats.Loaded, Rescued: res.Stats.Rescued, Trimmed: res.Stats.Trimmed})
	w.mu.Unlock()
	if wait {
		col.wg.Wait()
		res.Attempts = col.sorted()
		for _, a := range res.Attempts {
			res.Stats.add(a.stats())
		}
	}
	return res, err
}

// collector gathers the attempts of one pass as they finish.
type collector struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	attempts []Attempt
	// order is the claim order of the pass's streams: Pass returns their
	// attempts in it, whatever order they finished in.
	order map[claimKey]int
}

// claimKey names a stream claimed for an action.
type claimKey struct {
	action db.Action
	id     int64
}

// claimed notes the claim order of streams.
func (c *collector) claimed(action db.Action, streams []stream.Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.order == nil {
		c.order = map[claimKey]int{}
	}
	for _, s := range streams {
		c.order[claimKey{action, s.ID}] = len(c.order)
	}
}

// sorted returns the attempts in claim order.
func (c *collector) sorted() []Attempt {
	c.mu.Lock()
	defer c.mu.Unlock()
	slices.SortStableFunc(c.attempts, func(x, y Attempt) int {
		return cmp.Compare(c.order[claimKey{x.Action, x.StreamID}], c.order[claimKey{y.Action, y.StreamID}])
	})
	return c.attempts
}

func (c *collector) add(a Attempt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts = append(c.attempts, a)
}

// stats are the counters of one finished attempt.
func (a Attempt) stats() WorkerStats {
	s := WorkerStats{NewEvents: a.NewEvents, HandlerErrors: len(a.Skipped)}
	switch {
	case a.LostClaim:
		s.LostClaims++
	case a.OK && a.Action == db.Fire:
		s.Fired++
	case a.OK:
		s.Expired++
	default:
		s.Errors++
	}
	return s
}

// record adds a finished attempt to the worker's counters.
func (w *Worker) record(a Attempt, col *collector) {
	w.mu.Lock()
	w.stats.add(a.stats())
	if w.perTrigger == nil {
		w.perTrigger = map[string]*TriggerCounters{}
	}
	c := w.perTrigger[a.Trigger]
	if c == nil {
		c = &TriggerCounters{}
		w.perTrigger[a.Trigger] = c
	}
	switch {
	case a.LostClaim:
		c.LostClaims++
	case !a.OK:
		c.Errors++
	case a.Action == db.Fire:
		c.Fired++
	default:
		c.Expired++
	}
	w.mu.Unlock()
	if w.cfg.AttemptFunc != nil {
		w.cfg.AttemptFunc(a)
	}
	col.add(a)
}

// processClaimed runs a claimed stream's pipeline and finishes the stream:
// completed, failed (retry or error state) or handed back. Storage writes
// that meet an unavailable database are retried while the claim's lease
// lasts; the outcome is in the Attempt.
func (w *Worker) processClaimed(ctx context.Context, action db.Action, claimed stream.Stream, a Attempt, t task) Attempt {
	defer t.finish()
	s := claimed
	log := w.log.With("stream_id", s.ID, "trigger", s.Name, "action", action.String())
	failed := func(cause error, retry bool) Attempt {
		a.Err = cause
		if err := w.fail(ctx, action, claimed, cause, retry, log); err != nil {
			log.Error("cannot record the stream's failure; another worker recovers it when the claim's lease ends", "error", err)
		}
		return a
	}
	handBack := func(cause error) Attempt {
		a.Err = cause
		if err := w.release(ctx, action, claimed, log); err != nil {
			log.Error("cannot hand the stream back; another worker recovers it when the claim's lease ends", "error", err)
		}
		return a
	}

	res, ok, err := t.res, t.resOK, t.resErr
	if !t.resolved {
		res, ok, err = w.resolve(ctx, s)
	}
	if err != nil {
		err = fmt.Errorf("definitions of stream %d: %w", s.ID, err)
		log.Warn("cannot find the stream's definitions", "error", err)
		return failed(err, true)
	}
	if !ok {
		err := fmt.Errorf("unknown trigger definition %q", s.Name)
		log.Error("stream has no trigger definition", "error", err)
		return failed(err, false)
	}
	fire, expire := res.Fire, res.Expire
	a.Pipeline = fire
	if action == db.Expire {
		a.Pipeline = expire
	}
	var newEvents []stream.Event
	if a.Pipeline != "" {
		p, ok := res.Pipelines.Pipeline(a.Pipeline)
		if !ok {
			err := fmt.Errorf("unknown pipeline %q", a.Pipeline)
			log.Error("trigger names an unknown pipeline", "pipeline", a.Pipeline)
			return failed(err, false)
		}
		events := t.events
		var err error
		if !t.loaded {
			err = w.retryStore(ctx, claimed, log, "read the stream's events", func(ctx context.Context) error {
				var err error
				events, err = w.store.StreamEvents(ctx, s.ID)
				return err
			})
		}
		if err != nil {
			err = fmt.Errorf("read events of stream %d: %w", s.ID, err)
			if errors.Is(err, db.ErrUnavailable) {
				return handBack(err)
			}
			log.Error("cannot read the stream's events", "error", err)
			return failed(err, true)
		}
		a.Events = events
		runStart := time.Now()
		res, cur, err := w.run(ctx, p, claimed, events, log)
		w.observeRun(time.Since(runStart))
		claimed = cur
		if res != nil {
			a.Skipped = res.Skipped
		}
		switch {
		case err == nil:
			newEvents = res.NewEvents
		case errors.Is(err, ErrShutdown):
			// The shutdown grace ran out: the stream goes back for another
			// worker, without counting an attempt.
			log.Warn("pipeline cancelled by the shutdown; stream handed back", "pipeline", a.Pipeline, "error", err)
			return handBack(err)
		case errors.Is(err, errLeaseLost):
			// Another worker rescued the stream while the pipeline ran; the
			// handlers were rolled back and the new owner runs it again.
			a.Err, a.LostClaim = err, true
			log.Warn("lost the claim while the pipeline ran; rolled back", "error", err)
			return a
		case errors.Is(err, ErrCommit):
			// A failed commit is not retried automatically: the handlers
			// that did commit would repeat their side effects. The stream
			// waits in its error state for an operator.
			log.Warn("pipeline commit failed", "pipeline", a.Pipeline, "error", err)
			return failed(err, false)
		default:
			log.Warn("pipeline failed", "pipeline", a.Pipeline, "error", err)
			return failed(err, true)
		}
	}
	// The pipeline is done: its slot goes to the next stream while the
	// completion waits for its group.
	t.finish()
	err = t.complete(ctx, claimed, newEvents, log)
	switch {
	case errors.Is(err, db.ErrConflict):
		// Our lease ended and another worker took the stream over: it
		// will process it again; our new events were not stored.
		a.Err, a.LostClaim = err, true
		log.Warn("lost the stream before completing it (lease expired?)")
		return a
	case errors.Is(err, db.ErrUnavailable):
		// The handlers committed but the database stayed away for the
		// whole lease: another worker recovers the stream and its pipeline
		// runs again (side effects are at least once).
		a.Err = fmt.Errorf("complete stream %d: %w", s.ID, err)
		log.Error("database unavailable until the claim's lease ended; the stream will run again", "error", err)
		return a
	case err != nil:
		// The pipeline's output cannot be stored (an event the store
		// refuses, say): record it on the stream rather than retry.
		log.Error("cannot complete the stream", "error", err)
		return failed(err, false)
	}
	a.OK = true
	a.NewEvents = len(newEvents)
	log.Debug("stream completed", "pipeline", a.Pipeline, "new_events", len(newEvents))
	return a
}

// retryStore runs op, again at once when concurrent work aborted it
// (db.ErrAborted, up to maxAbortedRuns runs), and again with backoff while
// the database is unavailable, for as long as the claim's lease lasts: a
// database restart shorter than the lease neither strands the claim nor
// charges an attempt.
func (w *Worker) retryStore(ctx context.Context, claimed stream.Stream, log *slog.Logger, what string, op func(ctx context.Context) error) error {
	ctx = context.WithoutCancel(ctx)
	remaining := claimed.LeaseUntil.Sub(w.cfg.Clock.Now())
	backoff := minStoreRetry
	var waited time.Duration
	runs := 0
	for {
		runs++
		err := op(ctx)
		switch {
		case errors.Is(err, db.ErrAborted) && runs < maxAbortedRuns:
			log.Debug("aborted by concurrent work; running again", "operation", what, "run", runs, "error", err)
		case errors.Is(err, db.ErrUnavailable) && waited < remaining:
			d := min(backoff, remaining-waited)
			log.Warn("database unavailable; retrying", "operation", what, "backoff", d, "error", err)
			if w.cfg.SleepFunc(ctx, d) != nil {
				return err
			}
			waited += d
			backoff = min(2*backoff, maxStoreRetry)
		default:
			return err
		}
	}
}

// maxAbortedRuns bounds the runs of a storage write of a claimed stream
// that concurrent work keeps aborting (db.ErrAborted: a deadlock with an
// ingester appending the pipeline's new events, a busy database); such a
// write is run again at once.
const maxAbortedRuns = 5

// complete stores the pipeline's new events and completes the stream (purge
// or state completed) in one transaction. ErrConflict means the claim was
// lost (the stream changed under us); a transaction the database aborted
// (db.ErrAborted) is run again, and so is one that failed because the
// database was unavailable (with backoff, while the lease lasts): the
// handlers have committed, and completing now is better than running them
// again later.
func (w *Worker) complete(ctx context.Context, claimed stream.Stream, newEvents []stream.Event, log *slog.Logger) error {
	return w.retryStore(ctx, claimed, log, "complete the stream", func(ctx context.Context) error {
		return w.store.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			if len(newEvents) > 0 {
				if err := w.feed(ctx, tx, newEvents); err != nil {
					return fmt.Errorf("store new events: %w", err)
				}
			}
			if w.cfg.Purge {
				return tx.PurgeStream(ctx, claimed.ID, claimed.SerialNo)
			}
			empty := ""
			var zero time.Time
			_, err := tx.SetStreamState(ctx, db.SetStateParams{
				ID: claimed.ID, SerialNo: claimed.SerialNo, State: stream.StateCompleted,
				ClaimedBy: &empty, LeaseUntil: &zero,
			})
			return err
		})
	})
}

// run runs a pipeline, renewing the claim's lease while it runs. It
// returns the claimed stream as last written (serial number and lease).
// The error of a run cancelled by the shutdown matches ErrShutdown, that of
// a run whose claim was lost errLeaseLost.
func (w *Worker) run(ctx context.Context, p *Pipeline, claimed stream.Stream, events []stream.Event, log *slog.Logger) (*Result, stream.Stream, error) {
	env := NewEnv(claimed.ID, claimed.Name, log)
	action, _ := claimed.State.ClaimedFor()
	env.Action = action.String()
	env.Pipeline = p.Name
	env.DistinguishedBy = claimed.DistinguishedBy
	env.StepFunc = w.cfg.StepFunc
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	renewed := make(chan stream.Stream, 1)
	go func() {
		t := time.NewTicker(w.cfg.Lease / 3)
		defer t.Stop()
		cur := claimed
		for {
			select {
			case <-done:
				renewed <- cur
				return
			case <-t.C:
				until := stream.NormalizeTime(w.cfg.Clock.Now()).Add(w.cfg.Lease)
				s, err := w.store.SetStreamState(context.WithoutCancel(ctx), db.SetStateParams{
					ID: claimed.ID, SerialNo: cur.SerialNo, State: claimed.State, LeaseUntil: &until,
				})
				switch {
				case errors.Is(err, db.ErrConflict) || errors.Is(err, db.ErrNotFound):
					// Another worker took the stream over: stop before
					// anything commits.
					cancel(fmt.Errorf("%w: %v", errLeaseLost, err))
				case err != nil:
					// Aborted by concurrent work (a busy database) or
					// unavailable: the claim still holds; the next tick
					// tries again.
					log.Warn("could not renew the claim's lease", "error", err)
				default:
					cur.SerialNo, cur.LeaseUntil = s.SerialNo, until
				}
			}
		}
	}()
	res, err := p.Run(runCtx, events, env)
	close(done)
	cur := <-renewed
	if cause := context.Cause(runCtx); err != nil && runCtx.Err() != nil && !errors.Is(err, cause) &&
		(errors.Is(cause, errLeaseLost) || errors.Is(cause, ErrShutdown)) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	return res, cur, err
}

// errLeaseLost is the cancellation cause of a run whose claim was taken
// over by another worker.
var errLeaseLost = errors.New("the claim's lease was lost to another worker")

// fail puts a claimed stream into its retry state (when retries remain and
// retry is true) or its error state, recording the error; the write is
// retried while the database is unavailable and the lease lasts.
func (w *Worker) fail(ctx context.Context, action db.Action, s stream.Stream, cause error, retry bool, log *slog.Logger) error {
	return w.retryStore(ctx, s, log, "record the failure", func(ctx context.Context) error {
		_, err := w.recordFailure(ctx, action, s, cause, retry)
		return err
	})
}

// recordFailure writes a failure: the stream goes to its retry state (when
// retries remain and retry is true) or its error state. It reports false
// when another worker took the stream over first.
func (w *Worker) recordFailure(ctx context.Context, action db.Action, s stream.Stream, cause error, retry bool) (bool, error) {
	ctx = context.WithoutCancel(ctx)
	now := stream.NormalizeTime(w.cfg.Clock.Now())
	attempts := s.Attempts + 1
	msg := cause.Error()
	empty := ""
	var zero time.Time
	p := db.SetStateParams{
		ID: s.ID, SerialNo: s.SerialNo, Attempts: &attempts, LastError: &msg,
		ClaimedBy: &empty, LeaseUntil: &zero,
	}
	if retry && attempts <= w.cfg.MaxRetries {
		at := now.Add(w.backoff(attempts))
		p.State = action.RetryState()
		retryAt(&p, action, at)
	} else {
		p.State = action.ErrorState()
	}
	_, err := w.store.SetStreamState(ctx, p)
	if errors.Is(err, db.ErrConflict) || errors.Is(err, db.ErrNotFound) {
		return false, nil // taken over after our lease ended; the new owner decides
	}
	if err != nil {
		return false, fmt.Errorf("record failure of stream %d: %w", s.ID, err)
	}
	return true, nil
}

// retryAt sets the deadline a stream in the action's retry state waits
// for: its fire time (fire) or its expiry time (expire).
func retryAt(p *db.SetStateParams, action db.Action, at time.Time) {
	if action == db.Expire {
		p.ExpireTimestamp = &at
		return
	}
	p.FireTimestamp = &at
}

// release gives a claimed stream back, ready at once, without counting an
// attempt (the worker is shutting down, or the database failed under it);
// the write is retried while the database is unavailable and the lease
// lasts.
func (w *Worker) release(ctx context.Context, action db.Action, s stream.Stream, log *slog.Logger) error {
	return w.retryStore(ctx, s, log, "hand the stream back", func(ctx context.Context) error {
		now := stream.NormalizeTime(w.cfg.Clock.Now())
		empty := ""
		var zero time.Time
		p := db.SetStateParams{ID: s.ID, SerialNo: s.SerialNo, ClaimedBy: &empty, LeaseUntil: &zero}
		p.State = action.RetryState()
		retryAt(&p, action, now)
		_, err := w.store.SetStreamState(ctx, p)
		if err != nil && !errors.Is(err, db.ErrConflict) && !errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("release stream %d: %w", s.ID, err)
		}
		return nil
	})
}

func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.RetryBackoff
	for i := 1; i < attempt && d < 24*time.Hour; i++ {
		d *= 2
	}
	return d
}

// Rescue recovers up to BatchSize streams whose worker died while holding
// them (their lease ended before the clock's now): each goes to its retry
// state, or its error state when it had its retries, the dead claim
// counting as an attempt. It returns how many it rescued; a stream
// another worker rescued first is left to it. Any number of workers may
// call it at once.
func (w *Worker) Rescue(ctx context.Context) (int, error) {
	rescued := 0
	now := stream.NormalizeTime(w.cfg.Clock.Now())
	stale, err := w.store.StaleClaims(ctx, now, w.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("find stale claims: %w", err)
	}
	for _, s := range stale {
		action, _ := s.State.ClaimedFor()
		cause := fmt.Errorf("claim by %q expired at %s", s.ClaimedBy, stream.FormatTime(s.LeaseUntil))
		// A dead claim counts as an attempt, so a stream that kills its
		// worker every time ends in its error state.
		wrote, err := w.recordFailure(ctx, action, s, cause, true)
		if err != nil {
			return rescued, err
		}
		if !wrote {
			continue // another worker rescued it first
		}
		w.log.Warn("rescued stream from a dead claim", "stream_id", s.ID, "trigger", s.Name, "claimed_by", s.ClaimedBy)
		rescued++
	}
	return rescued, nil
}

func (w *Worker) trim(ctx context.Context, res *PassResult) error {
	now := stream.NormalizeTime(w.cfg.Clock.Now())
	r, err := w.cfg.TrimAge.Eval(now, nil)
	if err != nil {
		return fmt.Errorf("trim age: %w", err)
	}
	n, err := w.store.TrimEvents(ctx, r.Timestamp(), w.cfg.TrimBatchSize)
	if err != nil {
		return fmt.Errorf("trim events: %w", err)
	}
	res.Stats.Trimmed += n
	return nil
}

// Run loops until ctx is cancelled: a pass, then a sleep of Delay when the
// pass found nothing to do. Up to Concurrency streams run at once, and a
// pass does not wait for the streams it started, so a slow pipeline holds
// one slot and nothing else. When the database is unavailable it logs,
// backs off and tries again; nothing is lost. On cancellation it stops
// claiming, lets running pipelines finish within ShutdownGrace (then
// cancels them with ErrShutdown and gives their streams back), and returns
// nil.
func (w *Worker) Run(ctx context.Context) error {
	work, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(w.cfg.ShutdownGrace, func() { cancel(ErrShutdown) })
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stop()

	w.log.Info("pipeline worker started", "batch_size", w.cfg.BatchSize, "delay", w.cfg.Delay, "purge", w.cfg.Purge,
		"concurrency", w.cfg.Concurrency, "lease", w.cfg.Lease)
	lastStats := time.Now()
	outage := time.Duration(0)
	for ctx.Err() == nil {
		res, err := w.pass(ctx, work, false)
		if time.Since(lastStats) >= w.cfg.StatsPeriod {
			w.logStats(true)
			lastStats = time.Now()
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			outage = min(max(2*outage, time.Second), maxOutageBackoff)
			if errors.Is(err, db.ErrUnavailable) {
				w.log.Warn("database unavailable; retrying", "error", err, "backoff", outage)
			} else {
				w.log.Error("worker pass failed; retrying", "error", err, "backoff", outage)
			}
			jitter := time.Duration(rand.Int64N(int64(outage)/4 + 1))
			if w.cfg.SleepFunc(ctx, outage+jitter) != nil {
				break
			}
			continue
		}
		outage = 0
		if res.Claimed == 0 && res.Stats.Rescued == 0 && res.Stats.Trimmed == 0 {
			if w.cfg.SleepFunc(ctx, w.cfg.Delay) != nil {
				break
			}
		}
	}
	w.inflight.Wait()
	w.logStats(false)
	w.log.Info("pipeline worker stopped")
	return nil
}

// Stats returns the counters since the last statistics log.
func (w *Worker) Stats() WorkerStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// logStats logs the counters since the last call and resets them; with
// nothing counted it logs a heartbeat ("worker idle") when heartbeat is
// set, so that a quiet worker is told from a hung one.
func (w *Worker) logStats(heartbeat bool) {
	w.mu.Lock()
	s := w.stats
	per := w.perTrigger
	w.stats = WorkerStats{}
	w.perTrigger = nil
	w.mu.Unlock()
	if s == (WorkerStats{}) {
		if heartbeat {
			w.log.Info("worker idle", "period", w.cfg.StatsPeriod)
		}
		return
	}
	w.log.Info("worker statistics", "loaded", s.Loaded, "fired", s.Fired, "expired", s.Expired,
		"errors", s.Errors, "lost_claims", s.LostClaims, "rescued", s.Rescued, "trimmed", s.Trimmed, "new_events", s.NewEvents,
		"handler_errors", s.HandlerErrors)
	if w.cfg.DebugLevelFunc == nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(per)) {
		if w.cfg.DebugLevelFunc(name) < 1 {
			continue
		}
		c := per[name]
		w.log.Info("trigger worker statistics", "trigger", name, "fired", c.Fired, "expired", c.Expired,
			"errors", c.Errors, "lost_claims", c.LostClaims)
	}
}
