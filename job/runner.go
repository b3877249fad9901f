package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// Store is the part of the store a Runner uses (db.JobStore).
type Store interface {
	JobState(ctx context.Context, name string) (db.JobState, error)
	CreateJob(ctx context.Context, name string, start, now time.Time) (bool, error)
	UpdateJob(ctx context.Context, p db.UpdateJobParams) (db.JobState, error)
	RenewJobLease(ctx context.Context, name string, serialNo int64, worker string, until time.Time) error
}

// Runner defaults.
const (
	// DefaultLease is how long a claim on a window holds without renewal.
	DefaultLease = 5 * time.Minute
	// DefaultPollInterval is how often Run looks for due windows.
	DefaultPollInterval = time.Second
	// DefaultMaxWindowsPerPass bounds the windows one job runs in a pass.
	DefaultMaxWindowsPerPass = 100
)

// RunnerConfig tunes a Runner.
type RunnerConfig struct {
	// Name identifies the runner in claims and the history (the worker
	// name). Required.
	Name string
	// Lease is how long a claim holds; a running window renews it every
	// Lease/3. A window whose runner died is run again once it lapsed.
	Lease time.Duration
	// PollInterval is the time between Run's passes.
	PollInterval time.Duration
	// MaxWindowsPerPass bounds the windows of one job a pass runs (a job
	// catching up with CatchUpAll goes on in the next pass).
	MaxWindowsPerPass int
	// Clock is the time (nil: the system clock).
	Clock  stream.Clock
	Logger *slog.Logger
}

// Runner runs the due windows of jobs. Any number of runners, in any
// number of processes, may share a store: each window is claimed by one
// of them with a compare-and-set and a lease (see the package doc).
type Runner struct {
	store Store
	defs  []Definition
	cfg   RunnerConfig
	log   *slog.Logger
}

// NewRunner returns a runner of defs over store.
func NewRunner(store Store, defs []Definition, cfg RunnerConfig) (*Runner, error) {
	if cfg.Name == "" {
		return nil, errors.New("job: runner without a name")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.MaxWindowsPerPass <= 0 {
		cfg.MaxWindowsPerPass = DefaultMaxWindowsPerPass
	}
	if cfg.Clock == nil {
		cfg.Clock = stream.SystemClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{store: store, cfg: cfg, log: log.With("component", "job_runner", "worker_id", cfg.Name)}
	seen := map[string]bool{}
	for _, d := range defs {
		switch {
		case d.Name == "":
			return nil, errors.New("job: a definition without a name")
		case seen[d.Name]:
			return nil, fmt.Errorf("job %q: defined twice", d.Name)
		case d.Schedule.IsZero():
			return nil, fmt.Errorf("job %q: no schedule", d.Name)
		case d.Func == nil && !d.Disabled:
			return nil, fmt.Errorf("job %q: no function", d.Name)
		}
		seen[d.Name] = true
		r.defs = append(r.defs, d.withDefaults())
	}
	return r, nil
}

// PassResult counts what a pass did.
type PassResult struct {
	Completed int // windows run successfully
	Failed    int // runs that failed and will be retried
	GaveUp    int // windows given up after their retries
	Skipped   int // windows skipped by CatchUpSkip
	Lost      int // claims or results lost to another runner
}

func (p *PassResult) add(o PassResult) {
	p.Completed += o.Completed
	p.Failed += o.Failed
	p.GaveUp += o.GaveUp
	p.Skipped += o.Skipped
	p.Lost += o.Lost
}

// IsZero reports whether the pass did nothing.
func (p PassResult) IsZero() bool { return p == PassResult{} }

// Pass runs, for every enabled job, the windows that are due and not
// claimed by another runner, one after the other. Errors of a job's work
// are recorded, not returned; Pass returns the store's errors.
func (r *Runner) Pass(ctx context.Context) (PassResult, error) {
	var res PassResult
	var errs []error
	for _, d := range r.defs {
		if d.Disabled {
			continue
		}
		for range r.cfg.MaxWindowsPerPass {
			if ctx.Err() != nil {
				return res, errors.Join(errs...)
			}
			one, ran, err := r.runNext(ctx, d)
			res.add(one)
			if err != nil {
				errs = append(errs, fmt.Errorf("job %q: %w", d.Name, err))
				break
			}
			if !ran {
				break
			}
		}
	}
	return res, errors.Join(errs...)
}

// Run makes passes every PollInterval until ctx is cancelled; it returns
// nil then. A running window is cancelled with ctx.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		res, err := r.Pass(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.log.Warn("job pass failed; retrying", "error", err)
		case !res.IsZero():
			r.log.Debug("job pass", "completed", res.Completed, "failed", res.Failed, "gave_up", res.GaveUp,
				"skipped", res.Skipped, "lost", res.Lost)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// claim is a claimed window.
type claim struct {
	state   db.JobState // as stored after the claim
	attempt int
}

// runNext claims the job's next due window, if any, runs it and records
// the outcome. ran reports whether a window was claimed (so the caller
// looks for another).
func (r *Runner) runNext(ctx context.Context, d Definition) (PassResult, bool, error) {
	var res PassResult
	c, more, err := r.claim(ctx, d, &res)
	if err != nil || c == nil {
		return res, more, err
	}
	log := r.log.With("job", d.Name, "window_start", c.state.WindowStart, "window_end", c.state.WindowEnd, "attempt", c.attempt)
	started := r.cfg.Clock.Now()
	runErr := r.execute(ctx, d, c)
	if errors.Is(runErr, errLeaseLost) {
		log.Warn("lost the claim while the job ran; another worker runs the window")
		res.Lost++
		return res, true, nil
	}
	if runErr != nil && ctx.Err() != nil {
		// Shutdown: hand the window back at once rather than wait for the
		// lease, without counting the attempt.
		_, err := r.store.UpdateJob(context.WithoutCancel(ctx), r.update(c.state, func(p *db.UpdateJobParams) {
			p.Attempts = c.attempt - 1
		}))
		if err != nil && !errors.Is(err, db.ErrConflict) {
			return res, true, fmt.Errorf("hand back window: %w", err)
		}
		return res, false, nil
	}
	return res, true, r.record(context.WithoutCancel(ctx), d, c, started, runErr, &res, log)
}

// claim finds the job's due window and claims it with a compare-and-set.
// It returns nil when there is nothing to run; more is then set when it
// did something else (gave a window up) and the caller should look again.
func (r *Runner) claim(ctx context.Context, d Definition, res *PassResult) (c *claim, more bool, err error) {
	now := r.cfg.Clock.Now()
	st, err := r.store.JobState(ctx, d.Name)
	if errors.Is(err, db.ErrNotFound) {
		// The first window starts when the job is first seen.
		if _, err := r.store.CreateJob(ctx, d.Name, now, now); err != nil {
			return nil, false, err
		}
		st, err = r.store.JobState(ctx, d.Name)
	}
	if err != nil {
		return nil, false, err
	}
	if st.ClaimedBy != "" && st.LeaseUntil.After(now) {
		return nil, false, nil // another runner is on it
	}
	p := r.update(st, nil)
	p.Now = now
	attempt := 1
	switch {
	case !st.WindowEnd.IsZero() && st.ClaimedBy == "":
		// A failed window waiting for its retry.
		if st.RetryAt.After(now) {
			return nil, false, nil
		}
		attempt = st.Attempts + 1
	case !st.WindowEnd.IsZero():
		// The claim of a runner that died lapsed: run the window again,
		// unless it had its retries.
		if st.Attempts > d.MaxRetries {
			msg := fmt.Sprintf("the claim of %s lapsed (worker lost) and no retries are left", st.ClaimedBy)
			p.LastEnd, p.WindowStart, p.WindowEnd, p.Attempts, p.ClaimedBy, p.LeaseUntil, p.RetryAt, p.LastError =
				st.WindowEnd, time.Time{}, time.Time{}, 0, "", time.Time{}, time.Time{}, msg
			p.Runs = []db.JobRun{{Job: d.Name, WindowStart: st.WindowStart, WindowEnd: st.WindowEnd, Status: db.JobGaveUp,
				Attempt: st.Attempts, Worker: st.ClaimedBy, FinishedAt: now, Error: msg}}
			if _, err := r.store.UpdateJob(ctx, p); err != nil {
				if errors.Is(err, db.ErrConflict) {
					res.Lost++
					return nil, false, nil
				}
				return nil, false, err
			}
			res.GaveUp++
			r.log.Error("job window given up: its worker was lost on the last attempt", "job", d.Name,
				"window_start", st.WindowStart, "window_end", st.WindowEnd)
			return nil, true, nil // look for the next window
		}
		attempt = st.Attempts + 1
	default:
		start, end, skipTo, ok := nextWindow(d, st.LastEnd, now)
		if !ok {
			return nil, false, nil
		}
		if !skipTo.IsZero() {
			p.Runs = append(p.Runs, db.JobRun{Job: d.Name, WindowStart: st.LastEnd, WindowEnd: skipTo,
				Status: db.JobSkipped, FinishedAt: now})
			p.LastEnd = skipTo
		}
		p.WindowStart, p.WindowEnd = start, end
	}
	p.Attempts = attempt
	p.ClaimedBy = r.cfg.Name
	p.LeaseUntil = now.Add(r.cfg.Lease)
	p.RetryAt = time.Time{}
	st2, err := r.store.UpdateJob(ctx, p)
	if errors.Is(err, db.ErrConflict) {
		res.Lost++
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	res.Skipped += len(p.Runs) // the skipped windows recorded with the claim
	return &claim{state: st2, attempt: attempt}, true, nil
}

// nextWindow returns the next window after lastEnd due at now under d's
// catch-up policy; skipTo is set when the windows from lastEnd to skipTo
// are skipped first.
func nextWindow(d Definition, lastEnd, now time.Time) (start, end, skipTo time.Time, ok bool) {
	next := d.Schedule.Next(lastEnd)
	if next.IsZero() || next.After(now) {
		return time.Time{}, time.Time{}, time.Time{}, false
	}
	if d.CatchUp == CatchUpAll {
		return lastEnd, next, time.Time{}, true
	}
	prev, latest := lastEnd, next
	for {
		n := d.Schedule.Next(latest)
		if n.IsZero() || n.After(now) {
			break
		}
		prev, latest = latest, n
	}
	if d.CatchUp == CatchUpLatest || prev.Equal(lastEnd) {
		return lastEnd, latest, time.Time{}, true
	}
	return prev, latest, prev, true // CatchUpSkip
}

// update returns the parameters that store st unchanged, then applies
// change.
func (r *Runner) update(st db.JobState, change func(p *db.UpdateJobParams)) db.UpdateJobParams {
	p := db.UpdateJobParams{Name: st.Name, SerialNo: st.SerialNo, LastEnd: st.LastEnd,
		WindowStart: st.WindowStart, WindowEnd: st.WindowEnd, Attempts: st.Attempts, ClaimedBy: st.ClaimedBy,
		LeaseUntil: st.LeaseUntil, RetryAt: st.RetryAt, LastError: st.LastError, Now: r.cfg.Clock.Now()}
	p.ClaimedBy, p.LeaseUntil = "", time.Time{} // by default a change releases the claim
	if change != nil {
		change(&p)
	}
	return p
}

// errLeaseLost is the cancellation cause of a run whose claim was taken.
var errLeaseLost = errors.New("job: claim lost")

// execute runs the window's function under the time limit, renewing the
// claim's lease until it returns.
func (r *Runner) execute(ctx context.Context, d Definition, c *claim) (err error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	runCtx, cancelTimeout := context.WithTimeout(runCtx, d.Timeout)
	defer cancelTimeout()

	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(r.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				until := r.cfg.Clock.Now().Add(r.cfg.Lease)
				if err := r.store.RenewJobLease(ctx, d.Name, c.state.SerialNo, r.cfg.Name, until); err != nil {
					if errors.Is(err, db.ErrConflict) {
						cancel(errLeaseLost)
						return
					}
					r.log.Warn("renew job lease", "job", d.Name, "error", err)
				}
			}
		}
	}()
	defer func() {
		close(done)
		<-renewed
	}()

	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	err = d.Func(runCtx, c.state.WindowStart, c.state.WindowEnd)
	if err == nil && runCtx.Err() != nil && context.Cause(runCtx) == errLeaseLost {
		return errLeaseLost
	}
	if err != nil {
		if cause := context.Cause(runCtx); errors.Is(cause, errLeaseLost) {
			return errLeaseLost
		}
		if errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("time limit %s exceeded: %w", d.Timeout, err)
		}
	}
	return err
}

// record stores the outcome of a run.
func (r *Runner) record(ctx context.Context, d Definition, c *claim, started time.Time, runErr error, res *PassResult, log *slog.Logger) error {
	now := r.cfg.Clock.Now()
	st := c.state
	run := db.JobRun{Job: d.Name, WindowStart: st.WindowStart, WindowEnd: st.WindowEnd, Attempt: c.attempt,
		Worker: r.cfg.Name, StartedAt: started, FinishedAt: now}
	p := r.update(st, nil)
	p.Now = now
	switch {
	case runErr == nil:
		run.Status = db.JobCompleted
		p.LastEnd, p.WindowStart, p.WindowEnd, p.Attempts, p.RetryAt, p.LastError = st.WindowEnd, time.Time{}, time.Time{}, 0, time.Time{}, ""
	case c.attempt <= d.MaxRetries:
		run.Status, run.Error = db.JobFailed, runErr.Error()
		p.RetryAt = now.Add(d.RetryBackoff << (c.attempt - 1))
		p.LastError = runErr.Error()
	default:
		run.Status, run.Error = db.JobGaveUp, runErr.Error()
		p.LastEnd, p.WindowStart, p.WindowEnd, p.Attempts, p.RetryAt, p.LastError = st.WindowEnd, time.Time{}, time.Time{}, 0, time.Time{}, runErr.Error()
	}
	p.Runs = []db.JobRun{run}
	_, err := r.store.UpdateJob(ctx, p)
	switch {
	case errors.Is(err, db.ErrConflict):
		// The lease lapsed and another runner took the window over: it
		// runs it again (at least once); this outcome is dropped.
		res.Lost++
		log.Warn("lost the claim before recording the run; another worker runs the window", "status", run.Status)
		return nil
	case err != nil:
		return fmt.Errorf("record run: %w", err)
	}
	switch run.Status {
	case db.JobCompleted:
		res.Completed++
		log.Debug("job window completed")
	case db.JobFailed:
		res.Failed++
		log.Warn("job run failed; retrying", "error", runErr, "retry_at", p.RetryAt)
	default:
		res.GaveUp++
		log.Error("job run failed; no retries left, window given up", "error", runErr)
	}
	return nil
}
