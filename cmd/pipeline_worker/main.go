// Command pipeline_worker is the Winchester daemon: it loads
// winchester.yaml, opens the store and runs pipeline workers that fire and
// expire ready streams until SIGINT or SIGTERM.
//
// It runs in the foreground; -d/--daemon is accepted for compatibility with
// the original's command line and changes nothing: the service manager
// (systemd, a container runtime) daemonizes and restarts it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/metrics"
)

// DefaultName is the worker's name without -n.
const DefaultName = "pipeline_worker"

// options are the command line beyond the shared flags.
type options struct {
	cli.Flags
	Name   string
	Daemon string
	Once   bool
	// MetricsListen is the address of /metrics, /livez and /readyz
	// (empty: none).
	MetricsListen string
}

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module build information.
var version = ""

// runFunc runs the worker until ctx is cancelled (or one pass with
// opts.Once) and returns nil on a clean shutdown. Tests replace it.
type runFunc func(ctx context.Context, cfg *winchester.Config, opts options, logger *slog.Logger) error

// run opens the engine the configuration describes (definitions, store,
// trigger manager) and runs one pipeline worker until ctx is cancelled or
// SIGINT/SIGTERM arrives; with opts.Once it runs a single pass. On the first
// signal the worker stops claiming streams and lets a running pipeline
// finish within shutdown_grace; a second signal ends the process at once.
func run(ctx context.Context, cfg *winchester.Config, opts options, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default: a second signal terminates
	}()

	var met *metrics.Metrics
	eopts := winchester.Options{Logger: logger}
	if opts.MetricsListen != "" {
		met = metrics.New(metrics.Config{Version: cli.VersionString(version)})
		eopts.JobRunFunc = met.ObserveJobRun
	}
	eng, err := winchester.Open(ctx, cfg, eopts)
	if err != nil {
		return err
	}
	defer func() {
		if err := eng.Close(); err != nil {
			logger.Warn("close engine", "error", err)
		}
	}()
	logger.Info("store open", "database", winchester.MaskURL(cfg.DatabaseURL), "once", opts.Once, "jobs", len(eng.Defs.Jobs),
		"subscribers", len(eng.Defs.Subscribers))
	if err := eng.StartDefinitions(ctx); err != nil {
		return err
	}
	if !opts.Once {
		return runDaemon(ctx, eng, opts, met, logger)
	}
	wcfg := eng.WorkerConfig(opts.Name)
	// One pass, alone: it does the housekeeping itself, as the job runner
	// beside it may find no window of the built-in jobs due yet.
	wcfg.NoRescue, wcfg.Trim = false, cfg.TrimEvents
	w, err := eng.NewWorker(wcfg)
	if err != nil {
		return err
	}
	res, err := w.Pass(ctx, ctx)
	if err != nil {
		return err
	}
	logger.Info("pass done", "loaded_fire", res.LoadedFire, "loaded_expire", res.LoadedExpire,
		"fired", res.Stats.Fired, "expired", res.Stats.Expired, "errors", res.Stats.Errors)
	if res.Stats.Errors > 0 {
		return fmt.Errorf("the pass had %d stream error(s): see the log, and winchester streams list --state error", res.Stats.Errors)
	}
	if len(eng.Defs.Jobs) > 0 {
		jr, err := eng.NewJobRunner(opts.Name)
		if err != nil {
			return err
		}
		jres, err := jr.Pass(ctx)
		if err != nil {
			return err
		}
		logger.Info("job pass done", "completed", jres.Completed, "failed", jres.Failed, "gave_up", jres.GaveUp, "skipped", jres.Skipped)
	}
	return nil
}

// runDaemon runs the worker, and beside it the scheduled jobs, the event
// subscribers and, with met, the metrics server, until ctx is cancelled.
// The metrics server answers until the worker has stopped; /readyz fails
// from the moment ctx ends.
func runDaemon(ctx context.Context, eng *winchester.Engine, opts options, met *metrics.Metrics, logger *slog.Logger) error {
	wcfg := eng.WorkerConfig(opts.Name)
	var ms *cli.MetricsServer
	if met != nil {
		if err := cli.RegisterEngineCollectors(met, eng); err != nil {
			return err
		}
		var err error
		if ms, err = cli.ListenMetrics(opts.MetricsListen, met, cli.PingStore(eng), logger); err != nil {
			return err
		}
		wcfg.AttemptFunc, wcfg.StepFunc = met.ObserveAttempt, met.ObserveStep
	}
	w, err := eng.NewWorker(wcfg)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cli.RunDefinitions(gctx, eng, logger) })
	// The pipelines, and the scheduled jobs and event subscribers beside
	// them, as Engine.RunWorker runs them; all stop when ctx ends.
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return eng.RunBeside(gctx, opts.Name) })
	if ms == nil {
		return g.Wait()
	}
	defer context.AfterFunc(ctx, ms.Drain)()
	mctx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMetrics()
	merr := make(chan error, 1)
	go func() { merr <- ms.Run(mctx) }()
	err = g.Wait()
	stopMetrics()
	return errors.Join(err, <-merr)
}

func newRootCmd(getenv func(string) string, stderr io.Writer, runWorker runFunc) *cobra.Command {
	var opts options
	cmd := &cobra.Command{
		Use:   "pipeline_worker",
		Short: "Fire and expire Winchester streams by running their pipelines",
		Long: `pipeline_worker loads the configuration, opens the store and runs the
pipelines of streams that are ready to fire or expire, until SIGINT or
SIGTERM. On the first signal it stops claiming streams and lets running
pipelines finish within shutdown_grace; a second signal ends it at once.

It always runs in the foreground: -d/--daemon (with or without a value) is
accepted for compatibility and ignored; let the service manager run it in
the background.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := opts.Setup(getenv, stderr)
			if err != nil {
				return err
			}
			if err := cfg.ValidateWorker(); err != nil {
				return err
			}
			if opts.Once && opts.MetricsListen != "" {
				return errors.New("--metrics-listen serves a running worker: it has nothing to serve with --once")
			}
			logger = logger.With("worker", opts.Name)
			if opts.Daemon != "" {
				logger.Debug("--daemon ignored: running in the foreground")
			}
			return runWorker(cmd.Context(), cfg, opts, logger)
		},
	}
	opts.AddTo(cmd)
	fs := cmd.Flags()
	fs.StringVarP(&opts.Name, "name", "n", DefaultName, "worker name, shown in logs")
	fs.StringVarP(&opts.Daemon, "daemon", "d", "", "accepted for compatibility; the worker always runs in the foreground")
	fs.Lookup("daemon").NoOptDefVal = "true"
	fs.StringVar(&opts.MetricsListen, cli.FlagMetricsListen, "", "serve Prometheus metrics on /metrics, and /livez and /readyz, at this address (e.g. :9103); default: none")
	fs.BoolVar(&opts.Once, "once", false, "run one fire and expire pass, then exit (status 1 when a stream's pipeline failed)")
	return cmd
}

// daemonArgs rewrites the original's "-d VALUE" and "--daemon VALUE" to
// "--daemon=VALUE", so that old service scripts keep working although -d
// is now also accepted alone.
func daemonArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "-d" || a == "--daemon") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out = append(out, "--daemon="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

func main() {
	cmd := newRootCmd(os.Getenv, os.Stderr, run)
	cmd.SetArgs(daemonArgs(os.Args[1:]))
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline_worker:", err)
		os.Exit(1)
	}
}
