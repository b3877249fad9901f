package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/amqpconsume"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/console"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/httpapi"
	"github.com/winchester-go/winchester/ingest"
	"github.com/winchester-go/winchester/metrics"
)

func init() { subcommands = append(subcommands, newServeCmd) }

type serveOptions struct {
	flags         cli.Flags
	listen        string
	noHTTP        bool
	noUI          bool
	noWorkers     bool
	noConsumers   bool
	keepCompleted bool
	name          string
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the engine: HTTP API, trigger manager, pipeline workers, scheduled jobs and RabbitMQ consumers",
		Long: `serve runs a whole Winchester engine in one process: the HTTP API
(events and notifications in, queries, health checks and Prometheus metrics
out), the trigger manager behind the group-commit ingest path, the pipeline
workers with the scheduled jobs beside them, and the RabbitMQ consumers of
the configuration.

On the embedded SQLite default it creates and migrates the database on
first start; on PostgreSQL it refuses a schema that is not up to date and
names the winchester_db command that fixes it.

Each part can be switched off here or in the serve section of the
configuration, so large installations run ingest and workers as separate
processes. On SIGINT or SIGTERM it stops accepting (readiness fails),
finishes in-flight requests and pipelines within shutdown_grace, and exits
0. See docs/HTTP.md for the endpoints.`,
		Example: `  winchester serve -c etc/winchester.yaml
  winchester serve -c /etc/winchester/winchester.yaml --listen :8080 --no-workers
  winchester serve -c /etc/winchester/winchester.yaml --no-http   # workers only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.flags = cli.FlagsOf(cmd)
			return runServe(cmd.Context(), &o, os.Getenv, cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.listen, "listen", "", "HTTP listen address, host:port (default: http.listen, else "+httpapi.DefaultListen+")")
	fs.BoolVar(&o.noHTTP, "no-http", false, "do not run the HTTP API (serve.http: false)")
	fs.BoolVar(&o.noUI, "no-ui", false, "do not serve the web console under /ui (http.ui: false)")
	fs.BoolVar(&o.noWorkers, "no-workers", false, "do not run pipeline workers nor the scheduled jobs (serve.workers: 0)")
	fs.BoolVar(&o.noConsumers, "no-consumers", false, "do not run the RabbitMQ consumers (serve.consumers: false)")
	fs.BoolVar(&o.keepCompleted, "keep-completed", false, "keep completed streams instead of purging them (purge_completed_streams: false)")
	host, _ := os.Hostname()
	fs.StringVarP(&o.name, "name", "n", "serve-"+host, "worker name prefix, shown in logs and claims")
	cli.AddReadURLTo(cmd)
	return cmd
}

func runServe(ctx context.Context, o *serveOptions, getenv func(string) string, stderr io.Writer) error {
	cfg, log, err := o.flags.Setup(getenv, stderr)
	if err != nil {
		return err
	}
	if o.listen != "" {
		cfg.HTTP.Listen = o.listen
	}
	if o.noHTTP {
		cfg.Serve.HTTP = false
	}
	if o.noUI {
		off := false
		cfg.HTTP.UI = &off
	}
	if o.noWorkers {
		cfg.Serve.Workers = 0
	}
	if o.noConsumers {
		cfg.Serve.Consumers = false
	}
	if o.keepCompleted {
		cfg.PurgeCompletedStreams = false
	}
	runConsumers := cfg.Serve.Consumers && len(cfg.Consumers) > 0
	if !cfg.Serve.HTTP && cfg.Serve.Workers == 0 && !runConsumers {
		return errors.New("nothing to run: the HTTP API, the workers and the consumers are all switched off")
	}
	if cfg.Serve.Workers > 0 {
		if err := cfg.ValidateWorker(); err != nil {
			return fmt.Errorf("%w (or run with --no-workers)", err)
		}
	}
	for _, p := range []*string{&cfg.HTTP.TLSCertFile, &cfg.HTTP.TLSKeyFile, &cfg.HTTP.TokensFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(cfg.Dir, *p)
		}
	}
	tokens, err := cfg.HTTP.LoadTokens()
	if err != nil {
		return err
	}

	met := metrics.New(metrics.Config{Version: versionString()})
	eng, err := winchester.Open(ctx, cfg, winchester.Options{Logger: log, JobRunFunc: met.ObserveJobRun})
	if err != nil {
		return err
	}
	defer func() {
		if err := eng.Close(); err != nil {
			log.Warn("close engine", "error", err)
		}
	}()
	if err := eng.StartDefinitions(ctx); err != nil {
		return err
	}
	if err := cli.RegisterEngineCollectors(met, eng); err != nil {
		return err
	}
	var reads db.Store // the read replica's, when the HTTP API runs and database.read_url names one
	if cfg.Serve.HTTP {
		if reads, err = winchester.OpenReadStore(ctx, cfg, log); err != nil {
			return err
		}
	}
	if reads != nil {
		defer reads.Close()
		if rr, ok := reads.(db.ReplicaReporter); ok {
			if err := met.Registry().Register(metrics.NewReplicaCollector(rr)); err != nil {
				return fmt.Errorf("register replica metrics: %w", err)
			}
		}
	}
	in := ingest.New(eng.Manager, ingest.Config{Logger: log.With("component", "ingest"), Metrics: met})
	grace := cfg.ShutdownGrace.Std()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cli.RunDefinitions(gctx, eng, log) })
	var parts []string
	if cfg.Serve.HTTP {
		hopts := httpapi.Options{Metrics: met, Logger: log.With("component", "http"), ShutdownGrace: grace, Tokens: tokens,
			Definitions: eng.Live,
			Subscribers: slices.Sorted(maps.Keys(cfg.Subscribers)),
			Console:     console.Options{Clock: eng.Clock, Jobs: consoleJobs(cfg)},
		}
		if _, ok := eng.Store.(db.JobStore); ok {
			// Runs asked for over HTTP claim their windows like the
			// workers' runners, under this process's name.
			jr, err := eng.NewJobRunner(o.name + "-http")
			if err != nil {
				return err
			}
			if hopts.Jobs, err = eng.NewJobsAPI(jr); err != nil {
				return err
			}
		}
		if reads != nil {
			hopts.Reads = reads
		}
		srv, err := httpapi.New(eng.Manager, eng.Store, in, cfg.HTTP, hopts)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.File, err)
		}
		g.Go(func() error { return srv.Run(gctx) })
		parts = append(parts, "http="+srv.Config().Listen)
		if srv.Config().UIEnabled() {
			parts = append(parts, "ui="+console.Prefix)
		}
	}
	for i := range cfg.Serve.Workers {
		name := o.name
		if cfg.Serve.Workers > 1 {
			name = fmt.Sprintf("%s-%d", o.name, i+1)
		}
		wcfg := eng.WorkerConfig(name)
		wcfg.Logger = log.With("component", "worker", "worker_id", name)
		wcfg.AttemptFunc = met.ObserveAttempt
		wcfg.StepFunc = met.ObserveStep
		w, err := eng.NewWorker(wcfg)
		if err != nil {
			return err
		}
		g.Go(func() error { return w.Run(gctx) })
	}
	if cfg.Serve.Workers > 0 {
		parts = append(parts, fmt.Sprintf("workers=%d", cfg.Serve.Workers))
		// The scheduled jobs and the event subscribers run beside the
		// workers, as in pipeline_worker; each job window runs once, and
		// each subscriber is delivered by one process at a time.
		if len(eng.Defs.Jobs) > 0 || len(eng.Defs.Subscribers) > 0 {
			g.Go(func() error { return eng.RunBeside(gctx, o.name) })
		}
		if len(eng.Defs.Jobs) > 0 {
			parts = append(parts, fmt.Sprintf("jobs=%d", len(eng.Defs.Jobs)))
		}
		if len(eng.Defs.Subscribers) > 0 {
			parts = append(parts, fmt.Sprintf("subscribers=%d", len(eng.Defs.Subscribers)))
		}
	}
	if runConsumers {
		consumers, err := selectConsumers(cfg, nil, getenv)
		if err != nil {
			return err
		}
		if eng.Defs.Distiller == nil && needsDistiller(consumers) {
			return fmt.Errorf("%s: distiller_config is not set: consumers need event definitions (or run with --no-consumers)", cfg.File)
		}
		am, err := amqpconsume.NewMetrics(met.Registry())
		if err != nil {
			return err
		}
		opts := consumerOptions(eng, in, am, log, grace)
		for _, cc := range consumers {
			c, err := amqpconsume.New(cc, opts)
			if err != nil {
				return err
			}
			g.Go(func() error { return c.Run(gctx) })
		}
		parts = append(parts, fmt.Sprintf("consumers=%d", len(cfg.Consumers)))
	}
	if reads != nil {
		parts = append(parts, "reads=replica")
	}
	log.Info("serving", "database", winchester.MaskURL(cfg.DatabaseURL), "parts", strings.Join(parts, " "),
		"purge_completed_streams", cfg.PurgeCompletedStreams, "definitions_version", eng.Live.Number())
	err = g.Wait()
	if err != nil && ctx.Err() == nil {
		return err
	}
	if err != nil {
		log.Warn("stopped with an error during shutdown", "error", err)
		return err
	}
	log.Info("stopped")
	return nil
}

// consoleJobs lists the configured jobs for the console, by name.
func consoleJobs(cfg *winchester.Config) []console.Job {
	var out []console.Job
	for _, cj := range winchester.ConfiguredJobs(cfg) { // the built-in jobs included
		out = append(out, console.Job{Name: cj.Name, Schedule: cj.Schedule, Handler: cj.Handler, Disabled: !cj.Enabled})
	}
	return out
}
