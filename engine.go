package winchester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/job"
	"github.com/winchester-go/winchester/live"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/subscriber"
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
	// Texts are the source texts the triggers and pipelines were parsed
	// from (what a version of the live definitions stores).
	Texts       live.Texts
	Registry    *pipeline.Registry
	Distiller   *distiller.Distiller
	EventDefs   []*distiller.Definition
	DistillFile string
	// Schema declares events (nil without event_schema); the manager's
	// limits apply it to every event.
	Schema     *stream.Schema
	SchemaFile string
	TrimAge    *timex.Expr
	// Jobs are the scheduled jobs of the configuration and the built-in
	// ones, disabled ones included (a runner skips them). The Func of a
	// built-in job is set by Open.
	Jobs []job.Definition
	// Subscribers are the event subscribers of the configuration,
	// disabled ones included (a runner deletes their state).
	Subscribers []subscriber.Definition

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
	// JobRunFunc is called with every run the engine's job runners
	// record (job.RunnerConfig.RunFunc; metrics.Metrics.ObserveJobRun).
	JobRunFunc func(db.JobRun)
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
			data, err := os.ReadFile(path)
			if err != nil {
				errs = append(errs, &trigger.DefinitionError{File: path, Err: err})
			} else {
				defs.Texts.TriggerFile, defs.Texts.Triggers = path, string(data)
				tdefs, err := parseTriggers(path, data, log)
				if err != nil {
					errs = append(errs, err)
				}
				defs.Triggers = tdefs
			}
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
			data, err := os.ReadFile(path)
			if err != nil {
				errs = append(errs, fmt.Errorf("load pipelines: %w", err))
			} else {
				defs.Texts.PipelineFile, defs.Texts.Pipelines = path, string(data)
				pdefs, err := pipeline.Parse(path, data, selected)
				if err != nil {
					errs = append(errs, err)
				}
				defs.Pipelines = pdefs
			}
		}
	}
	if err := checkPipelines(defs.Triggers, defs.Pipelines); err != nil {
		errs = append(errs, err)
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

	if cfg.EventSchema != "" {
		path, err := cfg.ResolvePath(cfg.EventSchema)
		if err != nil {
			errs = append(errs, fmt.Errorf("event_schema: %w", err))
		} else {
			defs.SchemaFile = path
			defs.Schema, err = stream.LoadSchema(path)
			if err != nil {
				errs = append(errs, err)
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
	subs, err := reg.SubscriberDefinitions(cfg, selected, log)
	if err != nil {
		errs = append(errs, err)
	}
	defs.Subscribers = subs
	if len(errs) > 0 {
		return defs, errors.Join(errs...)
	}
	return defs, nil
}

// parseTriggers parses a triggers file's text, logging its warnings.
func parseTriggers(file string, data []byte, log *slog.Logger) ([]*trigger.Definition, error) {
	tdefs, warnings, err := trigger.Parse(file, data)
	for _, w := range warnings {
		log.Warn("trigger definitions", "warning", w.String())
	}
	return tdefs, err
}

// checkPipelines reports every trigger naming a pipeline that pipes do
// not define (nothing when either is missing).
func checkPipelines(triggers []*trigger.Definition, pipes *pipeline.Definitions) error {
	if triggers == nil || pipes == nil {
		return nil
	}
	return trigger.CheckPipelines(triggers, func(name string) bool {
		_, ok := pipes.Pipeline(name)
		return ok
	})
}

// Engine is an open engine: definitions, store and trigger manager.
type Engine struct {
	Config  *Config
	Defs    *Definitions
	Store   db.Store
	Manager *trigger.Manager
	Clock   stream.Clock
	Logger  *slog.Logger
	// Live keeps the definitions current with the versions stored in the
	// database; nil until StartDefinitions or AttachDefinitions.
	Live *live.Keeper

	jobRunFunc func(db.JobRun) // Options.JobRunFunc
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
	e := &Engine{Config: cfg, Defs: defs, Store: store, Clock: opts.Clock, Logger: log, jobRunFunc: opts.JobRunFunc}
	limits := cfg.EventLimits.Limits()
	limits.Schema = defs.Schema
	mgr, err := trigger.NewManager(store, defs.Triggers, trigger.ManagerConfig{
		Clock: opts.Clock, Logger: log.With("component", "trigger_manager"), DistillFunc: distill,
		Limits: limits, VersionFunc: e.triggerSet,
	})
	if err != nil {
		_ = store.Close()
		_ = defs.Close()
		return nil, err
	}
	e.Manager = mgr
	if err := e.bindBuiltinJobs(); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

// triggerSet is the manager's VersionFunc: the triggers of a stored
// version, once the live definitions run.
func (e *Engine) triggerSet(ctx context.Context, tx db.Ops, version int64) (*trigger.Set, error) {
	if e.Live == nil {
		return nil, fmt.Errorf("definitions version %d: no live definitions", version)
	}
	return e.Live.TriggerSet(ctx, tx, version)
}

// newKeeper returns the engine's keeper of live definitions.
func (e *Engine) newKeeper(mgr *trigger.Manager) (*live.Keeper, error) {
	ds, ok := e.Store.(db.DefinitionStore)
	if !ok {
		return nil, fmt.Errorf("the store (%T) cannot keep versioned definitions", e.Store)
	}
	return live.New(ds, e.Defs.Registry, mgr, live.Config{
		Start: e.Config.Definitions.Source, PollInterval: e.Config.Definitions.PollInterval.Std(),
		Clock: e.Clock, Logger: e.Logger.With("component", "definitions"),
	}), nil
}

// StartDefinitions runs the live definitions of a long-running process
// (serve, consume, pipeline_worker): with no version stored the files are
// stored as version 1; otherwise definitions.source decides whether the
// files (a new version when they differ) or the newest stored version
// run. Then RunDefinitions keeps them current.
func (e *Engine) StartDefinitions(ctx context.Context) error {
	k, err := e.newKeeper(e.Manager)
	if err != nil {
		return err
	}
	e.Live = k
	return k.Start(ctx, e.Defs.Texts)
}

// AttachDefinitions gives the engine a keeper over the stored versions
// without applying the files or swapping the manager's definitions (the
// operator's definitions commands).
func (e *Engine) AttachDefinitions(ctx context.Context) error {
	k, err := e.newKeeper(nil)
	if err != nil {
		return err
	}
	if err := k.Attach(ctx); err != nil {
		return err
	}
	e.Live = k
	return nil
}

// RunDefinitions polls for new versions until ctx ends (see
// live.Keeper.Run). It does nothing without StartDefinitions.
func (e *Engine) RunDefinitions(ctx context.Context) error {
	if e.Live == nil {
		<-ctx.Done()
		return nil
	}
	return e.Live.Run(ctx)
}

// ReloadFiles reads the configured trigger and pipeline files again and
// applies them as a new version when they changed (SIGHUP). Invalid files
// change nothing: the error lists their problems.
func (e *Engine) ReloadFiles(ctx context.Context) (*live.ApplyResult, error) {
	if e.Live == nil {
		return nil, errors.New("live definitions are not running")
	}
	texts, err := ReadDefinitionTexts(e.Config)
	if err != nil {
		return nil, err
	}
	return e.Live.Apply(ctx, texts, live.SourceFiles, false)
}

// ReadDefinitionTexts reads the trigger and pipeline files cfg names, as
// texts for a version of the live definitions (not validated: see
// live.Parse).
func ReadDefinitionTexts(cfg *Config) (live.Texts, error) {
	var t live.Texts
	var errs []error
	read := func(key, name string, file, text *string) {
		if name == "" {
			return
		}
		path, err := cfg.ResolvePath(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return
		}
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return
		}
		*file, *text = path, string(data)
	}
	read("trigger_definitions", cfg.TriggerDefinitions, &t.TriggerFile, &t.Triggers)
	read("pipeline_config", cfg.PipelineConfig, &t.PipelineFile, &t.Pipelines)
	return t, errors.Join(errs...)
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
		DebugLevelFunc: func(trigger string) int {
			if d, ok := e.Manager.Definition(trigger); ok {
				return d.DebugLevel
			}
			return 2 // streams of unknown triggers: the original's "n/a" debugger
		},
		ResolveFunc: e.resolveFunc(),
	}
}

// resolveFunc returns the workers' ResolveFunc when live definitions run.
func (e *Engine) resolveFunc() pipeline.ResolveFunc {
	if e.Live == nil {
		return nil
	}
	return e.Live.Resolve
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
