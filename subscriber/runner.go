package subscriber

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/internal/lease"
	"github.com/winchester-go/winchester/stream"
)

// Runner defaults.
const (
	// DefaultLease is how long a claim on a subscriber holds without
	// renewal; the runner renews it every third of it.
	DefaultLease = 30 * time.Second
	// DefaultPollInterval is how long a subscriber that has caught up
	// waits before it looks for new events, and how often an unclaimed
	// subscriber is tried.
	DefaultPollInterval = 200 * time.Millisecond
	// DefaultHorizonWarning is how long delivery waits for the snapshot
	// horizon (an older transaction still running on the database
	// server) before the runner logs a warning.
	DefaultHorizonWarning = time.Minute
	// maxHorizonCheck bounds the interval between two looks at the
	// horizon of a subscriber that has caught up.
	maxHorizonCheck = 15 * time.Second
)

// RunnerConfig tunes a Runner.
type RunnerConfig struct {
	// Name identifies the runner in claims (the worker name); a random
	// suffix keeps two processes given the same name apart. Required.
	Name string
	// Lease is how long a claim holds without renewal (0: DefaultLease).
	Lease time.Duration
	// PollInterval: see DefaultPollInterval.
	PollInterval time.Duration
	// HorizonWarning is how long a subscriber that has caught up may wait
	// for the snapshot horizon before the runner logs a warning naming
	// the transaction that holds it (0: DefaultHorizonWarning; negative:
	// never look). It is timed from the start of that transaction, as the
	// database reports it.
	HorizonWarning time.Duration
	// Clock is the time of leases and records (nil: the system clock).
	Clock  stream.Clock
	Logger *slog.Logger
}

// Runner delivers events to subscribers. Any number of runners, in any
// number of processes, may share a store (see the package doc).
type Runner struct {
	store Store
	defs  []Definition
	cfg   RunnerConfig
	id    string
	log   *slog.Logger
}

// NewRunner returns a runner of defs over store.
func NewRunner(store Store, defs []Definition, cfg RunnerConfig) (*Runner, error) {
	if cfg.Name == "" {
		return nil, errors.New("subscriber: runner without a name")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = stream.SystemClock{}
	}
	if cfg.HorizonWarning == 0 {
		cfg.HorizonWarning = DefaultHorizonWarning
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	id := cfg.Name + "/" + hex.EncodeToString(suffix[:])
	r := &Runner{store: store, cfg: cfg, id: id, log: log.With("component", "subscriber_runner", "worker_id", id)}
	seen := map[string]bool{}
	for _, d := range defs {
		switch {
		case d.Name == "":
			return nil, errors.New("subscriber: a definition without a name")
		case seen[d.Name]:
			return nil, fmt.Errorf("subscriber %q: defined twice", d.Name)
		case d.Deliver == nil && !d.Disabled:
			return nil, fmt.Errorf("subscriber %q: no delivery function", d.Name)
		}
		seen[d.Name] = true
		r.defs = append(r.defs, d.withDefaults())
	}
	return r, nil
}

// ID returns the runner's name in claims: RunnerConfig.Name and a random
// suffix.
func (r *Runner) ID() string { return r.id }

// Run delivers to every enabled subscriber, each on its own goroutine,
// until ctx is cancelled; it then stores how far each got, hands its
// claims back and returns nil. The state of disabled subscribers is
// deleted first. Errors of the store are logged and retried, not
// returned.
func (r *Runner) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, d := range r.defs {
		if d.Disabled {
			if err := r.store.DeleteSubscriber(ctx, d.Name); err != nil {
				r.log.Warn("cannot delete the state of a disabled subscriber", "subscriber", d.Name, "error", err)
			}
			continue
		}
		g.Go(func() error {
			r.runSubscriber(ctx, d)
			return nil
		})
	}
	return g.Wait()
}

// runSubscriber claims d whenever it is free and delivers while the claim
// holds, until ctx is cancelled.
func (r *Runner) runSubscriber(ctx context.Context, d Definition) {
	log := r.log.With("subscriber", d.Name)
	lease.Poll(ctx, r.cfg.PollInterval, func(ctx context.Context) {
		st, ok, err := r.claim(ctx, d.Name)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			log.Warn("cannot claim subscriber; retrying", "error", err)
		case ok:
			log.Debug("claimed subscriber", "position", st.Position)
			err := r.deliverWhileHeld(ctx, d, st, log)
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, errLeaseLost):
				log.Info("claim taken over (lease ran out, or the position was moved); claiming again")
			case err != nil:
				log.Warn("stopped delivering", "error", err)
			}
		}
	})
}

// claim takes subscriber name for this runner if nobody else holds a live
// claim on it, creating its state when it has none.
func (r *Runner) claim(ctx context.Context, name string) (db.SubscriberState, bool, error) {
	st, err := lease.Load(ctx, func(ctx context.Context) (db.SubscriberState, error) {
		return r.store.SubscriberState(ctx, name)
	}, func(ctx context.Context) error {
		_, err := r.store.CreateSubscriber(ctx, name, r.now())
		return err
	})
	if err != nil {
		return st, false, err
	}
	now := r.now()
	if st.ClaimedBy != "" && st.ClaimedBy != r.id && now.Before(st.LeaseUntil) {
		return st, false, nil
	}
	st, err = r.store.UpdateSubscriber(ctx, r.update(st, now, nil))
	if errors.Is(err, db.ErrConflict) {
		return st, false, nil // another runner claimed it first
	}
	return st, err == nil, err
}

// update returns the parameters that keep st as it is, claimed by r with a
// fresh lease, for fn to change.
func (r *Runner) update(st db.SubscriberState, now time.Time, fn func(p *db.UpdateSubscriberParams)) db.UpdateSubscriberParams {
	p := db.UpdateSubscriberParams{
		Name: st.Name, SerialNo: st.SerialNo, Position: st.Position, ClaimedBy: r.id,
		LeaseUntil: now.Add(r.cfg.Lease), Delivered: st.Delivered, Failures: st.Failures,
		LastError: st.LastError, Now: now,
	}
	if fn != nil {
		fn(&p)
	}
	return p
}

func (r *Runner) now() time.Time { return stream.NormalizeTime(r.cfg.Clock.Now()) }

// errLeaseLost: the claim was taken over (the lease ran out, or an
// operator moved the position); the work goes on elsewhere.
var errLeaseLost = errors.New("subscriber: claim lost")

// deliverWhileHeld delivers batches while the claim holds. It returns nil
// at shutdown, after storing the progress and handing the claim back.
func (r *Runner) deliverWhileHeld(ctx context.Context, d Definition, st db.SubscriberState, log *slog.Logger) error {
	renewed := r.now()
	var horizon horizonWatch
	for {
		var evs []db.PositionedEvent
		retries, err := r.store.DeadLetters(ctx, d.Name, true, d.BatchSize)
		if err == nil && len(retries) == 0 {
			evs, err = r.store.SubscriberEvents(ctx, st.Position, d.BatchSize)
		}
		if err != nil {
			if ctx.Err() != nil {
				return r.release(ctx, st)
			}
			return err
		}
		if len(retries) == 0 && len(evs) == 0 {
			// Caught up: notice at once when an operator moved the
			// position (the serial changed), with a read, not a write.
			if cur, err := r.store.SubscriberState(ctx, d.Name); err == nil && cur.SerialNo != st.SerialNo {
				return errLeaseLost
			}
			r.watchHorizon(ctx, &horizon, st.Position, log)
			if now := r.now(); now.Sub(renewed) >= r.cfg.Lease/3 {
				if err := r.store.RenewSubscriberLease(ctx, d.Name, st.SerialNo, r.id, now.Add(r.cfg.Lease)); err != nil {
					if ctx.Err() != nil {
						return r.release(ctx, st)
					}
					return err
				}
				renewed = now
			}
			if !sleep(ctx, r.cfg.PollInterval) {
				return r.release(ctx, st)
			}
			continue
		}
		var out batchResult
		lost := r.hold(ctx, d.Name, st.SerialNo, func(hctx context.Context) {
			if len(retries) > 0 {
				out = r.redeliver(hctx, d, retries)
			} else {
				out = deliverBatch(hctx, d, evs)
			}
		})
		if lost {
			log.Warn("lost the claim while delivering; another worker goes on", "position", st.Position)
			return errLeaseLost
		}
		now := r.now()
		wctx := context.WithoutCancel(ctx)
		st, err = r.store.UpdateSubscriber(wctx, r.update(st, now, func(p *db.UpdateSubscriberParams) {
			if out.done > 0 {
				p.Position = evs[out.done-1].Position
			}
			p.Delivered += int64(out.delivered)
			p.Failures += int64(out.failures)
			if out.lastError != "" {
				p.LastError = out.lastError
			}
			p.DeadLetters = out.dead
			if ctx.Err() != nil {
				p.ClaimedBy, p.LeaseUntil = "", time.Time{}
			}
		}))
		if errors.Is(err, db.ErrConflict) {
			log.Warn("lost the claim before storing the position; the batch will be delivered again", "position", st.Position)
			return errLeaseLost
		}
		if err != nil {
			return fmt.Errorf("store position: %w", err)
		}
		renewed = now
		for _, dl := range out.dead {
			log.Warn("event dead-lettered", "event_id", dl.EventID, "message_id", dl.MessageID, "attempts", dl.Attempts, "error", dl.Error)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// horizonWatch is what a runner remembers of a subscriber's wait for the
// snapshot horizon while it has caught up.
type horizonWatch struct {
	checked time.Time // last look
	since   time.Time // start of the wait (zero when not waiting)
	warned  bool
}

// watchHorizon looks, every quarter of the warning threshold (between the
// poll interval and maxHorizonCheck), whether committed events after pos
// are held back by an older transaction, and logs a warning once the wait
// has lasted HorizonWarning, and the end of a wait it warned about.
func (r *Runner) watchHorizon(ctx context.Context, h *horizonWatch, pos db.Position, log *slog.Logger) {
	if r.cfg.HorizonWarning < 0 {
		return
	}
	now := r.now()
	if now.Sub(h.checked) < min(max(r.cfg.HorizonWarning/4, r.cfg.PollInterval), maxHorizonCheck) {
		return
	}
	h.checked = now
	w, err := r.store.HorizonWait(ctx, pos, LagCap)
	if err != nil {
		if ctx.Err() == nil {
			log.Debug("cannot read the snapshot horizon", "error", err)
		}
		return
	}
	if w.HeldBack == 0 {
		if h.warned {
			log.Info("delivery goes on: the transaction that held back the snapshot horizon ended", "waited", now.Sub(h.since).Round(time.Millisecond))
		}
		*h = horizonWatch{checked: now}
		return
	}
	if h.since.IsZero() {
		h.since = now
	}
	if !w.Since.IsZero() && w.Since.Before(h.since) {
		h.since = w.Since
	}
	if waited := now.Sub(h.since); !h.warned && waited >= r.cfg.HorizonWarning {
		h.warned = true
		log.Warn("delivery waits for the snapshot horizon: a transaction still running on the database server holds back committed events until it ends",
			"since", h.since, "waited", waited.Round(time.Millisecond), "held_back", w.HeldBack, "holder", w.Holder)
	}
}

// release stores nothing new but hands the claim back at shutdown, so
// another runner takes over at once rather than after the lease.
func (r *Runner) release(ctx context.Context, st db.SubscriberState) error {
	err := lease.HandBack(ctx, func(ctx context.Context) error {
		_, err := r.store.UpdateSubscriber(ctx, r.update(st, r.now(), func(p *db.UpdateSubscriberParams) {
			p.ClaimedBy, p.LeaseUntil = "", time.Time{}
		}))
		return err
	})
	if err != nil {
		return fmt.Errorf("hand back the claim: %w", err)
	}
	return nil
}

// hold runs fn with a context that is cancelled when the claim is lost
// (hold then reports it), renewing the lease every third of it while fn
// runs.
func (r *Runner) hold(ctx context.Context, name string, serial int64, fn func(ctx context.Context)) (lost bool) {
	renew := func(ctx context.Context) error {
		return r.store.RenewSubscriberLease(ctx, name, serial, r.id, r.now().Add(r.cfg.Lease))
	}
	warn := func(err error) { r.log.Warn("cannot renew the claim; retrying", "subscriber", name, "error", err) }
	return lease.Hold(ctx, r.cfg.Lease/3, renew, warn, fn)
}

// batchResult is what delivering a batch did.
type batchResult struct {
	done      int // events dealt with, from the start of the batch
	delivered int
	failures  int
	lastError string
	dead      []db.DeadLetter
}

// outcome is what offering one event came to.
type outcome struct {
	done      bool // delivered, passed over or dead-lettered
	delivered bool
	failures  int
	lastError string
	dead      *db.DeadLetter
}

// deliverBatch offers the events of a batch: one at a time in order, or up
// to d.Concurrency at once with d.Parallel. done counts the events from
// the start of the batch that were dealt with; at cancellation the rest
// are delivered again later.
func deliverBatch(ctx context.Context, d Definition, evs []db.PositionedEvent) batchResult {
	outs := make([]outcome, len(evs))
	if d.Concurrency <= 1 {
		for i, e := range evs {
			outs[i] = deliverOne(ctx, d, e, false)
			if !outs[i].done {
				break
			}
		}
	} else {
		sem := make(chan struct{}, d.Concurrency)
		var wg sync.WaitGroup
		for i, e := range evs {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				outs[i] = deliverOne(ctx, d, e, false)
			}()
		}
		wg.Wait()
	}
	var res batchResult
	prefix := true
	for _, o := range outs {
		prefix = prefix && o.done
		if prefix {
			res.done++
		}
		res.failures += o.failures
		if o.lastError != "" {
			res.lastError = o.lastError
		}
		if !prefix {
			continue // delivered again with the rest after a restart
		}
		if o.delivered {
			res.delivered++
		}
		if o.dead != nil {
			res.dead = append(res.dead, *o.dead)
		}
	}
	return res
}

// deliverOne offers one event with the retry policy of d.
func deliverOne(ctx context.Context, d Definition, e db.PositionedEvent, redelivery bool) outcome {
	if d.Match != nil && !d.Match(e.Event) {
		return outcome{done: true}
	}
	var o outcome
	dl := Delivery{Subscriber: d.Name, EventID: e.Position.EventID, Event: e.Event, Redelivery: redelivery,
		IdempotencyKey: IdempotencyKey(d.Name, e.Event.MessageID)}
	for attempt := 1; ; attempt++ {
		dl.Attempt = attempt
		err := attemptOne(ctx, d, dl)
		if err == nil {
			o.done, o.delivered = true, true
			return o
		}
		if ctx.Err() != nil {
			return o // interrupted: not done, delivered again later
		}
		o.failures++
		o.lastError = err.Error()
		if attempt >= d.Attempts {
			o.done = true
			o.dead = &db.DeadLetter{Subscriber: d.Name, EventID: e.Position.EventID, MessageID: e.Event.MessageID,
				EventType: e.Event.Type, Attempts: attempt, Error: o.lastError}
			return o
		}
		if !sleep(ctx, d.backoff(attempt)) {
			return o
		}
	}
}

// attemptOne runs one attempt within d.Timeout; a panic of the delivery
// function is a failed attempt.
func attemptOne(ctx context.Context, d Definition, dl Delivery) (err error) {
	actx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return d.Deliver(actx, dl)
}

// redeliver offers the dead letters marked for retry again, each with the
// retry policy, and settles them: delivered ones are deleted, the others
// keep their new error.
func (r *Runner) redeliver(ctx context.Context, d Definition, dls []db.DeadLetter) batchResult {
	var res batchResult
	for _, dl := range dls {
		se, err := r.store.EventByMessageID(ctx, dl.MessageID)
		var o outcome
		switch {
		case ctx.Err() != nil:
			return res
		case errors.Is(err, db.ErrNotFound):
			o = outcome{done: true, failures: 1, lastError: "the event is no longer stored"}
		case err != nil:
			r.log.Warn("cannot read a dead letter's event; retrying later", "subscriber", d.Name, "error", err)
			return res
		default:
			retry := d
			retry.Match = nil // it matched when it was dead-lettered
			o = deliverOne(ctx, retry, db.PositionedEvent{Position: db.Position{EventID: se.ID}, Event: se.Event}, true)
		}
		if !o.done {
			return res
		}
		attempts := o.failures
		if o.delivered {
			attempts++
		}
		msg := o.lastError
		if o.delivered {
			msg = ""
		}
		if err := r.store.SettleDeadLetter(context.WithoutCancel(ctx), dl.ID, attempts, msg, r.now()); err != nil {
			r.log.Warn("cannot record a retried dead letter", "subscriber", d.Name, "dead_letter", dl.ID, "error", err)
			return res
		}
		if o.delivered {
			res.delivered++
		}
		res.failures += o.failures
		if o.lastError != "" {
			res.lastError = o.lastError
		}
	}
	return res
}

// sleep waits for d or until ctx is cancelled; it reports whether the
// wait ran out.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
