package winchester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/job"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
	"github.com/winchester-go/winchester/trigger/timex"
)

// Definitions are the files a configuration points at, loaded and
// validated. Fields are nil when the configuration does not name the file.
type Definitions struct {
	Triggers     []*trigger.Definition
	TriggerFile  string
	Pipelines    *pipeline.Definitions
	PipelineFile string
	Registry     *pipeline.Registry
	Distiller    *distiller.Distiller
	EventDefs    []*distiller.Definition
	DistillFile  string
	TrimAge      *timex.Expr
	// Jobs are the scheduled jobs of the configuration and the built-in
	// ones, disabled ones included (a runner skips them). The Func of a
	// built-in job is set by Open.
	Jobs []job.Definition

	builtins map[string]builtinJob
}

// Close releases what the handler registry holds (connections of
// publishing handlers).
func (d *Definitions) Close() error {
	if d.Registry == nil {
		return nil
	}
	return d.Registry.Close()
}

// Options tune Open and LoadDefinitions.
type Options struct {
	// Registry holds the handlers and trait plugins the definitions may
	// name (nil: a new registry with the built-ins only). Programs
	// embedding the engine register their own on it first.
	Registry *Registry
	// Clock is the engine's time (nil: the system clock); the distiller
	// stamps notifications without a timestamp with it.
	Clock stream.Clock
	// Logger receives the engine's logs, warnings about deprecated
	// spellings included (nil: discard).
	Logger *slog.Logger
	// DatabaseURL overrides cfg.DatabaseURL (replay's private store).
	DatabaseURL string
	// Migrate brings the schema up to date on open. The embedded SQLite
	// default does this by itself; PostgreSQL needs winchester_db (or
	// this).
	Migrate bool
	// StatementFunc is passed to the store (db.Options.StatementFunc).
	StatementFunc func(sql string)
}

// LoadDefinitions loads every file cfg points at and cross-checks them
// (every pipeline a trigger names exists). It returns all problems found,
// joined, not only the first.
func LoadDefinitions(cfg *Config, opts Options) (*Definitions, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	defs := &Definitions{}
	var errs []error

	if cfg.TriggerDefinitions != "" {
		path, err := cfg.ResolvePath(cfg.TriggerDefinitions)
		if err != nil {
			errs = append(errs, fmt.Errorf("trigger_definitions: %w", err))
		} else {
			defs.TriggerFile = path
			tdefs, warnings, err := trigger.Load(path)
			for _, w := range warnings {
				log.Warn("trigger definitions", "warning", w.String())
			}
			if err != nil {
				errs = append(errs, err)
			}
			defs.Triggers = tdefs
		}
	}

	reg := opts.Registry
	if reg == nil {
		reg = NewRegistry()
	}
	selected, err := reg.SelectHandlers(cfg)
	if err != nil {
		errs = append(errs, err)
		selected, _ = reg.handlers.Select(nil) // still check the pipelines file
	}
	defs.Registry = selected
	if cfg.PipelineConfig != "" {
		path, err := cfg.ResolvePath(cfg.PipelineConfig)
		if err != nil {
			errs = append(errs, fmt.Errorf("pipeline_config: %w", err))
		} else {
			defs.PipelineFile = path
			pdefs, err := pipeline.Load(path, selected)
			if err != nil {
				errs = append(errs, err)
			}
			defs.Pipelines = pdefs
		}
	}
	if defs.Triggers != nil && defs.Pipelines != nil {
		if err := trigger.CheckPipelines(defs.Triggers, func(name string) bool {
			_, ok := defs.Pipelines.Pipeline(name)
			return ok
		}); err != nil {
			errs = append(errs, err)
		}
	}

	if cfg.DistillerConfig != "" {
		path, err := cfg.ResolvePath(cfg.DistillerConfig)
		if err != nil {
			errs = append(errs, fmt.Errorf("distiller_config: %w", err))
		} else {
			defs.DistillFile = path
			plugins, err := reg.SelectTraitPlugins(cfg)
			if err != nil {
				errs = append(errs, err)
				plugins = distiller.NewPluginRegistry()
			}
			edefs, err := distiller.LoadDefinitions(path, plugins)
			if err != nil {
				errs = append(errs, err)
			} else {
				defs.EventDefs = edefs
				defs.Distiller = distiller.New(edefs, distiller.Config{CatchAll: cfg.CatchAllNotifications, Clock: opts.Clock,
					Logger: log.With("component", "distiller")})
			}
		}
	}

	if cfg.TrimEvents {
		e, err := timex.Parse(cfg.TrimEventsAge)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: trim_events_age: %w", cfg.File, err))
		}
		defs.TrimAge = e
	}
	jobs, err := reg.JobDefinitions(cfg)
	if err != nil {
		errs = append(errs, err)
	}
	defs.Jobs, defs.builtins = jobs, reg.builtins
	if len(errs) > 0 {
		return defs, errors.Join(errs...)
	}
	return defs, nil
}

// Engine is an open engine: definitions, store and trigger manager.
type Engine struct {
	Config  *Config
	Defs    *Definitions
	Store   db.Store
	Manager *trigger.Manager
	Clock   stream.Clock
	Logger  *slog.Logger
}

// Open loads the definitions, opens the store and builds the manager.
func Open(ctx context.Context, cfg *Config, opts Options) (*Engine, error) {
	if opts.Clock == nil {
		opts.Clock = stream.SystemClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	defs, err := LoadDefinitions(cfg, opts)
	if err != nil {
		_ = defs.Close()
		return nil, err
	}
	url := cfg.DatabaseURL
	if opts.DatabaseURL != "" {
		url = opts.DatabaseURL
	}
	migrate := opts.Migrate || IsSQLite(url)
	store, err := db.Open(ctx, url, db.Options{Migrate: migrate, StatementFunc: opts.StatementFunc})
	if err != nil {
		_ = defs.Close()
		return nil, fmt.Errorf("open database %s: %w", db.Redact(url), err)
	}
	var distill trigger.DistillFunc
	if defs.Distiller != nil {
		distill = defs.Distiller.Event
	}
	mgr, err := trigger.NewManager(store, defs.Triggers, trigger.ManagerConfig{
		Clock: opts.Clock, Logger: log.With("component", "trigger_manager"), DistillFunc: distill,
		Limits: cfg.EventLimits.Limits(),
	})
	if err != nil {
		_ = store.Close()
		_ = defs.Close()
		return nil, err
	}
	e := &Engine{Config: cfg, Defs: defs, Store: store, Manager: mgr, Clock: opts.Clock, Logger: log}
	if err := e.bindBuiltinJobs(); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

// Close closes the store and the handler registry.
func (e *Engine) Close() error {
	return errors.Join(e.Store.Close(), e.Defs.Close())
}

// WorkerConfig returns the worker settings of the configuration, for a
// worker running beside the engine's job runner: when the built-in jobs
// rescue_stale_claims and trim_events are on, its passes leave that
// housekeeping to them (NoRescue set, Trim off). A worker running alone
// (pipeline_worker --once, replay) sets them back.
func (e *Engine) WorkerConfig(name string) pipeline.WorkerConfig {
	c := e.Config
	return pipeline.WorkerConfig{
		NoRescue:      e.jobOn(RescueStaleClaimsJob),
		Name:          name,
		BatchSize:     c.PipelineWorkerBatchSize,
		Delay:         c.PipelineWorkerDelay.Std(),
		Purge:         c.PurgeCompletedStreams,
		Concurrency:   c.WorkerConcurrency,
		Lease:         c.WorkerLease.Std(),
		MaxRetries:    c.MaxRetries,
		RetryBackoff:  c.RetryBackoff.Std(),
		Trim:          c.TrimEvents && !e.jobOn(TrimEventsJob),
		TrimAge:       e.Defs.TrimAge,
		TrimBatchSize: c.TrimEventsBatchSize,
		StatsPeriod:   c.StatisticsPeriod.Std(),
		ShutdownGrace: c.ShutdownGrace.Std(),
		Clock:         e.Clock,
		Logger:        e.Logger,
		SpreadClaims:  true,
		DebugLevelFunc: func(trigger string) int {
			if d, ok := e.Manager.Definition(trigger); ok {
				return d.DebugLevel
			}
			return 2 // streams of unknown triggers: the original's "n/a" debugger
		},
	}
}

// NewWorker returns a pipeline worker over the engine's store, pipelines
// and trigger manager (new events go back through the manager).
func (e *Engine) NewWorker(cfg pipeline.WorkerConfig) (*pipeline.Worker, error) {
	pipes := e.Defs.Pipelines
	if pipes == nil {
		return nil, errors.New("no pipeline_config in the configuration: a worker has no pipelines to run")
	}
	return pipeline.NewWorker(e.Store, pipes, Lookup(e.Manager), Feed(e.Manager), cfg)
}

// Lookup returns the pipeline lookup of a manager's current definitions.
func Lookup(m *trigger.Manager) pipeline.LookupFunc {
	return func(name string) (string, string, bool) {
		d, ok := m.Definition(name)
		if !ok {
			return "", "", false
		}
		return d.FirePipeline, d.ExpirePipeline, true
	}
}

// Feed returns the feed of new pipeline events into a manager.
func Feed(m *trigger.Manager) pipeline.FeedFunc {
	return func(ctx context.Context, tx db.Ops, events []stream.Event) error {
		_, err := m.AddEventsTx(ctx, tx, events)
		return err
	}
}
