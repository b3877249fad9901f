package winchester

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/job"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// The built-in jobs: the housekeeping that pipeline workers otherwise do
// in every pass, run once per window across all workers instead. Each is
// on by default where it applies and has a jobs entry of its name to
// change its schedule or other settings, or to switch it off (enabled:
// false). A worker whose built-in job is switched off rescues stale claims
// and trims events in every pass again.
const (
	// RescueStaleClaimsJob returns streams whose worker died while holding
	// them (lease lapsed) to their retry states; every worker_lease by
	// default. Always on unless switched off.
	RescueStaleClaimsJob = "rescue_stale_claims"
	// TrimEventsJob deletes events older than trim_events_age that belong
	// to no unfinished stream, trim_events_batch_size per statement until
	// none is left; every 5 minutes by default. On when trim_events is.
	TrimEventsJob = "trim_events"
	// PurgeCompletedStreamsJob deletes streams in state completed whose
	// first event is older than purge_completed_streams_after; hourly by
	// default. On when purge_completed_streams_after is set.
	PurgeCompletedStreamsJob = "purge_completed_streams"
	// OptimizeDatabaseJob lets the database refresh the statistics its
	// query planner uses (SQLite: PRAGMA optimize); every 6 hours by
	// default. On with stores that have such a thing (db.Optimizer).
	OptimizeDatabaseJob = "optimize_database"
)

// Default schedules of the built-in jobs (rescue_stale_claims runs every
// worker_lease).
const (
	DefaultTrimEventsSchedule            = "*/5 * * * *"
	DefaultPurgeCompletedStreamsSchedule = "@hourly"
	DefaultOptimizeDatabaseSchedule      = "0 */6 * * *"
)

// purgeBatchSize is how many completed streams the purge job looks up at
// a time.
const purgeBatchSize = 500

// builtinJob describes a built-in job.
type builtinJob struct {
	// schedule returns the default schedule.
	schedule func(cfg *Config) string
	// active reports whether the job applies to cfg (it is off otherwise,
	// whatever its entry says).
	active func(cfg *Config) bool
	// build returns the job's work on e's store; nil when the store has
	// nothing for it to do.
	build func(e *Engine) (job.Func, error)
}

// builtinJobs are the built-in jobs by name. Read only.
var builtinJobs = map[string]builtinJob{
	RescueStaleClaimsJob: {
		schedule: func(cfg *Config) string { return "@every " + cfg.WorkerLease.Std().String() },
		active:   func(*Config) bool { return true },
		build:    rescueJob,
	},
	TrimEventsJob: {
		schedule: func(*Config) string { return DefaultTrimEventsSchedule },
		active:   func(cfg *Config) bool { return cfg.TrimEvents },
		build:    trimJob,
	},
	PurgeCompletedStreamsJob: {
		schedule: func(*Config) string { return DefaultPurgeCompletedStreamsSchedule },
		active:   func(cfg *Config) bool { return cfg.PurgeCompletedStreamsAfter > 0 },
		build:    purgeJob,
	},
	OptimizeDatabaseJob: {
		schedule: func(*Config) string { return DefaultOptimizeDatabaseSchedule },
		active:   func(*Config) bool { return true },
		build:    optimizeJob,
	},
}

// BuiltinJobs returns the names of the built-in jobs, sorted.
func BuiltinJobs() []string {
	return []string{OptimizeDatabaseJob, PurgeCompletedStreamsJob, RescueStaleClaimsJob, TrimEventsJob}
}

// bindBuiltinJobs sets the work of the enabled built-in jobs of e.Defs;
// a built-in job with nothing to do on e's store is disabled.
func (e *Engine) bindBuiltinJobs() error {
	for i := range e.Defs.Jobs {
		d := &e.Defs.Jobs[i]
		b, ok := e.Defs.builtins[d.Name]
		if !ok || d.Disabled {
			continue
		}
		f, err := b.build(e)
		if err != nil {
			return fmt.Errorf("job %s: %w", d.Name, err)
		}
		if f == nil {
			d.Disabled = true
			continue
		}
		d.Func = f
	}
	return nil
}

// jobOn reports whether job name is configured and enabled.
func (e *Engine) jobOn(name string) bool {
	for _, d := range e.Defs.Jobs {
		if d.Name == name {
			return !d.Disabled
		}
	}
	return false
}

// rescueJob rescues stale claims with the workers' settings (retries and
// backoff of the rescued streams).
func rescueJob(e *Engine) (job.Func, error) {
	cfg := e.WorkerConfig(RescueStaleClaimsJob)
	cfg.Logger = e.Logger.With("job", RescueStaleClaimsJob)
	w, err := pipeline.NewWorker(e.Store, e.Defs.Pipelines, nil, nil, cfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _, _ time.Time) error {
		_, err := w.Rescue(ctx)
		return err
	}, nil
}

// trimJob trims the events older than trim_events_age at the window's
// end, a batch at a time until none is left.
func trimJob(e *Engine) (job.Func, error) {
	if e.Defs.TrimAge == nil {
		return nil, nil
	}
	age, batch, log := e.Defs.TrimAge, e.Config.TrimEventsBatchSize, e.Logger.With("job", TrimEventsJob)
	return func(ctx context.Context, _, end time.Time) error {
		r, err := age.Eval(stream.NormalizeTime(end), nil)
		if err != nil {
			return fmt.Errorf("trim_events_age: %w", err)
		}
		total := 0
		for {
			n, err := e.Store.TrimEvents(ctx, r.Timestamp(), batch)
			total += n
			if err != nil {
				return fmt.Errorf("trim events (%d trimmed): %w", total, err)
			}
			if n < batch {
				break
			}
		}
		if total > 0 {
			log.Info("events trimmed", "trimmed", total, "before", r.Timestamp())
		}
		return nil
	}, nil
}

// purgeJob deletes the completed streams whose first event is older than
// purge_completed_streams_after at the window's end.
func purgeJob(e *Engine) (job.Func, error) {
	age, log := e.Config.PurgeCompletedStreamsAfter.Std(), e.Logger.With("job", PurgeCompletedStreamsJob)
	return func(ctx context.Context, _, end time.Time) error {
		before := stream.NormalizeTime(end.Add(-age))
		total := 0
		for {
			found, err := e.Store.FindStreams(ctx, db.FindStreamsParams{State: stream.StateCompleted, OlderThan: before,
				Limit: purgeBatchSize})
			if err != nil {
				return fmt.Errorf("find completed streams (%d purged): %w", total, err)
			}
			for _, f := range found {
				err := e.Store.PurgeStream(ctx, f.Stream.ID, f.Stream.SerialNo)
				switch {
				case errors.Is(err, db.ErrNotFound), errors.Is(err, db.ErrConflict):
					// purged or changed meanwhile
				case err != nil:
					return fmt.Errorf("purge stream %d (%d purged): %w", f.Stream.ID, total, err)
				default:
					total++
				}
			}
			if len(found) < purgeBatchSize {
				break
			}
		}
		if total > 0 {
			log.Info("completed streams purged", "purged", total, "first_event_before", before)
		}
		return nil
	}, nil
}

// optimizeJob asks a store that can to refresh its planner statistics.
func optimizeJob(e *Engine) (job.Func, error) {
	o, ok := e.Store.(db.Optimizer)
	if !ok {
		return nil, nil
	}
	return func(ctx context.Context, _, _ time.Time) error { return o.Optimize(ctx) }, nil
}

// ConfiguredJob is a job as a configuration sets it up: an entry of jobs
// or a built-in job.
type ConfiguredJob struct {
	Name     string
	Schedule string // the effective schedule (a built-in job's default when its entry sets none)
	Handler  string // the built-in job's own name for built-in jobs
	Enabled  bool
	Builtin  bool
}

// ConfiguredJobs returns the jobs of cfg and the built-in jobs, sorted by
// name, without looking up handlers (a program's Go jobs need not be
// registered to list them). A built-in job that does not apply (trim
// without trim_events, purge without purge_completed_streams_after) is
// listed disabled.
func ConfiguredJobs(cfg *Config) []ConfiguredJob {
	var out []ConfiguredJob
	for name, jc := range cfg.Jobs {
		if _, ok := builtinJobs[name]; !ok {
			out = append(out, ConfiguredJob{Name: name, Schedule: jc.Schedule, Handler: jc.Handler, Enabled: jc.enabled()})
		}
	}
	for name, b := range builtinJobs {
		jc := cfg.Jobs[name]
		c := ConfiguredJob{Name: name, Schedule: jc.Schedule, Handler: name, Enabled: jc.enabled() && b.active(cfg), Builtin: true}
		if c.Schedule == "" {
			c.Schedule = b.schedule(cfg)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ConfiguredJob) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// JobStatuses joins the jobs of cfg (built-in ones included) with their
// stored states, and adds the jobs the database keeps that cfg no longer
// names.
func JobStatuses(cfg *Config, states []db.JobState, now time.Time) []job.Status {
	byName := map[string]db.JobState{}
	for _, st := range states {
		byName[st.Name] = st
	}
	configured := map[string]ConfiguredJob{}
	var names []string
	for _, cj := range ConfiguredJobs(cfg) {
		configured[cj.Name] = cj
		names = append(names, cj.Name)
	}
	for _, st := range states {
		if _, ok := configured[st.Name]; !ok {
			names = append(names, st.Name)
		}
	}
	out := make([]job.Status, 0, len(names))
	for _, name := range names {
		s := job.Status{Name: name, State: "new"}
		cj, isConfigured := configured[name]
		var sched job.Schedule
		if isConfigured {
			s.Configured, s.Schedule, s.Handler, s.Enabled, s.Builtin = true, cj.Schedule, cj.Handler, cj.Enabled, cj.Builtin
			sched, _ = job.ParseSchedule(cj.Schedule) // Validate checked it
		}
		if st, ok := byName[name]; ok {
			s.SetState(st, sched, now)
		}
		switch {
		case !isConfigured:
			s.State += " (not configured)"
		case !s.Enabled:
			s.State = "disabled"
		}
		out = append(out, s)
	}
	return out
}
