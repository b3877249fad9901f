package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/amqpconsume"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/ingest"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

func init() {
	subcommands = append(subcommands, newConsumeCmd)
}

type consumeOptions struct {
	flags     cli.Flags
	consumers []string
	metrics   string
}

func newConsumeCmd() *cobra.Command {
	var o consumeOptions
	cmd := &cobra.Command{
		Use:   "consume -c FILE",
		Short: "Consume notifications from RabbitMQ into the store",
		Long: `consume runs the RabbitMQ consumers of winchester.yaml (the consumers: list)
without the HTTP server or the pipeline workers: each declares its exchange,
queue and bindings, stores the notifications it receives in batches and
acknowledges them once stored. Notifications no event definition matches
are dropped as the distiller drops them (acknowledged, counted as ignored);
other messages that cannot become events go to the consumer's dead-letter
exchange with the reason in the x-winchester-reason header. SIGINT or SIGTERM stops taking messages, stores and acknowledges
those already received (within shutdown_grace) and exits 0.

See docs/AMQP.md for the configuration keys and the guarantees.`,
		Example: `  winchester consume -c /etc/winchester/winchester.yaml
  winchester consume -c winchester.yaml --consumer nova --metrics-listen :9102`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.flags = cli.FlagsOf(cmd)
			return runConsume(cmd.Context(), &o, os.Getenv, cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&o.consumers, "consumer", nil, "run only the consumers of these names (repeat or separate with commas; default: all)")
	fs.StringVar(&o.metrics, "metrics-listen", "", "serve Prometheus metrics on /metrics, and /livez and /readyz, at this address (e.g. :9102); default: none")
	return cmd
}

func runConsume(ctx context.Context, o *consumeOptions, getenv func(string) string, stderr io.Writer) error {
	cfg, log, err := o.flags.Setup(getenv, stderr)
	if err != nil {
		return err
	}
	consumers, err := selectConsumers(cfg, o.consumers, getenv)
	if err != nil {
		return err
	}
	met := metrics.New(metrics.Config{Version: versionString()})
	amqpMetrics, err := amqpconsume.NewMetrics(met.Registry())
	if err != nil {
		return err
	}
	eng, err := winchester.Open(ctx, cfg, winchester.Options{Logger: log})
	if err != nil {
		return err
	}
	defer eng.Close()
	if eng.Defs.Distiller == nil && needsDistiller(consumers) {
		return fmt.Errorf("%s: distiller_config is not set: consumers need event definitions to turn notifications into events", cfg.File)
	}
	if err := eng.StartDefinitions(ctx); err != nil {
		return err
	}
	if err := met.Registry().Register(metrics.NewDefinitionsCollector(eng.Live.Number)); err != nil {
		return fmt.Errorf("register definitions metrics: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cli.RunDefinitions(gctx, eng, log) })
	if o.metrics != "" {
		ms, err := cli.ListenMetrics(o.metrics, met, cli.PingStore(eng), log)
		if err != nil {
			return err
		}
		g.Go(func() error { return ms.Run(gctx) })
	}
	in := ingest.New(eng.Manager, ingest.Config{Logger: log.With("component", "ingest"), Metrics: met})
	opts := consumerOptions(eng, in, amqpMetrics, log, cfg.ShutdownGrace.Std())
	g.Go(func() error { return amqpconsume.RunAll(gctx, consumers, opts) })
	return g.Wait()
}

// consumerOptions returns the collaborators of the engine's consumers:
// notifications go through the group-commit ingest path, the store
// answers pings.
func consumerOptions(eng *winchester.Engine, in *ingest.Ingester, metrics *amqpconsume.Metrics, log *slog.Logger, grace time.Duration) amqpconsume.Options {
	return amqpconsume.Options{
		Ingest: func(ctx context.Context, bodies [][]byte) ([]trigger.Result, error) {
			return in.AddNotifications(ctx, ingest.SourceAMQP, bodies)
		},
		IngestEvents: func(ctx context.Context, events []stream.Event) ([]trigger.Result, error) {
			return in.AddEvents(ctx, ingest.SourceAMQP, events)
		},
		Ping: func(ctx context.Context) error {
			return eng.Store.InTx(ctx, func(context.Context, db.Ops) error { return nil })
		},
		Logger:        log.With("component", "amqp"),
		Metrics:       metrics,
		ShutdownGrace: grace,
	}
}

// selectConsumers returns the configured consumers named by names (all
// when empty), with the environment references of their URLs expanded.
func selectConsumers(cfg *winchester.Config, names []string, getenv func(string) string) ([]amqpconsume.Config, error) {
	if len(cfg.Consumers) == 0 {
		return nil, fmt.Errorf("%s: no consumers configured (add a consumers: list; see docs/AMQP.md)", cfg.File)
	}
	var known []string
	for _, c := range cfg.Consumers {
		known = append(known, c.Name)
	}
	for _, n := range names {
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("--consumer %s: no such consumer in %s (known: %s)", n, cfg.File, strings.Join(known, ", "))
		}
	}
	var out []amqpconsume.Config
	var errs []error
	for _, c := range cfg.Consumers {
		if len(names) > 0 && !slices.Contains(names, c.Name) {
			continue
		}
		if err := c.ExpandEnv(getenv); err != nil {
			errs = append(errs, err)
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// needsDistiller reports whether a consumer of the list takes
// notifications (rather than flat events).
func needsDistiller(consumers []amqpconsume.Config) bool {
	for _, c := range consumers {
		if c.Format != amqpconsume.FormatEvents {
			return true
		}
	}
	return false
}
