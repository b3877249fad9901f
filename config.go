package winchester

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/amqpconsume"
	"github.com/winchester-go/winchester/httpapi"
	"github.com/winchester-go/winchester/internal/yamlfile"
	"github.com/winchester-go/winchester/stream"
)

// Defaults of the winchester.yaml keys. A key missing from the file takes
// its default; see docs/CONFIGURATION.md.
const (
	// DefaultConfigFile is the config file the commands read without -c.
	DefaultConfigFile = "winchester.yaml"
	// DefaultDatabaseFile is the embedded SQLite database used when the
	// file has no database.url; it lives beside the config file.
	DefaultDatabaseFile = "winchester.db"
	// DefaultStatisticsPeriod is the time between statistics logs.
	DefaultStatisticsPeriod = 10 * time.Second
	// DefaultPipelineWorkerBatchSize is the number of ready streams a
	// worker loads per query.
	DefaultPipelineWorkerBatchSize = 1000
	// DefaultPipelineWorkerDelay is how long an idle worker sleeps.
	DefaultPipelineWorkerDelay = 10 * time.Second
	// DefaultPurgeCompletedStreams: finished streams are deleted rather
	// than kept in state completed.
	DefaultPurgeCompletedStreams = true
	// DefaultTrimEventsAge is the timex expression of the trim cutoff.
	DefaultTrimEventsAge = "$timestamp - 14d"
	// DefaultTrimEventsBatchSize is the number of events trimmed per pass.
	DefaultTrimEventsBatchSize = 100
	// DefaultLogLevel is the minimum level logged.
	DefaultLogLevel = "info"
	// DefaultLogFormat is the log output format (text or json).
	DefaultLogFormat = "text"
	// DefaultShutdownGrace is how long in-flight pipelines may run after
	// SIGINT/SIGTERM before they are cancelled.
	DefaultShutdownGrace = 30 * time.Second
	// DefaultWorkerLease is how long a worker's claim on a firing or
	// expiring stream holds without renewal (a running pipeline renews it
	// every third of it); a stream whose claim lapsed is rescued (returned
	// to its retry state). Short, so that a dead worker's streams wait
	// seconds, not minutes; long enough to ride out a database restart.
	DefaultWorkerLease = 30 * time.Second
	// DefaultRescueAfter is the default of rescue_after, another name of
	// worker_lease.
	DefaultRescueAfter = DefaultWorkerLease
	// DefaultMaxRetries is how many times a failed pipeline is retried
	// before its stream stays in an error state.
	DefaultMaxRetries = 5
	// DefaultRetryBackoff is the delay before a failed pipeline is retried.
	DefaultRetryBackoff = 30 * time.Second
)

// Config is the content of winchester.yaml. Field comments are the
// reference for etc/winchester.yaml and docs/CONFIGURATION.md.
type Config struct {
	// ConfigPath lists directories searched for the other files after the
	// directory of the config file itself; relative entries are relative to
	// the config file's directory. A single string is accepted.
	ConfigPath StringList `yaml:"config_path"`
	// Database selects the store. Without it: SQLite file winchester.db
	// beside the config file.
	Database Database `yaml:"database"`
	// DistillerConfig names the event definitions file (needed to accept
	// notifications). Optional.
	DistillerConfig string `yaml:"distiller_config"`
	// DistillerTraitPlugins maps extra trait plugin names to their
	// implementation (the original's "module:Class").
	DistillerTraitPlugins map[string]string `yaml:"distiller_trait_plugins"`
	// CatchAllNotifications keeps notifications without an event
	// definition as minimal events.
	CatchAllNotifications bool `yaml:"catch_all_notifications"`
	// TriggerDefinitions names the triggers file. Optional.
	TriggerDefinitions string `yaml:"trigger_definitions"`
	// EventSchema names the declared-events file (docs/SCHEMA.md):
	// events that do not match their declaration are rejected at ingest.
	// Optional.
	EventSchema string `yaml:"event_schema"`
	// TimeSyncEndpoint is the base URL of a time-sync service used when
	// replaying old notifications; empty means the wall clock.
	TimeSyncEndpoint string `yaml:"time_sync_endpoint"`
	// StatisticsPeriod is the time between statistics logs (a number of
	// seconds or a duration such as "1m").
	StatisticsPeriod Duration `yaml:"statistics_period"`
	// PipelineHandlers maps handler names used in pipelines.yaml to a
	// registered handler: a built-in name ("logger", "usage", "notabene",
	// "atompub") or the original's Python class path of one
	// ("winchester.pipeline_handler:LoggingHandler"). Empty: every
	// registered handler under its own name.
	PipelineHandlers map[string]string `yaml:"pipeline_handlers"`
	// PipelineConfig names the pipelines file (required by the worker).
	PipelineConfig string `yaml:"pipeline_config"`
	// PipelineWorkerBatchSize is the number of ready streams loaded per
	// query.
	PipelineWorkerBatchSize int `yaml:"pipeline_worker_batch_size"`
	// PipelineWorkerDelay is how long an idle worker sleeps.
	PipelineWorkerDelay Duration `yaml:"pipeline_worker_delay"`
	// PurgeCompletedStreams deletes finished streams instead of marking
	// them completed.
	PurgeCompletedStreams bool `yaml:"purge_completed_streams"`
	// PurgeCompletedStreamsAfter is the age (of their first event) after
	// which streams kept in state completed are deleted by the built-in
	// purge_completed_streams job; 0 (the default): never. Only streams
	// kept (purge_completed_streams false) stay completed.
	PurgeCompletedStreamsAfter Duration `yaml:"purge_completed_streams_after"`
	// TrimEvents enables deleting old events.
	TrimEvents bool `yaml:"trim_events"`
	// TrimEventsAge is the timex expression of the trim cutoff.
	TrimEventsAge string `yaml:"trim_events_age"`
	// TrimEventsBatchSize is the number of events trimmed per pass.
	TrimEventsBatchSize int `yaml:"trim_events_batch_size"`
	// LogLevel is the minimum level logged: debug, info, warning, error
	// (Python names such as critical are accepted).
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// LogFile is the original's log file template; accepted and ignored
	// (logs go to standard error) with a warning.
	LogFile string `yaml:"log_file"`
	// LoggingConfig is the original's Python logging ini file; accepted
	// and ignored with a warning.
	LoggingConfig string `yaml:"logging_config"`
	// ShutdownGrace is how long in-flight pipelines may finish after
	// SIGINT/SIGTERM before they are cancelled.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// WorkerLease is how long a worker's claim on a firing or expiring
	// stream holds without renewal (a running pipeline renews it). A
	// stream whose claim lapsed, because its worker died, is returned to
	// retry_fire or retry_expire by any worker.
	WorkerLease Duration `yaml:"worker_lease"`
	// RescueAfter is another name of WorkerLease: set either; after
	// loading both hold the same value.
	RescueAfter Duration `yaml:"rescue_after"`
	// WorkerConcurrency is how many streams a worker runs at once; 0 (the
	// default): the number of CPU cores.
	WorkerConcurrency int `yaml:"worker_concurrency"`
	// MaxRetries is how many times a failed pipeline is retried before its
	// stream stays in its error state; 0: never.
	MaxRetries int `yaml:"max_retries"`
	// RetryBackoff is the delay before the first retry of a failed
	// pipeline; it doubles with every further retry.
	RetryBackoff Duration `yaml:"retry_backoff"`
	// EventLimits bound the events that may enter the system (see
	// EventLimits); an event beyond them is rejected with the reason and
	// the rest of its batch is stored.
	EventLimits EventLimits `yaml:"event_limits"`
	// Consumers are the RabbitMQ consumers run by winchester serve and
	// winchester consume; the keys of an entry are described by
	// amqpconsume.Config and docs/AMQP.md.
	Consumers []amqpconsume.Config `yaml:"consumers"`
	// Jobs are scheduled jobs by name, run by every pipeline worker and
	// each window once across all of them; see JobConfig.
	Jobs map[string]JobConfig `yaml:"jobs"`
	// Subscribers are event subscribers by name: each receives every
	// stored event that passes its filter, durably and off the ingest
	// path, from the pipeline workers (pipeline_worker and serve); see
	// SubscriberConfig.
	Subscribers map[string]SubscriberConfig `yaml:"subscribers"`
	// HTTP configures the HTTP API of winchester serve: listen address,
	// TLS, bearer tokens, limits and timeouts (httpapi.Config,
	// docs/HTTP.md).
	HTTP httpapi.Config `yaml:"http"`
	// Serve selects the parts winchester serve runs, so that large
	// installations can run ingest and workers as separate processes.
	Serve Serve `yaml:"serve"`
	// Definitions configures the live, versioned trigger and pipeline
	// definitions kept in the database (docs/DEFINITIONS.md).
	Definitions DefinitionsConfig `yaml:"definitions"`

	// File is the absolute path of the config file (set by Read).
	File string `yaml:"-"`
	// Dir is the directory of the config file (set by Read).
	Dir string `yaml:"-"`
	// DatabaseURL is the normalised database URL (set by Validate): either
	// "sqlite://" followed by an absolute file path, "sqlite://:memory:",
	// or a "postgres://" URL.
	DatabaseURL string `yaml:"-"`
	// ReadURL is the normalised database.read_url (set by Validate), a
	// "postgres://" URL, or empty when reads go to the primary.
	ReadURL string `yaml:"-"`
	// Warnings lists accepted but ignored settings, for the command to log.
	Warnings []string `yaml:"-"`

	lines  map[string]int    // key path ("database.url") → line in File
	origin map[string]string // key path → overriding source ("--log-level")
	dbBase string            // directory relative sqlite paths are resolved in
}

// EventLimits is the event_limits section: sizes in bytes of UTF-8 text
// (a count for traits). An absent or 0 key takes its default, the
// constant of package stream named in its comment. Whatever the limits,
// an event with a NUL character or invalid UTF-8 in its text, or a NaN or
// infinite float, is rejected.
type EventLimits struct {
	// MessageIDBytes: stream.DefaultMessageIDBytes (512), at most
	// stream.MaxIndexedBytes (2048: the column is indexed).
	MessageIDBytes int `yaml:"message_id_bytes"`
	// EventTypeBytes: stream.DefaultEventTypeBytes (255), at most 2048.
	EventTypeBytes int `yaml:"event_type_bytes"`
	// TraitNameBytes: stream.DefaultTraitNameBytes (255).
	TraitNameBytes int `yaml:"trait_name_bytes"`
	// TraitValueBytes bounds each string trait value:
	// stream.DefaultTraitValueBytes (65536).
	TraitValueBytes int `yaml:"trait_value_bytes"`
	// Traits bounds the number of traits of an event: stream.DefaultTraits
	// (1000).
	Traits int `yaml:"traits"`
	// DistinguishingKeyBytes bounds the key of the distinguishing values
	// of the stream an event goes to: stream.DefaultKeyBytes (1048576).
	DistinguishingKeyBytes int `yaml:"distinguishing_key_bytes"`
}

// Limits returns the section as stream.Limits, defaults filled in.
func (l EventLimits) Limits() stream.Limits {
	return stream.Limits{
		MessageIDBytes: l.MessageIDBytes, EventTypeBytes: l.EventTypeBytes,
		TraitNameBytes: l.TraitNameBytes, TraitValueBytes: l.TraitValueBytes,
		Traits: l.Traits, KeyBytes: l.DistinguishingKeyBytes,
	}.WithDefaults()
}

// Database is the database section.
type Database struct {
	// URL is the database URL in the original's SQLAlchemy forms:
	// sqlite:///relative.db, sqlite:////abs/path.db, sqlite://,
	// postgresql://user:pw@host/db (driver suffixes like +psycopg2 are
	// ignored). MySQL is not supported.
	URL string `yaml:"url"`
	// EchoSQL logs every SQL statement at debug level.
	EchoSQL bool `yaml:"echo_sql"`
	// ReadURL is the URL of a read replica of the PostgreSQL database
	// (same forms as URL): the HTTP API's queries, the console and the
	// winchester streams, events and explain commands read from it, so
	// that looking at a busy system does not load the primary. Writes
	// never go there: its sessions are read-only. Empty (the default):
	// everything reads the primary. Not allowed with SQLite; see
	// docs/REPLICAS.md.
	ReadURL string `yaml:"read_url"`
}

// Serve selects the parts of winchester serve. Its flags --no-http,
// --no-workers and --no-consumers override it.
type Serve struct {
	// HTTP runs the HTTP API (default true).
	HTTP bool `yaml:"http"`
	// Workers is the number of pipeline workers (default 1; 0: none).
	Workers int `yaml:"workers"`
	// Consumers runs the RabbitMQ consumers of the consumers key (default
	// true).
	Consumers bool `yaml:"consumers"`
}

// DefaultServeWorkers is the default of serve.workers.
const DefaultServeWorkers = 1

// DefinitionsConfig is the definitions section: where the trigger and
// pipeline definitions come from when a process starts, and how often it
// looks for a new version in the database.
type DefinitionsConfig struct {
	// Source decides what wins on start when the database holds a
	// version: "files" (default: the files are applied, a new version
	// when they differ from the newest) or "database" (the newest version
	// runs; the files only seed an empty database). Either way, with no
	// stored version the files are applied as version 1.
	Source string `yaml:"source"`
	// PollInterval is how often a process looks for a new version
	// (default DefaultDefinitionsPollInterval).
	PollInterval Duration `yaml:"poll_interval"`
}

// Sources of definitions.source.
const (
	DefinitionsFromFiles    = "files"
	DefinitionsFromDatabase = "database"
)

// DefaultDefinitionsPollInterval is the default of
// definitions.poll_interval.
const DefaultDefinitionsPollInterval = 5 * time.Second

// Duration is a time span read from a number of seconds (10, 0.5) or a Go
// duration string ("30s", "5m").
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads a number of seconds or a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := yamlfile.DecodeDuration(n)
	*d = Duration(v)
	return err
}

// StringList is a list of strings that also accepts a single string.
type StringList []string

// UnmarshalYAML reads a string or a list of strings.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = StringList{n.Value}
		return nil
	case yaml.MappingNode:
		return fmt.Errorf("must be a string or a list of strings, not %s", yamlfile.Describe(n))
	}
	var s []string
	if err := yamlfile.Join(yamlfile.Decode(n, &s)); err != nil {
		return err
	}
	*l = s
	return nil
}

// ignoredKeys are the original's Python-only keys: accepted with a warning.
var ignoredKeys = map[string]string{
	"log_file":       "log_file is ignored: logs go to standard error",
	"logging_config": "logging_config is ignored: use log_level and log_format",
}

// Load reads the config file at path, applies defaults and validates it.
// Commands that apply overrides use Read, then Validate.
func Load(path string) (*Config, error) {
	c, err := Read(path)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Read reads and decodes the config file at path and applies defaults. Its
// errors (syntax, unknown keys, wrong types) name the file and line; all
// key errors are returned together (errors.Join). Read does not validate
// values: call Validate.
func Read(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".ini", ".conf", ".cfg":
		return nil, fmt.Errorf("config file %s: unsupported file type %s (use .yaml, .yml or .json)", path, ext)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	c := &Config{
		File:  abs,
		Dir:   filepath.Dir(abs),
		lines: map[string]int{},
	}
	c.dbBase = c.Dir
	if strings.EqualFold(filepath.Ext(path), ".json") {
		if err := checkJSON(data); err != nil {
			return nil, fmt.Errorf("%s:%w", abs, err)
		}
	}
	root, perr := yamlfile.Parse(data)
	if perr != nil {
		return nil, c.problem(perr)
	}
	if root != nil && root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the config file must be a mapping of keys to values, not %s", abs, root.Line, yamlfile.Describe(root))
	}
	if root != nil {
		d := yamlfile.Decoder{Field: func(key string, k *yaml.Node) { c.lines[key] = k.Line }}
		if errs := d.Decode(root, c); len(errs) > 0 {
			list := make([]error, len(errs))
			for i, e := range errs {
				list[i] = c.problem(e)
			}
			return nil, errors.Join(list...)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ignoredKeys)) {
		if c.has(k) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s", c.pos(k), ignoredKeys[k]))
		}
	}
	if c.Database.EchoSQL {
		c.Warnings = append(c.Warnings, c.pos("database.echo_sql")+": database.echo_sql has no effect: SQL statements are not logged")
	}
	if c.TimeSyncEndpoint != "" {
		c.Warnings = append(c.Warnings, c.pos("time_sync_endpoint")+": time_sync_endpoint is not used: workers run on the wall clock; replay old events with winchester replay")
	}
	c.withDefaults()
	return c, nil
}

// checkJSON reports a JSON syntax error as "line: message": the YAML
// parser reads JSON too, but it accepts things JSON does not.
func checkJSON(data []byte) error {
	var x any
	err := json.Unmarshal(data, &x)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Errorf("%d: invalid JSON: %v", line, se)
	}
	if err != nil {
		return fmt.Errorf(" invalid JSON: %v", err)
	}
	return nil
}

// problem renders a problem of the file as "file:line: key: problem".
func (c *Config) problem(e *yamlfile.Error) error {
	at := c.displayName()
	if e.Line > 0 {
		at = fmt.Sprintf("%s:%d", at, e.Line)
	}
	if e.Key != "" {
		return fmt.Errorf("%s: %s: %w", at, e.Key, e.Err)
	}
	return fmt.Errorf("%s: %w", at, e.Err)
}

// has reports whether key (a dotted path) was set in the file.
func (c *Config) has(key string) bool {
	_, ok := c.lines[key]
	return ok
}

// pos returns where key was set, for messages: "file:line", the
// overriding flag or variable, or the file name when the key is absent.
func (c *Config) pos(key string) string {
	if o, ok := c.origin[key]; ok {
		return o
	}
	if l, ok := c.lines[key]; ok {
		return fmt.Sprintf("%s:%d", c.displayName(), l)
	}
	return c.displayName()
}

func (c *Config) displayName() string {
	if c.File != "" {
		return c.File
	}
	return "config"
}

// Pos says where key (a dotted path) was set, for messages: "file:line",
// the overriding flag or environment variable, or just the file name when
// the file does not set the key.
func (c *Config) Pos(key string) string { return c.pos(key) }

// Line returns the line of key (a dotted path such as "database.url") in
// the config file, or 0 when the file does not set it.
func (c *Config) Line(key string) int { return c.lines[key] }

// Has reports whether the file sets key (a dotted path); defaults do not
// count. Optional files are loaded only when their key is set.
func (c *Config) Has(key string) bool { return c.has(key) }

// Override sets key (a dotted path: "database.url", "database.read_url",
// "log_level" or "log_format") to value on behalf of source (a flag or environment
// variable such as "flag --log-level"), which messages about the value
// then name instead of the file. A relative SQLite path in an overriding
// database URL is resolved in the current directory, not the config
// file's. Call Validate afterwards.
func (c *Config) Override(key, value, source string) error {
	switch key {
	case "database.url":
		cwd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("current directory: %w", err)
		}
		c.Database.URL = value
		c.dbBase = cwd
	case "database.read_url":
		// Empty: reads go to the primary, whatever the file says.
		c.Database.ReadURL = value
	case "log_level":
		c.LogLevel = value
	case "log_format":
		c.LogFormat = value
	default:
		return fmt.Errorf("%s: cannot override %q (only database.url, database.read_url, log_level and log_format)", source, key)
	}
	if c.origin == nil {
		c.origin = map[string]string{}
	}
	c.origin[key] = source
	return nil
}

// withDefaults gives every key the file does not set its default.
func (c *Config) withDefaults() {
	if !c.has("serve.http") {
		c.Serve.HTTP = true
	}
	if !c.has("serve.workers") {
		c.Serve.Workers = DefaultServeWorkers
	}
	if !c.has("serve.consumers") {
		c.Serve.Consumers = true
	}
	if c.Definitions.Source == "" {
		c.Definitions.Source = DefinitionsFromFiles
	}
	if c.Definitions.PollInterval == 0 {
		c.Definitions.PollInterval = Duration(DefaultDefinitionsPollInterval)
	}
	if !c.has("statistics_period") && c.StatisticsPeriod == 0 {
		c.StatisticsPeriod = Duration(DefaultStatisticsPeriod)
	}
	if !c.has("pipeline_worker_batch_size") && c.PipelineWorkerBatchSize == 0 {
		c.PipelineWorkerBatchSize = DefaultPipelineWorkerBatchSize
	}
	if !c.has("pipeline_worker_delay") && c.PipelineWorkerDelay == 0 {
		c.PipelineWorkerDelay = Duration(DefaultPipelineWorkerDelay)
	}
	if !c.has("purge_completed_streams") {
		c.PurgeCompletedStreams = DefaultPurgeCompletedStreams
	}
	if !c.has("trim_events_age") && c.TrimEventsAge == "" {
		c.TrimEventsAge = DefaultTrimEventsAge
	}
	if !c.has("trim_events_batch_size") && c.TrimEventsBatchSize == 0 {
		c.TrimEventsBatchSize = DefaultTrimEventsBatchSize
	}
	if !c.has("log_level") && c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if !c.has("log_format") && c.LogFormat == "" {
		c.LogFormat = DefaultLogFormat
	}
	if !c.has("shutdown_grace") && c.ShutdownGrace == 0 {
		c.ShutdownGrace = Duration(DefaultShutdownGrace)
	}
	switch lease, rescue := c.has("worker_lease"), c.has("rescue_after"); {
	case lease && !rescue:
		c.RescueAfter = c.WorkerLease
	case rescue && !lease:
		c.WorkerLease = c.RescueAfter
	case !lease && !rescue && c.WorkerLease == 0 && c.RescueAfter == 0:
		c.WorkerLease = Duration(DefaultWorkerLease)
		c.RescueAfter = c.WorkerLease
	}
	if c.WorkerConcurrency == 0 {
		c.WorkerConcurrency = runtime.NumCPU()
	}
	if !c.has("max_retries") && c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if !c.has("retry_backoff") && c.RetryBackoff == 0 {
		c.RetryBackoff = Duration(DefaultRetryBackoff)
	}
}

// SearchDirs returns the directories searched for the other files, in
// order: the config file's directory, then each config_path entry
// (relative entries resolved against the config file's directory), without
// duplicates.
func (c *Config) SearchDirs() []string {
	dirs := []string{c.Dir}
	for _, d := range c.ConfigPath {
		if !filepath.IsAbs(d) {
			d = filepath.Join(c.Dir, d)
		}
		d = filepath.Clean(d)
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// ResolvePath finds a file named in the config (trigger_definitions,
// pipeline_config, distiller_config): an absolute name is used as is;
// otherwise the first of SearchDirs holding it wins. A missing file gives
// an error wrapping fs.ErrNotExist that names the file and every directory
// searched.
func (c *Config) ResolvePath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty file name")
	}
	if filepath.IsAbs(name) {
		if err := isFile(name); err != nil {
			return "", err
		}
		return filepath.Clean(name), nil
	}
	dirs := c.SearchDirs()
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if isFile(p) == nil {
			return p, nil
		}
	}
	return "", &notFoundError{fmt.Sprintf("cannot find %s (searched %s)", name, strings.Join(dirs, ", "))}
}

// notFoundError is a file missing from every searched directory; it
// matches fs.ErrNotExist.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == fs.ErrNotExist }

func isFile(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory, not a file", p)
	}
	return nil
}
