// Package ingest is the one way events enter Winchester from outside: the
// HTTP API, the RabbitMQ consumer and programs embedding the engine all
// submit through an Ingester, which writes the submissions that arrive at
// the same time in one transaction (group commit).
//
// # Group commit
//
// A caller submits events or raw notifications and blocks until the
// transaction holding them committed; it then gets one trigger.Result per
// item (Stored, Duplicate, or Rejected with a reason). Notifications are
// distilled on the caller's goroutine before they are submitted, so
// distilling runs on all cores while the previous group is being written.
//
// Submissions join the open group. One group is written at a time: the
// first of a group's callers to get the writer (any of them may) closes the
// group and writes it with trigger.Manager.AddEvents. Submissions arriving
// meanwhile form the next group. A group holds at most Config.MaxEvents
// events; a larger submission is written alone, never split, so one
// submission's events always commit together.
//
// Before writing, the writer lingers, up to Config.Linger or a quarter of
// the previous commit's duration if that is longer, until the group
// holds as many submissions as were waiting when the previous group
// committed: the callers answered by that commit (64 HTTP clients posting
// one notification at a time, say) are expected back, and waiting a moment
// for them makes one transaction of what would otherwise be two half-size
// groups alternating, each paying a commit (a WAL flush) of its own. A
// lone sequential caller is never kept waiting.
//
// When a group's transaction fails, a group of several submissions is
// written again one submission per transaction, so that a submission whose
// events cannot be written fails alone; when the database is unavailable
// (db.ErrUnavailable) every submission of the group gets the error at once.
// A caller never gets Stored for an event that was not committed.
//
// A caller whose context ends while it waits gets the context's error; its
// events may still be committed with the group (as with any timeout, the
// caller cannot know). A write, once started, is not cancelled by any one
// caller's context: it runs under Config.CommitTimeout.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Defaults of Config.
const (
	// DefaultLinger bounds how long a group waits for the callers answered
	// by the previous commit to come back. Short against a durable commit
	// (a WAL flush on a disk: milliseconds), long enough for a few dozen
	// clients to read their answers and send again.
	DefaultLinger = 2 * time.Millisecond
	// DefaultMaxEvents is the most events one group holds.
	DefaultMaxEvents = 2000
	// DefaultCommitTimeout bounds the transaction of one group.
	DefaultCommitTimeout = 30 * time.Second
)

// Sources label the metrics by where events came from; callers may use
// their own names.
const (
	SourceHTTP    = "http"
	SourceAMQP    = "amqp"
	SourceLibrary = "library"
)

// Config holds the optional settings of an Ingester; zero values take the
// defaults.
type Config struct {
	// Linger bounds how long a group waits, once the writer is free, for
	// as many submissions as were waiting when the previous group committed;
	// when commits are slow (a busy database) the bound is a quarter of the
	// previous commit's duration instead. Negative: no linger.
	Linger time.Duration
	// MaxEvents is the most events a group holds.
	MaxEvents int
	// CommitTimeout bounds the transaction of one group.
	CommitTimeout time.Duration
	// Logger receives failed groups (Warn).
	Logger *slog.Logger
	// Metrics receives the results by source and the group sizes (nil:
	// none).
	Metrics *metrics.Metrics
}

// Ingester writes concurrent submissions of events in shared
// transactions. It is safe for concurrent use and has no goroutine of its
// own: one of the callers of each group writes it.
type Ingester struct {
	mgr *trigger.Manager
	cfg Config
	log *slog.Logger
	met *metrics.Metrics

	writer chan struct{} // the write token: one group is written at a time

	mu       sync.Mutex
	open     *group        // the group accepting submissions, nil when none
	inFlight int           // submissions joined and not yet answered
	target   int           // submissions in flight when the last group committed: what a group lingers for
	lastTook time.Duration // how long the last group's write took
	onJoin   func()        // tests: called (under mu) when a submission joined a group
	onLinger func()        // tests: called (under mu) when a writer starts to linger
}

// group is the submissions written in one transaction.
type group struct {
	events []stream.Event
	subs   []*submission
	full   chan struct{} // closed when the group stops accepting because of its size
	joined chan struct{} // a token after each submission joined: the lingering writer looks again
	done   chan struct{} // closed once every submission has its results or error
	taken  bool          // a caller is writing it (guarded by Ingester.mu)
}

// submission is one caller's events within a group.
type submission struct {
	from, n int
	results []trigger.Result
	err     error
}

// New returns an Ingester writing through mgr.
func New(mgr *trigger.Manager, cfg Config) *Ingester {
	if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingester{mgr: mgr, cfg: cfg, log: log, met: cfg.Metrics, writer: make(chan struct{}, 1)}
}

// AddEvents stores events, as trigger.Manager.AddEvents does, in the
// next group transaction, and returns once it committed: one Result per
// event, in order. An error means none of the events is known to be stored
// (the transaction failed, or ctx ended first). source labels the metrics
// (SourceHTTP, SourceAMQP, SourceLibrary, …).
func (in *Ingester) AddEvents(ctx context.Context, source string, events []stream.Event) ([]trigger.Result, error) {
	in.met.EventsReceived(source, len(events))
	res, err := in.submit(ctx, events)
	if err != nil {
		in.met.EventsFailed(source, len(events))
		return nil, err
	}
	in.met.CountResults(source, metrics.ReasonInvalidEvent, res)
	return res, nil
}

// AddNotifications distills raw notifications on the caller's goroutine
// (big batches on all cores) and stores the events as AddEvents does.
// Results are in input order; a notification that cannot be distilled is
// Rejected with the reason.
func (in *Ingester) AddNotifications(ctx context.Context, source string, bodies [][]byte) ([]trigger.Result, error) {
	in.met.EventsReceived(source, len(bodies))
	results := make([]trigger.Result, len(bodies))
	events := make([]stream.Event, len(bodies))
	ok := make([]bool, len(bodies))
	in.distill(bodies, events, results, ok)
	var kept []stream.Event
	var index []int
	for i := range bodies {
		if ok[i] {
			kept = append(kept, events[i])
			index = append(index, i)
		}
	}
	in.met.EventsRejected(source, metrics.ReasonUndistillable, len(bodies)-len(kept))
	if len(kept) > 0 {
		res, err := in.submit(ctx, kept)
		if err != nil {
			in.met.EventsFailed(source, len(kept))
			return nil, err
		}
		for j, i := range index {
			results[i] = res[j]
		}
		in.met.CountResults(source, metrics.ReasonInvalidEvent, res)
	}
	return results, nil
}

// parallelDistill is the batch size from which AddNotifications distills
// on several goroutines.
const parallelDistill = 64

func (in *Ingester) distill(bodies [][]byte, events []stream.Event, results []trigger.Result, ok []bool) {
	one := func(i int) {
		events[i], results[i], ok[i] = in.mgr.DistillNotification(bodies[i])
	}
	workers := min(runtime.GOMAXPROCS(0), len(bodies)/parallelDistill)
	if workers <= 1 {
		for i := range bodies {
			one(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (len(bodies) + workers - 1) / workers
	for lo := 0; lo < len(bodies); lo += chunk {
		hi := min(lo+chunk, len(bodies))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				one(i)
			}
		})
	}
	wg.Wait()
}

// submit adds events to the open group and waits for its commit.
func (in *Ingester) submit(ctx context.Context, events []stream.Event) ([]trigger.Result, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub := &submission{n: len(events)}
	in.mu.Lock()
	g := in.open
	if g != nil && len(g.events)+len(events) > in.cfg.MaxEvents {
		in.closeLocked(g)
		g = nil
	}
	if g == nil {
		g = &group{full: make(chan struct{}), joined: make(chan struct{}, 1), done: make(chan struct{})}
		in.open = g
	}
	sub.from = len(g.events)
	g.events = append(g.events, events...)
	g.subs = append(g.subs, sub)
	in.inFlight++
	if len(g.events) >= in.cfg.MaxEvents {
		in.closeLocked(g)
	}
	select {
	case g.joined <- struct{}{}:
	default:
	}
	if in.onJoin != nil {
		in.onJoin()
	}
	in.mu.Unlock()

	// Whoever of the group's callers gets the writer first writes the
	// group; the others wait for it. A caller that stops waiting leaves
	// the writing to the others.
	select {
	case <-g.done:
		return sub.results, sub.err
	case in.writer <- struct{}{}:
		in.lead(ctx, g)
		return sub.results, sub.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the group commit: %w", context.Cause(ctx))
	}
}

// closeLocked stops g from accepting submissions because it is full.
// in.mu is held.
func (in *Ingester) closeLocked(g *group) {
	if in.open == g {
		in.open = nil
		close(g.full)
	}
}

// lead writes g, holding the writer token, unless another caller wrote it
// already; then it releases the token. The write is not cancelled with
// ctx: other callers wait for it.
func (in *Ingester) lead(ctx context.Context, g *group) {
	defer func() { <-in.writer }()
	in.linger(g)
	in.mu.Lock()
	if g.taken {
		in.mu.Unlock()
		return
	}
	g.taken = true
	if in.open == g {
		in.open = nil
	}
	in.mu.Unlock()

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.CommitTimeout)
	defer cancel()
	began := time.Now()
	in.write(wctx, g)
	in.mu.Lock()
	in.lastTook = time.Since(began)
	in.target = in.inFlight
	in.inFlight -= len(g.subs)
	in.mu.Unlock()
	close(g.done)
}

// linger waits, up to Config.Linger or a quarter of the previous write
// if longer, until g holds as many submissions as were in flight when the
// previous group committed, or is full, or was written by another caller.
func (in *Ingester) linger(g *group) {
	if in.cfg.Linger <= 0 {
		return
	}
	var timeout <-chan time.Time
	for {
		in.mu.Lock()
		enough := g.taken || len(g.subs) >= in.target
		if !enough && timeout == nil && in.onLinger != nil {
			in.onLinger()
		}
		limit := max(in.cfg.Linger, in.lastTook/4)
		in.mu.Unlock()
		if enough {
			return
		}
		if timeout == nil {
			t := time.NewTimer(limit)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-g.full:
			return
		case <-timeout:
			return
		case <-g.joined:
		}
	}
}

// write commits g's events and hands every submission its results or
// error.
func (in *Ingester) write(ctx context.Context, g *group) {
	start := time.Now()
	res, err := in.mgr.AddEvents(ctx, g.events)
	in.met.GroupCommitted(len(g.events), len(g.subs), time.Since(start), err)
	if err == nil {
		for _, s := range g.subs {
			s.results = res[s.from : s.from+s.n : s.from+s.n]
		}
		return
	}
	if len(g.subs) == 1 || errors.Is(err, db.ErrUnavailable) {
		in.log.Warn("group commit failed", "events", len(g.events), "submissions", len(g.subs), "error", err)
		for _, s := range g.subs {
			s.err = fmt.Errorf("store %d events: %w", s.n, err)
		}
		return
	}
	// One submission may be the cause: write each alone so that the
	// others do not fail with it.
	in.log.Warn("group commit failed, writing its submissions one by one", "events", len(g.events), "submissions", len(g.subs), "error", err)
	for _, s := range g.subs {
		res, err := in.mgr.AddEvents(ctx, g.events[s.from:s.from+s.n])
		if err != nil {
			s.err = fmt.Errorf("store %d events: %w", s.n, err)
			continue
		}
		s.results = res
	}
}
