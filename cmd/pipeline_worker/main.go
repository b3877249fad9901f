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

	"github.com/spf13/cobra"

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
// opts.Once) and returns nil on a clean shutdown.
type runFunc func(ctx context.Context, cfg *cli.Config, opts options, logger *slog.Logger) error

// errNotBuilt is returned by run until the worker loop is wired in.
var errNotBuilt = errors.New("the worker loop is not built yet: configuration is valid, nothing was run")

// run is the worker. It is replaced when the worker loop lands: open the
// store (db.Open(ctx, cfg.DatabaseURL)), load the files the config names
// (cfg.ResolvePath), take soft and hard contexts from
// cli.Shutdown(ctx, cfg.ShutdownGrace.Std(), logger), and run until soft is
// cancelled, cancelling in-flight pipelines when hard is.
func run(ctx context.Context, cfg *cli.Config, opts options, logger *slog.Logger) error {
	return errNotBuilt
}

func newRootCmd(getenv func(string) string, stderr io.Writer, runWorker runFunc) *cobra.Command {
	var opts options
	cmd := &cobra.Command{
		Use:   "pipeline_worker",
		Short: "Fire and expire Winchester streams by running their pipelines",
		Long: `pipeline_worker loads the configuration, opens the store and runs the
pipelines of streams that are ready to fire or expire, until SIGINT or
SIGTERM. On the first signal it stops claiming streams and lets running
pipelines finish within shutdown_grace; a second signal cancels them.

It always runs in the foreground: -d/--daemon is accepted for compatibility
and ignored; let the service manager run it in the background.`,
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
	fs.BoolVar(&opts.Once, "once", false, "run one fire and expire pass, then exit")
	return cmd
}

func main() {
	cmd := newRootCmd(os.Getenv, os.Stderr, run)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline_worker:", err)
		os.Exit(1)
	}
}
