package winchester

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/job"
)

// JobConfig is one entry of jobs in winchester.yaml: a scheduled job
// whose windows run once across every worker sharing the database (see
// package job and docs/EXTENDING.md).
type JobConfig struct {
	// Schedule is a crontab schedule: five fields ("*/5 * * * *"; the
	// original's "?" means any) or a descriptor (@hourly, @daily,
	// @every 90m). UTC unless it starts with CRON_TZ=Zone. Required.
	Schedule string `yaml:"schedule"`
	// Handler names the Go job that runs the windows, registered by the
	// program with Registry.RegisterJob, or is exec to run Command.
	// Required.
	Handler string `yaml:"handler"`
	// Command is the program and arguments the exec handler runs for each
	// window, in the config file's directory, with WINCHESTER_JOB,
	// WINCHESTER_WINDOW_START and WINCHESTER_WINDOW_END (RFC 3339, UTC;
	// the window is (start, end]) and WINCHESTER_IDEMPOTENCY_KEY (the
	// same on every retry of a window) added to its environment. A
	// non-zero exit fails the run with the end of its standard error;
	// standard output is discarded.
	Command []string `yaml:"command"`
	// Enabled switches the job on; default true. A disabled job never runs
	// and keeps no state.
	Enabled *bool `yaml:"enabled"`
	// Timeout is the time limit of one run; default 30m.
	Timeout Duration `yaml:"timeout"`
	// MaxRetries is how many times a failed window is run again before it
	// is recorded as given up and the job moves on; default 3, 0: never.
	MaxRetries *int `yaml:"max_retries"`
	// RetryBackoff is the delay before the first retry; it doubles with
	// every further one; default 30s.
	RetryBackoff Duration `yaml:"retry_backoff"`
	// CatchUp is what happens to the windows missed while no worker ran:
	// all (run them one by one), latest (default: one window covering the
	// gap) or skip (record them as skipped, run only the most recent).
	CatchUp string `yaml:"catch_up"`
	// KeepHistory is how many of the job's newest runs the job_run table
	// keeps; recording a run deletes the older ones. Default 1000.
	KeepHistory int `yaml:"keep_history"`
}

// enabled reports whether the job is switched on.
func (j JobConfig) enabled() bool { return j.Enabled == nil || *j.Enabled }

// validateJobs checks the jobs section. Every problem names its key and
// the line of the value, or of the job's entry when the key is missing.
func (c *Config) validateJobs() []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Jobs)) {
		j := c.Jobs[name]
		bad := func(field, format string, args ...any) {
			key := "jobs." + name + "." + field
			at := key
			if !c.has(key) {
				at = "jobs." + name
			}
			errs = append(errs, fmt.Errorf("%s: %s: %s", c.pos(at), key, fmt.Sprintf(format, args...)))
		}
		_, builtin := builtinJobs[name]
		switch {
		case j.Schedule == "" && !builtin:
			bad("schedule", "required (five crontab fields or a descriptor such as @hourly)")
		case j.Schedule != "":
			if _, err := job.ParseSchedule(j.Schedule); err != nil {
				bad("schedule", "%v", err)
			}
		}
		switch {
		case builtin && j.Handler != "" && j.Handler != name:
			bad("handler", "%s is a built-in job: leave handler out (or give %q)", name, name)
		case builtin && len(j.Command) > 0:
			bad("command", "%s is a built-in job: it runs no command", name)
		case builtin:
		case j.Handler == "":
			bad("handler", "required: exec, or the name of a Go job the program registers")
		case j.Handler == ExecJob && len(j.Command) == 0:
			bad("command", "required by the exec handler: the program and its arguments")
		case j.Handler == ExecJob && j.Command[0] == "":
			bad("command", "empty program name")
		case j.Handler != ExecJob && len(j.Command) > 0:
			bad("command", "only the exec handler runs a command (handler is %q)", j.Handler)
		}
		if j.Timeout < 0 {
			bad("timeout", "must not be negative")
		}
		if j.MaxRetries != nil && *j.MaxRetries < 0 {
			bad("max_retries", "must not be negative")
		}
		if j.RetryBackoff < 0 {
			bad("retry_backoff", "must not be negative")
		}
		if j.CatchUp != "" {
			if _, err := job.ParseCatchUp(j.CatchUp); err != nil {
				bad("catch_up", "%v", err)
			}
		}
		if j.KeepHistory < 0 {
			bad("keep_history", "must not be negative")
		}
	}
	return errs
}

// ExecJob is the handler name of jobs that run a command (JobConfig.Command).
const ExecJob = "exec"

// execStderrTail bounds the standard error an exec job's failure carries.
const execStderrTail = 2048

// execJob returns the work of an exec job: run argv in dir for the window.
func execJob(name string, argv []string, dir string) job.Func {
	return func(ctx context.Context, start, end time.Time) error {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Environ(),
			"WINCHESTER_JOB="+name,
			"WINCHESTER_WINDOW_START="+start.UTC().Format(time.RFC3339Nano),
			"WINCHESTER_WINDOW_END="+end.UTC().Format(time.RFC3339Nano),
			"WINCHESTER_IDEMPOTENCY_KEY="+fmt.Sprintf("job-%s-%d", name, end.UnixMicro()))
		var stderr tailBuffer
		cmd.Stderr = &stderr
		cmd.WaitDelay = 2 * time.Second // children holding stderr open do not hold the run
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%v (%w)", err, context.Cause(ctx))
			}
			if msg := strings.TrimSpace(stderr.String()); msg != "" {
				return fmt.Errorf("command %s: %w: %s", argv[0], err, msg)
			}
			return fmt.Errorf("command %s: %w", argv[0], err)
		}
		return nil
	}
}

// tailBuffer keeps the last execStderrTail bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > execStderrTail {
		t.b = append(t.b[:0], t.b[len(t.b)-execStderrTail:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// RegisterJob adds a scheduled job's work under name: the name the
// handler of a jobs entry in winchester.yaml gives. f receives each
// window (start, end] and must limit itself to it.
func (r *Registry) RegisterJob(name string, f job.Func) {
	if name == "" {
		panic("winchester: RegisterJob with an empty name")
	}
	if f == nil {
		panic(fmt.Sprintf("winchester: RegisterJob %q with a nil function", name))
	}
	if name == ExecJob {
		panic("winchester: RegisterJob: " + ExecJob + " is the built-in handler that runs a command")
	}
	if _, ok := r.builtins[name]; ok {
		panic(fmt.Sprintf("winchester: RegisterJob: %q is a built-in job", name))
	}
	if r.jobs == nil {
		r.jobs = map[string]job.Func{}
	}
	if _, dup := r.jobs[name]; dup {
		panic(fmt.Sprintf("winchester: RegisterJob called twice for %q", name))
	}
	r.jobs[name] = f
}

// Jobs returns the registered job names, built-in jobs included, sorted.
func (r *Registry) Jobs() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for name := range r.jobs {
			if !yield(name) {
				return
			}
		}
		for name := range r.builtins {
			if !yield(name) {
				return
			}
		}
	})
}

// JobDefinitions returns the jobs cfg configures, each with the Go job
// its handler names, and the built-in jobs (see BuiltinJobs), with the
// settings of their entries if cfg has any. The Func of a built-in job is
// nil: it needs the store, and Open sets it. An enabled job whose handler
// is not registered is an error naming the entry's file and line.
func (r *Registry) JobDefinitions(cfg *Config) ([]job.Definition, error) {
	var defs []job.Definition
	var errs []error
	names := slices.Sorted(maps.Keys(cfg.Jobs))
	for name := range r.builtins {
		if _, ok := cfg.Jobs[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		jc := cfg.Jobs[name]
		b, builtin := r.builtins[name]
		if builtin {
			if jc.Schedule == "" {
				jc.Schedule = b.schedule(cfg)
			}
			if jc.MaxRetries == nil {
				jc.MaxRetries = new(int) // none: the next window does the work
			}
			if !b.active(cfg) {
				jc.Enabled = new(bool)
			}
		}
		sched, err := job.ParseSchedule(jc.Schedule)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: jobs.%s.schedule: %v", cfg.Pos("jobs."+name+".schedule"), name, err))
			continue
		}
		d := job.Definition{Name: name, Schedule: sched, Disabled: !jc.enabled(),
			Timeout: jc.Timeout.Std(), RetryBackoff: jc.RetryBackoff.Std(), KeepHistory: jc.KeepHistory}
		if jc.MaxRetries != nil {
			d.MaxRetries = *jc.MaxRetries
			if d.MaxRetries == 0 {
				d.MaxRetries = -1 // job.Definition: negative is none
			}
		}
		if jc.CatchUp != "" {
			if d.CatchUp, err = job.ParseCatchUp(jc.CatchUp); err != nil {
				errs = append(errs, fmt.Errorf("%s: jobs.%s.catch_up: %v", cfg.Pos("jobs."+name+".catch_up"), name, err))
				continue
			}
		}
		if builtin {
			// The work needs the store: Open binds it (bindBuiltinJobs).
		} else if jc.Handler == ExecJob {
			d.Func = execJob(name, jc.Command, cfg.Dir)
		} else if f, ok := r.jobs[jc.Handler]; ok {
			d.Func = f
		} else if !d.Disabled {
			known := "none"
			if names := slices.Sorted(maps.Keys(r.jobs)); len(names) > 0 {
				known = strings.Join(names, ", ")
			}
			errs = append(errs, fmt.Errorf("%s: jobs.%s.handler: no Go job registered as %q (Registry.RegisterJob; registered: %s)",
				cfg.Pos("jobs."+name+".handler"), name, jc.Handler, known))
			continue
		}
		defs = append(defs, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return defs, nil
}

// JobRunnerConfig returns the settings of a job runner named name (its
// worker_id in claims and the history): the configuration's worker_lease
// as the lease of its claims, the engine's clock and logger, and
// Options.JobRunFunc.
func (e *Engine) JobRunnerConfig(name string) job.RunnerConfig {
	return job.RunnerConfig{Name: name, Lease: e.Config.WorkerLease.Std(), Clock: e.Clock, Logger: e.Logger,
		RunFunc: e.jobRunFunc}
}

// NewJobRunner returns a runner of the configured jobs, built-in ones
// included, with JobRunnerConfig(name).
func (e *Engine) NewJobRunner(name string) (*job.Runner, error) {
	return e.NewJobRunnerFrom(e.JobRunnerConfig(name))
}

// NewJobRunnerFrom returns a runner of the configured jobs with cfg.
func (e *Engine) NewJobRunnerFrom(cfg job.RunnerConfig) (*job.Runner, error) {
	js, ok := e.Store.(db.JobStore)
	if !ok {
		return nil, fmt.Errorf("the %T store cannot keep scheduled jobs", e.Store)
	}
	return job.NewRunner(js, e.Defs.Jobs, cfg)
}

// JobsAPI offers the engine's scheduled jobs to the HTTP API
// (httpapi.Options.Jobs): their statuses and history, and runs by hand
// on a runner.
type JobsAPI struct {
	e     *Engine
	store db.JobStore
	r     *job.Runner
}

// NewJobsAPI returns the jobs of e for the HTTP API; runs by hand go
// through r (a runner of e's jobs).
func (e *Engine) NewJobsAPI(r *job.Runner) (*JobsAPI, error) {
	js, ok := e.Store.(db.JobStore)
	if !ok {
		return nil, fmt.Errorf("the %T store cannot keep scheduled jobs", e.Store)
	}
	return &JobsAPI{e: e, store: js, r: r}, nil
}

// Statuses returns every job with its progress (JobStatuses).
func (a *JobsAPI) Statuses(ctx context.Context) ([]job.Status, error) {
	states, err := a.store.JobStates(ctx)
	if err != nil {
		return nil, err
	}
	return JobStatuses(a.e.Config, states, a.e.Clock.Now()), nil
}

// Runs returns up to limit runs of job name, newest first; db.ErrNotFound
// when no such job is configured or stored.
func (a *JobsAPI) Runs(ctx context.Context, name string, limit int) ([]db.JobRun, error) {
	runs, err := a.store.JobRuns(ctx, name, limit)
	if err != nil || len(runs) > 0 {
		return runs, err
	}
	if !slices.ContainsFunc(ConfiguredJobs(a.e.Config), func(cj ConfiguredJob) bool { return cj.Name == name }) {
		if _, err := a.store.JobState(ctx, name); errors.Is(err, db.ErrNotFound) {
			return nil, fmt.Errorf("job %q: %w", name, db.ErrNotFound)
		}
	}
	return runs, nil
}

// RunNow is job.Runner.RunNow.
func (a *JobsAPI) RunNow(ctx context.Context, name string) (db.JobRun, error) {
	return a.r.RunNow(ctx, name)
}

// RunWindow is job.Runner.RunWindow.
func (a *JobsAPI) RunWindow(ctx context.Context, name string, start, end time.Time) (db.JobRun, error) {
	return a.r.RunWindow(ctx, name, start, end)
}

// RunWorker runs one pipeline worker named name (its worker_id in logs
// and claims) with the configuration's settings, and the configured
// scheduled jobs and event subscribers beside it, until ctx is cancelled:
// it then stops claiming, lets running pipelines finish within
// shutdown_grace, hands running job windows and subscribers back and
// returns nil. Run several, on goroutines or in other processes, to share
// the work.
func (e *Engine) RunWorker(ctx context.Context, name string) error {
	w, err := e.NewWorker(e.WorkerConfig(name))
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(ctx) })
	if err := e.runBeside(ctx, g, name); err != nil {
		return err
	}
	return g.Wait()
}

// runBeside starts, on g, what runs beside the pipeline workers of a
// process: the scheduled jobs and the event subscribers, when configured.
func (e *Engine) runBeside(ctx context.Context, g *errgroup.Group, name string) error {
	if len(e.Defs.Jobs) > 0 {
		jr, err := e.NewJobRunner(name)
		if err != nil {
			return err
		}
		g.Go(func() error { return jr.Run(ctx) })
	}
	if len(e.Defs.Subscribers) > 0 {
		sr, err := e.NewSubscriberRunner(name)
		if err != nil {
			return err
		}
		g.Go(func() error { return sr.Run(ctx) })
	}
	return nil
}

// RunBeside runs what runs beside the pipeline workers of a process (the
// scheduled jobs and the event subscribers) until ctx is cancelled, for
// programs that run their workers themselves (winchester serve).
func (e *Engine) RunBeside(ctx context.Context, name string) error {
	g, ctx := errgroup.WithContext(ctx)
	if err := e.runBeside(ctx, g, name); err != nil {
		return err
	}
	return g.Wait()
}
