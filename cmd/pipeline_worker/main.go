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
)

// DefaultName is the worker's name without -n.
const DefaultName = "pipeline_worker"

// options are the command line beyond the shared flags.
type options struct {
	cli.Flags
	Name   string
	Daemon string
	Once   bool
}

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

	eng, err := winchester.Open(ctx, cfg, winchester.Options{Logger: logger})
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
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return cli.RunDefinitions(gctx, eng, logger) })
		// The pipelines, and the scheduled jobs and event subscribers
		// beside them; all stop when ctx ends.
		g.Go(func() error { return eng.RunWorker(gctx, opts.Name) })
		return g.Wait()
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
