package winchester

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/winchester-go/winchester/amqpconsume"
	"github.com/winchester-go/winchester/trigger/timex"
)

// Validate checks every value and sets DatabaseURL. It reports all
// problems at once (errors.Join), each naming the file and line of the key,
// or the flag or environment variable that set it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", c.pos(key), key, fmt.Sprintf(format, args...)))
	}

	if c.Database.URL == "" {
		if c.Dir == "" {
			bad("database.url", "required when the configuration has no file")
		} else {
			c.DatabaseURL = "sqlite://" + filepath.Join(c.Dir, DefaultDatabaseFile)
		}
	} else {
		base := c.dbBase
		if base == "" {
			base = c.Dir
		}
		if base == "" {
			base, _ = os.Getwd()
		}
		u, err := NormalizeDatabaseURL(c.Database.URL, base)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: database.url: %w", c.pos("database.url"), err))
		} else {
			c.DatabaseURL = u
		}
	}

	c.ReadURL = ""
	if c.Database.ReadURL != "" {
		u, err := NormalizeDatabaseURL(c.Database.ReadURL, c.Dir)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: database.read_url: %w", c.pos("database.read_url"), err))
		case IsSQLite(u):
			bad("database.read_url", "%s: a read replica must be a PostgreSQL database (SQLite has no replicas)", MaskURL(c.Database.ReadURL))
		case c.DatabaseURL != "" && IsSQLite(c.DatabaseURL):
			bad("database.read_url", "read replicas need a PostgreSQL database.url, and the database is SQLite (%s); remove read_url, or override it with --read-url ''", MaskURL(c.DatabaseURL))
		default:
			c.ReadURL = u
		}
	}

	for _, d := range c.ConfigPath {
		if d == "" {
			bad("config_path", "empty directory name")
		}
	}
	positive := []struct {
		key string
		v   int64
	}{
		{"statistics_period", int64(c.StatisticsPeriod)},
		{"pipeline_worker_batch_size", int64(c.PipelineWorkerBatchSize)},
		{"trim_events_batch_size", int64(c.TrimEventsBatchSize)},
		{"worker_lease", int64(c.WorkerLease)},
		{"worker_concurrency", int64(c.WorkerConcurrency)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad(p.key, "must be positive")
		}
	}
	nonNegative := []struct {
		key string
		v   int64
	}{
		{"pipeline_worker_delay", int64(c.PipelineWorkerDelay)},
		{"shutdown_grace", int64(c.ShutdownGrace)},
		{"purge_completed_streams_after", int64(c.PurgeCompletedStreamsAfter)},
		{"max_retries", int64(c.MaxRetries)},
		{"retry_backoff", int64(c.RetryBackoff)},
	}
	for _, p := range nonNegative {
		if p.v < 0 {
			bad(p.key, "must not be negative")
		}
	}
	if c.RescueAfter != c.WorkerLease {
		bad("rescue_after", "%s differs from worker_lease %s: they are one setting, set only one", c.RescueAfter, c.WorkerLease)
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		bad("log_level", "%v", err)
	}
	if _, err := ParseLogFormat(c.LogFormat); err != nil {
		bad("log_format", "%v", err)
	}
	if c.TrimEvents || c.has("trim_events_age") {
		// Evaluated with $timestamp = now and nothing else.
		e, err := timex.Parse(c.TrimEventsAge)
		if err == nil {
			err = e.Check([]string{})
		}
		if err != nil {
			bad("trim_events_age", "%q: %v", c.TrimEventsAge, err)
		}
	}
	if c.TimeSyncEndpoint != "" {
		u, err := url.Parse(c.TimeSyncEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("time_sync_endpoint", "%q is not an http(s) URL", c.TimeSyncEndpoint)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.PipelineHandlers)) {
		impl := c.PipelineHandlers[name]
		switch {
		case name == "":
			bad("pipeline_handlers", "empty handler name")
		case impl == "":
			bad("pipeline_handlers", "handler %q: empty implementation", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.DistillerTraitPlugins)) {
		if c.DistillerTraitPlugins[name] == "" {
			bad("distiller_trait_plugins", "plugin %q: empty implementation", name)
		}
	}
	errs = append(errs, c.validateJobs()...)
	errs = append(errs, c.validateSubscribers()...)
	if err := c.EventLimits.Limits().Validate(); err != nil {
		bad("event_limits", "%v", err)
	}
	if err := amqpconsume.ValidateAll(c.Consumers, c.displayName()); err != nil {
		errs = append(errs, err)
	}
	if err := c.HTTP.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", c.pos("http"), err))
	}
	switch c.Definitions.Source {
	case DefinitionsFromFiles, DefinitionsFromDatabase:
	default:
		bad("definitions.source", "%q: must be files or database", c.Definitions.Source)
	}
	if c.Definitions.PollInterval <= 0 {
		bad("definitions.poll_interval", "must be positive")
	}
	if c.Serve.Workers < 0 {
		bad("serve.workers", "%d: must be 0 (no workers) or more", c.Serve.Workers)
	}
	return errors.Join(errs...)
}

// ValidateWorker checks what the pipeline worker needs beyond Validate:
// a pipelines file.
func (c *Config) ValidateWorker() error {
	if c.PipelineConfig == "" {
		return fmt.Errorf("%s: pipeline_config: required by the pipeline worker", c.pos("pipeline_config"))
	}
	return nil
}

// Level returns the configured log level; Validate has checked it.
func (c *Config) Level() slog.Level {
	l, _ := ParseLevel(c.LogLevel)
	return l
}

// ParseLevel reads a log level name: debug, info, warn/warning, error, and
// the original's Python names (critical/fatal = error, notset = debug), in
// any case.
func ParseLevel(name string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "debug", "notset":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "critical", "fatal":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warning or error)", name)
}

// Log formats (log_format).
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// ParseLogFormat reads a log format name, text or json, in any case; empty
// is text.
func ParseLogFormat(name string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(name)); f {
	case LogFormatText, "":
		return LogFormatText, nil
	case LogFormatJSON:
		return LogFormatJSON, nil
	}
	return "", fmt.Errorf("unknown log format %q (want text or json)", name)
}
