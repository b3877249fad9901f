// Package live keeps trigger and pipeline definitions in the database,
// versioned, and every process that runs them current: a Keeper validates
// and stores new versions (from files, the CLI or the HTTP API), polls for
// versions other processes stored, swaps the trigger manager's
// definitions, and tells workers which definitions a stream runs under
// (the version it was created under). docs/DEFINITIONS.md describes the
// behaviour for operators.
package live

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Sources of a version (db.DefinitionVersion.Source).
const (
	SourceFiles = "files"
	SourceCLI   = "cli"
	SourceAPI   = "api"
)

// Start policies (Config.Source): what wins on start when the database
// holds a version.
const (
	StartFromFiles    = "files"
	StartFromDatabase = "database"
)

// DefaultPollInterval is the default of Config.PollInterval.
const DefaultPollInterval = 5 * time.Second

// maxCached bounds the parsed versions a Keeper keeps besides the current
// one.
const maxCached = 32

// Texts are the source texts of one version: triggers.yaml and
// pipelines.yaml, with the names their problems are reported under. An
// empty file name and text mean the file is not used.
type Texts struct {
	TriggerFile  string `json:"trigger_file"`
	Triggers     string `json:"triggers"`
	PipelineFile string `json:"pipeline_file"`
	Pipelines    string `json:"pipelines"`
}

// Digest identifies the texts (not the file names): the hex SHA-256 of
// both texts, length-prefixed.
func (t Texts) Digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s%d:%s", len(t.Triggers), t.Triggers, len(t.Pipelines), t.Pipelines)
	return hex.EncodeToString(h.Sum(nil))
}

// Version is one version of the definitions, parsed and validated. It is
// read-only.
type Version struct {
	// Number is the stored version (0: not stored yet).
	Number    int64
	Source    string
	CreatedAt time.Time
	Texts     Texts
	Triggers  *trigger.Set
	// Pipelines is never nil (empty when the version has no pipelines
	// file).
	Pipelines *pipeline.Definitions
}

// Digest returns the digest of the version's texts.
func (v *Version) Digest() string { return v.Texts.Digest() }

// InvalidError is the error of definitions that do not validate: Err
// joins every problem, each naming its file and line.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return "invalid definitions:\n" + e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Problems returns the problems one by one.
func (e *InvalidError) Problems() []string {
	var out []string
	var walk func(err error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, err.Error())
	}
	walk(e.Err)
	return out
}

// Parse validates texts as winchester check validates the files: the
// triggers, the pipelines with the handlers of handlers (their params
// checked by the handlers' factories), and that every pipeline a trigger
// names exists. Problems come back together in an *InvalidError.
func Parse(texts Texts, handlers *pipeline.Registry, log *slog.Logger) (*Version, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	var tdefs []*trigger.Definition
	if texts.TriggerFile != "" || texts.Triggers != "" {
		defs, warnings, err := trigger.Parse(fileName(texts.TriggerFile, "triggers.yaml"), []byte(texts.Triggers))
		for _, w := range warnings {
			log.Warn("trigger definitions", "warning", w.String())
		}
		if err != nil {
			errs = append(errs, err)
		}
		tdefs = defs
	}
	pipes := &pipeline.Definitions{}
	hasPipes := texts.PipelineFile != "" || texts.Pipelines != ""
	if hasPipes {
		if handlers == nil {
			return nil, errors.New("live: parse pipelines: no handler registry")
		}
		p, err := pipeline.Parse(fileName(texts.PipelineFile, "pipelines.yaml"), []byte(texts.Pipelines), handlers)
		if err != nil {
			errs = append(errs, err)
		} else {
			pipes = p
		}
	}
	if len(errs) == 0 && hasPipes {
		if err := trigger.CheckPipelines(tdefs, func(name string) bool {
			_, ok := pipes.Pipeline(name)
			return ok
		}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, &InvalidError{Err: errors.Join(errs...)}
	}
	set, err := trigger.NewSet(tdefs)
	if err != nil {
		return nil, &InvalidError{Err: err}
	}
	return &Version{Texts: texts, Triggers: set, Pipelines: pipes}, nil
}

func fileName(name, def string) string {
	if name == "" {
		return def
	}
	return name
}

// Config holds a Keeper's settings.
type Config struct {
	// Start is the start policy: StartFromFiles (default) or
	// StartFromDatabase.
	Start string
	// PollInterval is how often Run looks for a new version
	// (DefaultPollInterval when 0).
	PollInterval time.Duration
	Clock        stream.Clock
	Logger       *slog.Logger
}

// Keeper keeps one process's definitions current with the database. It
// is safe for concurrent use.
type Keeper struct {
	ds       db.DefinitionStore
	handlers *pipeline.Registry
	mgr      *trigger.Manager
	cfg      Config
	log      *slog.Logger

	apply sync.Mutex // serialises Apply, Refresh and Start

	mu    sync.Mutex
	cur   *Version
	cache map[int64]*Version
}

// New returns a keeper over a store that keeps versions, the handlers
// pipelines may name, and the manager whose definitions it swaps (nil:
// none, as in the operator's CLI).
func New(ds db.DefinitionStore, handlers *pipeline.Registry, mgr *trigger.Manager, cfg Config) *Keeper {
	if cfg.Start == "" {
		cfg.Start = StartFromFiles
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = stream.SystemClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{ds: ds, handlers: handlers, mgr: mgr, cfg: cfg, log: log, cache: map[int64]*Version{}}
}

// Current returns the running version (nil before Start or Attach).
func (k *Keeper) Current() *Version {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cur
}

// Number returns the running version's number (0 before Start).
func (k *Keeper) Number() int64 {
	if v := k.Current(); v != nil {
		return v.Number
	}
	return 0
}

// Start brings the process's definitions in line with the database when
// it starts. With no stored version, files (the texts of the configured
// files) are stored as version 1. Otherwise, with StartFromFiles, files
// are applied (a new version when they differ from the newest, with the
// triggers' on_change policies); with StartFromDatabase the newest
// version runs. The choice is logged.
func (k *Keeper) Start(ctx context.Context, files Texts) error {
	latest, _, err := k.ds.LatestDefinitionVersion(ctx)
	switch {
	case errors.Is(err, db.ErrNotFound):
		res, err := k.Apply(ctx, files, SourceFiles, false)
		if err != nil {
			return err
		}
		k.log.Info("no stored definitions: the files are version 1 now", "definitions_source", k.cfg.Start, "version", res.Version)
		return nil
	case err != nil:
		return fmt.Errorf("definitions: %w", err)
	case k.cfg.Start == StartFromFiles:
		// The newest version first: the files are compared with it, and
		// its changed triggers' on_change policies apply.
		if _, err := k.Refresh(ctx); err != nil {
			return err
		}
		res, err := k.Apply(ctx, files, SourceFiles, false)
		if err != nil {
			return err
		}
		k.log.Info("definitions from the files (definitions.source: files)", "version", res.Version,
			"new_version", res.Created, "previous", res.Previous)
		return nil
	default:
		if _, err := k.Refresh(ctx); err != nil {
			return err
		}
		k.log.Info("definitions from the database (definitions.source: database)", "version", latest)
		return nil
	}
}

// Attach makes the newest stored version the running one without
// applying anything (the operator's CLI); with none stored, the running
// version stays nil.
func (k *Keeper) Attach(ctx context.Context) error {
	_, err := k.Refresh(ctx)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	return err
}

// Refresh makes the newest stored version the running one when it is not
// already, and reports whether it changed. It is the poll of Run: one
// cheap query when nothing changed.
func (k *Keeper) Refresh(ctx context.Context) (bool, error) {
	k.apply.Lock()
	defer k.apply.Unlock()
	latest, _, err := k.ds.LatestDefinitionVersion(ctx)
	if err != nil {
		return false, fmt.Errorf("latest definitions: %w", err)
	}
	if cur := k.Current(); cur != nil && cur.Number == latest {
		return false, nil
	}
	v, err := k.Version(ctx, nil, latest)
	if err != nil {
		return false, err
	}
	if err := k.use(v); err != nil {
		return false, err
	}
	return true, nil
}

// Run polls for new versions every PollInterval until ctx ends, swapping
// them in. A failed poll is logged and retried at the next tick. It
// returns nil when ctx is cancelled.
func (k *Keeper) Run(ctx context.Context) error {
	t := time.NewTicker(k.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("cannot look for new definitions", "error", err)
		}
	}
}

// use makes v the running version: the manager matches against its
// triggers from now on.
func (k *Keeper) use(v *Version) error {
	if k.mgr != nil {
		if err := k.mgr.SetDefinitions(v.Number, v.Triggers.Definitions()); err != nil {
			return fmt.Errorf("definitions version %d: %w", v.Number, err)
		}
	}
	k.mu.Lock()
	prev := k.cur
	k.cur = v
	k.cacheLocked(v)
	k.mu.Unlock()
	if k.mgr != nil && (prev == nil || prev.Number != v.Number) {
		from := int64(0)
		if prev != nil {
			from = prev.Number
		}
		k.log.Info("running definitions version", "version", v.Number, "previous", from, "triggers", v.Triggers.Len(),
			"source", v.Source)
	}
	return nil
}

func (k *Keeper) cacheLocked(v *Version) {
	k.cache[v.Number] = v
	for len(k.cache) > maxCached {
		oldest := int64(-1)
		for n := range k.cache {
			if (k.cur == nil || n != k.cur.Number) && (oldest < 0 || n < oldest) {
				oldest = n
			}
		}
		if oldest < 0 {
			return
		}
		delete(k.cache, oldest)
	}
}

// Version returns stored version n, parsed; parsed versions are cached.
// Inside a transaction pass its Ops as tx (nil otherwise): on SQLite the
// store itself would wait for the transaction.
func (k *Keeper) Version(ctx context.Context, tx db.Ops, n int64) (*Version, error) {
	k.mu.Lock()
	v, ok := k.cache[n]
	k.mu.Unlock()
	if ok {
		return v, nil
	}
	ds := k.ds
	if tds, ok := tx.(db.DefinitionStore); ok {
		ds = tds
	}
	dv, err := ds.DefinitionVersion(ctx, n)
	if err != nil {
		return nil, err
	}
	v, err = Parse(textsOf(dv), k.handlers, nil)
	if err != nil {
		return nil, fmt.Errorf("stored definitions version %d: %w", n, err)
	}
	v.Number, v.Source, v.CreatedAt = dv.Version, dv.Source, dv.CreatedAt
	k.mu.Lock()
	k.cacheLocked(v)
	k.mu.Unlock()
	return v, nil
}

func textsOf(dv db.DefinitionVersion) Texts {
	return Texts{TriggerFile: dv.TriggerFile, Triggers: dv.Triggers, PipelineFile: dv.PipelineFile, Pipelines: dv.Pipelines}
}

// TriggerSet is the manager's VersionFunc: the triggers of version n.
func (k *Keeper) TriggerSet(ctx context.Context, tx db.Ops, n int64) (*trigger.Set, error) {
	v, err := k.Version(ctx, tx, n)
	if err != nil {
		return nil, err
	}
	return v.Triggers, nil
}

// Resolve is the workers' ResolveFunc: a stream runs the pipelines of the
// version it was created under. A stream older than versions (version 0)
// was created under the files that became version 1: it runs version 1's,
// or the running version's when version 1 lacks its trigger; so does a
// stream whose version is gone from the database.
func (k *Keeper) Resolve(ctx context.Context, s stream.Stream) (pipeline.Resolution, bool, error) {
	cur := k.Current()
	if cur == nil {
		return pipeline.Resolution{}, false, errors.New("no definitions version is running yet")
	}
	n := s.DefinitionVersion
	if n == 0 {
		n = 1
	}
	v := cur
	if n != cur.Number {
		old, err := k.Version(ctx, nil, n)
		switch {
		case err == nil:
			v = old
		case errors.Is(err, db.ErrNotFound):
			k.log.Warn("stream's definitions version is not stored: running the current one", "stream_id", s.ID,
				"version", n)
		default:
			return pipeline.Resolution{}, false, err
		}
	}
	d, ok := v.Triggers.Lookup(s.Name)
	if !ok && s.DefinitionVersion == 0 {
		v = cur
		d, ok = v.Triggers.Lookup(s.Name)
	}
	if !ok {
		return pipeline.Resolution{}, false, nil
	}
	return pipeline.Resolution{Fire: d.FirePipeline, Expire: d.ExpirePipeline, Pipelines: v.Pipelines}, true, nil
}

// ApplyResult is what applying definitions did, or would do (DryRun).
type ApplyResult struct {
	// Version is the version running now: the new one, or, when the
	// definitions equal the newest version or in a dry run, that one.
	Version int64 `json:"version"`
	// Previous is the version running before (0: none).
	Previous int64 `json:"previous"`
	// Created is true when a new version was stored.
	Created bool `json:"created"`
	DryRun  bool `json:"dry_run,omitempty"`
	// Changes are the differences with the previous version, per
	// trigger then per pipeline.
	Changes []Change `json:"changes"`
	// StreamsChanged counts the open streams made ready to fire or expire
	// by on_change policies.
	StreamsChanged int64 `json:"streams_changed"`
}

// Change is one trigger or pipeline that differs between two versions.
type Change struct {
	// Kind is "trigger" or "pipeline".
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Change is "added", "removed" or "changed".
	Change string `json:"change"`
	// Fields are the trigger's keys whose values changed.
	Fields []string `json:"fields,omitempty"`
	// OnChange is the changed trigger's policy for its open streams.
	OnChange string `json:"on_change,omitempty"`
}

// String renders the change for people.
func (c Change) String() string {
	s := fmt.Sprintf("%s %s: %s", c.Kind, c.Name, c.Change)
	if len(c.Fields) > 0 {
		s += fmt.Sprintf(" (%s; on_change: %s)", strings.Join(c.Fields, ", "), c.OnChange)
	}
	return s
}

// Diff returns the changes from old (nil: nothing) to new.
func Diff(old, new *Version) []Change {
	var oldDefs []*trigger.Definition
	oldPipes := &pipeline.Definitions{}
	if old != nil {
		oldDefs, oldPipes = old.Triggers.Definitions(), old.Pipelines
	}
	var out []Change
	for _, c := range trigger.Diff(oldDefs, new.Triggers.Definitions()) {
		ch := Change{Kind: "trigger", Name: c.Trigger, Change: c.Kind.String(), Fields: c.Fields}
		if c.Kind == trigger.Changed {
			ch.OnChange = c.OnChange.String()
		}
		out = append(out, ch)
	}
	for _, c := range pipeline.Diff(oldPipes, new.Pipelines) {
		out = append(out, Change{Kind: "pipeline", Name: c.Pipeline, Change: c.Kind})
	}
	return out
}

// Apply validates texts (as Parse), compares them with the running
// version and stores them as a new version, unless they equal the newest
// stored one or dryRun is set; then it makes the new version the running
// one of this process (others pick it up within their poll interval).
// Open streams of changed triggers whose new definition says on_change:
// expire or fire are made ready to expire or fire in the same
// transaction. Invalid definitions are an *InvalidError and change
// nothing.
func (k *Keeper) Apply(ctx context.Context, texts Texts, source string, dryRun bool) (*ApplyResult, error) {
	v, err := Parse(texts, k.handlers, k.log)
	if err != nil {
		return nil, err
	}
	k.apply.Lock()
	defer k.apply.Unlock()
	cur := k.Current()
	res := &ApplyResult{DryRun: dryRun, Changes: Diff(cur, v)}
	if cur != nil {
		res.Previous, res.Version = cur.Number, cur.Number
	}
	if dryRun {
		return res, nil
	}
	var changes []db.StreamChange
	for _, c := range trigger.Diff(defsOf(cur), v.Triggers.Definitions()) {
		if c.Kind != trigger.Changed {
			continue
		}
		switch c.OnChange {
		case trigger.Fire:
			changes = append(changes, db.StreamChange{Trigger: c.Trigger, Action: db.Fire})
		case trigger.Expire:
			changes = append(changes, db.StreamChange{Trigger: c.Trigger, Action: db.Expire})
		}
	}
	stored, created, changed, err := k.ds.SaveDefinitionVersion(ctx, db.NewDefinitionVersion{
		Digest: texts.Digest(), Triggers: texts.Triggers, TriggerFile: texts.TriggerFile,
		Pipelines: texts.Pipelines, PipelineFile: texts.PipelineFile, Source: source, Changes: changes,
		Now: stream.NormalizeTime(k.cfg.Clock.Now()),
	})
	if err != nil {
		return nil, fmt.Errorf("store definitions: %w", err)
	}
	v.Number, v.Source, v.CreatedAt = stored.Version, stored.Source, stored.CreatedAt
	if !created {
		// Equal texts, stored before: keep the stored file names.
		v.Texts.TriggerFile, v.Texts.PipelineFile = stored.TriggerFile, stored.PipelineFile
	}
	if err := k.use(v); err != nil {
		return nil, err
	}
	res.Version, res.Created, res.StreamsChanged = v.Number, created, changed
	if created {
		k.log.Info("stored definitions version", "version", v.Number, "previous", res.Previous, "source", source,
			"changes", len(res.Changes), "streams_changed", changed)
	}
	return res, nil
}

func defsOf(v *Version) []*trigger.Definition {
	if v == nil {
		return nil
	}
	return v.Triggers.Definitions()
}

// Rollback applies the texts of stored version n again, as a new version
// (see Apply).
func (k *Keeper) Rollback(ctx context.Context, n int64, dryRun bool) (*ApplyResult, error) {
	dv, err := k.ds.DefinitionVersion(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("definitions version %d: %w", n, err)
	}
	return k.Apply(ctx, textsOf(dv), fmt.Sprintf("rollback to %d", n), dryRun)
}

// Versions lists up to limit stored versions (0: all), newest first,
// without their texts.
func (k *Keeper) Versions(ctx context.Context, limit int) ([]db.DefinitionVersion, error) {
	return k.ds.DefinitionVersions(ctx, limit)
}

// Show returns stored version n with its texts (0: the newest).
func (k *Keeper) Show(ctx context.Context, n int64) (db.DefinitionVersion, error) {
	if n == 0 {
		latest, _, err := k.ds.LatestDefinitionVersion(ctx)
		if err != nil {
			return db.DefinitionVersion{}, err
		}
		n = latest
	}
	return k.ds.DefinitionVersion(ctx, n)
}
