package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/internal/lease"
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
	// RunFunc, when set, is called with every run the runner records
	// (completed, failed, given up or skipped), after it is stored
	// (metrics). It must be quick.
	RunFunc func(db.JobRun)
}

// Runner runs the due windows of jobs. Any number of runners, in any
// number of processes, may share a store: each window is claimed by one
// of them with a compare-and-set and a lease (see the package doc).
type Runner struct {
	store Store
	defs  []Definition
	cfg   RunnerConfig
	log   *slog.Logger

	mu sync.Mutex
	// notBefore is, per job, the earliest time anything can be due
	// according to the state last read: until then a pass does not read
	// the job's state again. Other runners only move a job forward, so
	// nothing becomes due earlier, except a window handed back at
	// shutdown, which waits at most for the lease it had.
	notBefore map[string]time.Time
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
	r := &Runner{store: store, cfg: cfg, log: log.With("component", "job_runner", "worker_id", cfg.Name),
		notBefore: map[string]time.Time{}}
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
		if d.Disabled || r.cfg.Clock.Now().Before(r.waitUntil(d.Name)) {
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
	lease.Poll(ctx, r.cfg.PollInterval, func(ctx context.Context) {
		res, err := r.Pass(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			r.log.Warn("job pass failed; retrying", "error", err)
		case !res.IsZero():
			r.log.Debug("job pass", "completed", res.Completed, "failed", res.Failed, "gave_up", res.GaveUp,
				"skipped", res.Skipped, "lost", res.Lost)
		}
	})
	return nil
}

// waitUntil returns the time before which job name has nothing due.
func (r *Runner) waitUntil(name string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notBefore[name]
}

// idleUntil records that job name has nothing due before t.
func (r *Runner) idleUntil(name string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notBefore[name] = t
}

// claim is a claimed window.
type claim struct {
	state   db.JobState // as stored after the claim
	attempt int
	run     db.JobRun // the run recorded, once it is
}

// manual is an operator's request to run a job now (RunNow, RunWindow).
type manual struct {
	window     bool // run the window (start, end], not the next due one
	start, end time.Time
}

// runNext claims the job's next due window, if any, runs it and records
// the outcome. ran reports whether a window was claimed (so the caller
// looks for another).
func (r *Runner) runNext(ctx context.Context, d Definition) (PassResult, bool, error) {
	res, _, more, err := r.runOne(ctx, d, nil)
	return res, more, err
}

// runOne is runNext, for an operator's request when m is set; it also
// returns the claim run (nil when none was).
func (r *Runner) runOne(ctx context.Context, d Definition, m *manual) (PassResult, *claim, bool, error) {
	var res PassResult
	c, more, err := r.claim(ctx, d, &res, m)
	if err != nil || c == nil {
		return res, nil, more, err
	}
	log := r.log.With("job", d.Name, "window_start", c.state.WindowStart, "window_end", c.state.WindowEnd, "attempt", c.attempt)
	started := r.cfg.Clock.Now()
	runErr := r.execute(ctx, d, c)
	if errors.Is(runErr, errLeaseLost) {
		log.Warn("lost the claim while the job ran; another worker runs the window")
		res.Lost++
		return res, c, true, nil
	}
	if runErr != nil && ctx.Err() != nil {
		// Shutdown: hand the window back at once rather than wait for the
		// lease, without counting the attempt.
		err := lease.HandBack(ctx, func(ctx context.Context) error {
			_, err := r.store.UpdateJob(ctx, r.update(d, c.state, func(p *db.UpdateJobParams) {
				p.Attempts = c.attempt - 1
			}))
			return err
		})
		if err != nil {
			return res, c, true, fmt.Errorf("hand back window: %w", err)
		}
		return res, c, false, nil
	}
	return res, c, true, r.record(context.WithoutCancel(ctx), d, c, started, runErr, &res, log)
}

// claim finds the job's due window and claims it with a compare-and-set.
// It returns nil when there is nothing to run; more is then set when it
// did something else (gave a window up) and the caller should look again.
func (r *Runner) claim(ctx context.Context, d Definition, res *PassResult, m *manual) (c *claim, more bool, err error) {
	now := r.cfg.Clock.Now()
	st, err := lease.Load(ctx, func(ctx context.Context) (db.JobState, error) {
		return r.store.JobState(ctx, d.Name)
	}, func(ctx context.Context) error {
		// The first window starts when the job is first seen (or where
		// the window an operator runs starts).
		first := now
		if m != nil && m.window {
			first = m.start
		}
		_, err := r.store.CreateJob(ctx, d.Name, first, now)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if st.ClaimedBy != "" && st.LeaseUntil.After(now) {
		if m != nil {
			return nil, false, fmt.Errorf("%w: window %s is claimed by %s until %s", ErrBusy,
				windowText(st.WindowStart, st.WindowEnd), st.ClaimedBy, st.LeaseUntil.Format(time.RFC3339))
		}
		r.idleUntil(d.Name, st.LeaseUntil) // another runner is on it
		return nil, false, nil
	}
	if m != nil && m.window && !st.WindowEnd.IsZero() {
		return nil, false, fmt.Errorf("%w: window %s is not done yet (attempt %d failed); run the job without a window to retry it",
			ErrWindow, windowText(st.WindowStart, st.WindowEnd), st.Attempts)
	}
	p := r.update(d, st, nil)
	p.Now = now
	attempt := 1
	switch {
	case !st.WindowEnd.IsZero() && st.ClaimedBy == "":
		// A failed window waiting for its retry.
		if st.RetryAt.After(now) && m == nil {
			r.idleUntil(d.Name, st.RetryAt)
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
			r.observe(p.Runs...)
			r.log.Error("job window given up: its worker was lost on the last attempt", "job", d.Name,
				"window_start", st.WindowStart, "window_end", st.WindowEnd)
			return nil, true, nil // look for the next window
		}
		attempt = st.Attempts + 1
	case m != nil && m.window:
		switch {
		case !m.end.After(m.start):
			return nil, false, fmt.Errorf("%w: %s ends before it starts", ErrWindow, windowText(m.start, m.end))
		case !m.start.Equal(st.LastEnd):
			return nil, false, windowRefused(m, st.LastEnd)
		case m.end.After(now):
			return nil, false, fmt.Errorf("%w: %s has not ended yet (now is %s)", ErrWindow, windowText(m.start, m.end), now.Format(time.RFC3339))
		}
		p.WindowStart, p.WindowEnd = m.start, m.end
	default:
		start, end, skipTo, ok := nextWindow(d, st.LastEnd, now)
		if !ok && m != nil {
			return nil, false, fmt.Errorf("%w: the next window %s has not ended yet", ErrNotDue,
				windowText(st.LastEnd, d.Schedule.Next(st.LastEnd)))
		}
		if !ok {
			if next := d.Schedule.Next(st.LastEnd); !next.IsZero() {
				r.idleUntil(d.Name, next)
			} else {
				r.idleUntil(d.Name, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) // the schedule has ended
			}
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
		if m != nil {
			return nil, false, fmt.Errorf("%w: another worker changed the job meanwhile", ErrBusy)
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	res.Skipped += len(p.Runs) // the skipped windows recorded with the claim
	r.observe(p.Runs...)
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

// update returns the parameters that store st of job d unchanged (runs
// recorded with them bound its history to d.KeepHistory), then applies
// change.
func (r *Runner) update(d Definition, st db.JobState, change func(p *db.UpdateJobParams)) db.UpdateJobParams {
	p := db.UpdateJobParams{Name: st.Name, SerialNo: st.SerialNo, LastEnd: st.LastEnd,
		WindowStart: st.WindowStart, WindowEnd: st.WindowEnd, Attempts: st.Attempts, ClaimedBy: st.ClaimedBy,
		LeaseUntil: st.LeaseUntil, RetryAt: st.RetryAt, LastError: st.LastError, Now: r.cfg.Clock.Now(),
		KeepRuns: d.KeepHistory}
	p.ClaimedBy, p.LeaseUntil = "", time.Time{} // by default a change releases the claim
	if change != nil {
		change(&p)
	}
	return p
}

// errLeaseLost is the outcome of a run whose claim was taken.
var errLeaseLost = errors.New("job: claim lost")

// execute runs the window's function under the time limit, renewing the
// claim's lease until it returns.
func (r *Runner) execute(ctx context.Context, d Definition, c *claim) error {
	var err error
	renew := func(ctx context.Context) error {
		return r.store.RenewJobLease(ctx, d.Name, c.state.SerialNo, r.cfg.Name, r.cfg.Clock.Now().Add(r.cfg.Lease))
	}
	warn := func(err error) { r.log.Warn("renew job lease", "job", d.Name, "error", err) }
	lost := lease.Hold(ctx, r.cfg.Lease/3, renew, warn, func(hctx context.Context) {
		runCtx, cancel := context.WithTimeout(hctx, d.Timeout)
		defer cancel()
		err = call(runCtx, d, c)
		if err != nil && errors.Is(runCtx.Err(), context.DeadlineExceeded) && hctx.Err() == nil {
			err = fmt.Errorf("time limit %s exceeded: %w", d.Timeout, err)
		}
	})
	if lost {
		return errLeaseLost
	}
	return err
}

// call runs the window's function; a panic is its error.
func call(ctx context.Context, d Definition, c *claim) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	return d.Func(ctx, c.state.WindowStart, c.state.WindowEnd)
}

// record stores the outcome of a run.
func (r *Runner) record(ctx context.Context, d Definition, c *claim, started time.Time, runErr error, res *PassResult, log *slog.Logger) error {
	now := r.cfg.Clock.Now()
	st := c.state
	run := db.JobRun{Job: d.Name, WindowStart: st.WindowStart, WindowEnd: st.WindowEnd, Attempt: c.attempt,
		Worker: r.cfg.Name, StartedAt: started, FinishedAt: now}
	p := r.update(d, st, nil)
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
	c.run = run
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
	r.observe(run)
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

// observe hands recorded runs to RunFunc.
func (r *Runner) observe(runs ...db.JobRun) {
	if r.cfg.RunFunc == nil {
		return
	}
	for _, run := range runs {
		r.cfg.RunFunc(run)
	}
}

// Errors of RunNow and RunWindow.
var (
	// ErrUnknownJob: the runner has no job of that name.
	ErrUnknownJob = errors.New("job: no such job")
	// ErrDisabled: the job is disabled.
	ErrDisabled = errors.New("job: disabled")
	// ErrNotDue: the job's next window has not ended yet.
	ErrNotDue = errors.New("job: no window due")
	// ErrBusy: another worker holds the job's window (its lease has not
	// lapsed) or changed the job meanwhile; nothing was run.
	ErrBusy = errors.New("job: another worker runs the job")
	// ErrWindow: the window asked for cannot be run.
	ErrWindow = errors.New("job: window refused")
	// ErrLost: the run's claim was taken over by another worker while it
	// ran; its outcome was dropped and the other worker runs the window.
	ErrLost = errors.New("job: claim lost while running")
)

// RunNow runs job name's next due window at once, as a pass would: the
// window waiting for a retry (without waiting for its backoff), or the
// next window after the last one done under the job's catch-up policy.
// It claims the window with the same compare-and-set and lease as a pass,
// so it never runs a window another worker runs: ErrBusy then. It returns
// the run as recorded in the history; the run's own failure is recorded
// there (Status failed or gave_up, Error), not returned.
func (r *Runner) RunNow(ctx context.Context, name string) (db.JobRun, error) {
	return r.runManual(ctx, name, &manual{})
}

// RunWindow runs job name for the window (start, end] at once, claimed
// like a scheduled window and recorded as the job's progress: it is the
// job's next window, with an end chosen by the caller (end need not be a
// scheduled time; the schedule goes on from it). The window must start
// where the job's last window done ended (when the job has no state yet,
// it starts there) and have ended; the job's next window then starts at
// end, so windows stay contiguous and each runs once. Any other window is
// refused with ErrWindow, whose message says why: a window done already
// (RunWindow never runs a window again), one overlapping windows done, or
// one leaving a gap; so is any window while a failed one waits for its
// retry.
func (r *Runner) RunWindow(ctx context.Context, name string, start, end time.Time) (db.JobRun, error) {
	return r.runManual(ctx, name, &manual{window: true, start: start.UTC().Truncate(time.Microsecond),
		end: end.UTC().Truncate(time.Microsecond)})
}

func (r *Runner) runManual(ctx context.Context, name string, m *manual) (db.JobRun, error) {
	i := slices.IndexFunc(r.defs, func(d Definition) bool { return d.Name == name })
	if i < 0 {
		return db.JobRun{}, fmt.Errorf("%w %q", ErrUnknownJob, name)
	}
	d := r.defs[i]
	if d.Disabled {
		return db.JobRun{}, fmt.Errorf("job %q: %w", name, ErrDisabled)
	}
	for {
		res, c, more, err := r.runOne(ctx, d, m)
		switch {
		case err != nil:
			return db.JobRun{}, fmt.Errorf("job %q: %w", name, err)
		case c == nil && more:
			continue // a lapsed window was given up first: look again
		case c == nil:
			return db.JobRun{}, fmt.Errorf("job %q: %w", name, ErrNotDue)
		case res.Lost > 0:
			return db.JobRun{}, fmt.Errorf("job %q: %w", name, ErrLost)
		case c.run.Status == 0:
			return db.JobRun{}, fmt.Errorf("job %q: stopped before the run ended: %w", name, context.Cause(ctx))
		}
		return c.run, nil
	}
}

// windowRefused explains why the window of m, which does not start at
// lastEnd (where the job's last window done ended), is not run.
func windowRefused(m *manual, lastEnd time.Time) error {
	var why string
	switch last := lastEnd.Format(time.RFC3339Nano); {
	case !m.end.After(lastEnd):
		why = "it is done already, and a window done is never run again"
	case m.start.Before(lastEnd):
		why = "it overlaps the windows done up to " + last
	default:
		why = "it would leave " + windowText(lastEnd, m.start) + " unrun"
	}
	return fmt.Errorf("%w: %s must start where the last window done ended, %s: %s",
		ErrWindow, windowText(m.start, m.end), lastEnd.Format(time.RFC3339Nano), why)
}

// windowText formats a window for errors.
func windowText(start, end time.Time) string {
	return "(" + start.UTC().Format(time.RFC3339Nano) + ", " + end.UTC().Format(time.RFC3339Nano) + "]"
}
