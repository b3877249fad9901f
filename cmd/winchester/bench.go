package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	_ "github.com/winchester-go/winchester/db/postgres" // bench ingest measures both drivers
	_ "github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/internal/workload"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

func init() { subcommands = append(subcommands, newBenchCmd) }

// Defaults of the bench flags.
const (
	defaultBenchDefinitions = "etc/event_definitions.yaml"
	defaultBenchTriggers    = "etc/triggers.yaml"
	defaultBenchBatch       = 500
	defaultBenchRetryFor    = 2 * time.Minute
)

type workloadFlags struct {
	instances int
	days      int
	seed      uint64
	start     string
}

func (w *workloadFlags) addTo(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.IntVar(&w.instances, "instances", 100, "number of compute instances")
	fs.IntVar(&w.days, "days", 1, "number of days (one exists notification per instance and day)")
	fs.Uint64Var(&w.seed, "seed", 1, "seed of the generator: the same flags give the same output")
	fs.StringVar(&w.start, "start", workload.DefaultStart, "first day of the period (YYYY-MM-DD, UTC)")
}

func (w *workloadFlags) config() (workload.Config, error) {
	start, err := time.Parse(time.DateOnly, w.start)
	if err != nil {
		return workload.Config{}, fmt.Errorf("--start %q: want YYYY-MM-DD", w.start)
	}
	cfg := workload.Config{Instances: w.instances, Days: w.days, Seed: w.seed, Start: start}
	return cfg, cfg.Validate()
}

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate workloads and measure ingest",
		Long: `bench generates deterministic OpenStack compute workloads (generate) and
measures how fast a store takes them through the trigger manager (ingest).
The benchmarks behind docs/PERFORMANCE.md are Go benchmarks
(go test -bench); these commands are for trying a workload on a real
configuration and database.

With -c, the event definitions (distiller_config) and trigger definitions
(trigger_definitions) of that configuration are used unless --definitions
or --triggers name others. The configuration's database is never written
to: bench ingest writes only to a database named by --database-url.`,
	}
	cmd.AddCommand(newBenchGenerateCmd(), newBenchIngestCmd())
	return cmd
}

type benchGenerateOptions struct {
	workload    workloadFlags
	events      bool
	definitions string
	output      string
}

func newBenchGenerateCmd() *cobra.Command {
	var o benchGenerateOptions
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a deterministic compute workload as notifications or events",
		Long: `generate writes nova compute notifications for --instances instances over
--days days (create, update, resize, rebuild, delete, and one
compute.instance.exists per instance and day with its audit period), in
timestamp order, one JSON object per line. With --events the
notifications are distilled with --definitions and written in the event
JSON encoding instead. The same flags always give the same bytes.

The number of lines written goes to standard error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.events {
				if err := benchDefinitions(cmd, &o.definitions, nil); err != nil {
					return err
				}
			}
			return runBenchGenerate(&o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.workload.addTo(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&o.events, "events", false, "write distilled events instead of notifications")
	fs.StringVar(&o.definitions, "definitions", defaultBenchDefinitions, "event definitions used with --events")
	fs.StringVarP(&o.output, "output", "o", "-", "output file (- for standard output)")
	return cmd
}

func runBenchGenerate(o *benchGenerateOptions, stdout, stderr io.Writer) (err error) {
	cfg, err := o.workload.config()
	if err != nil {
		return err
	}
	var d *distiller.Distiller
	if o.events {
		if d, err = distiller.Load(o.definitions, distiller.Config{}); err != nil {
			return err
		}
	}
	w := stdout
	if o.output != "-" && o.output != "" {
		f, err := os.Create(o.output)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		w = f
	}
	var n int
	if o.events {
		n, err = workload.WriteEvents(w, cfg, d)
	} else {
		n, err = workload.WriteNotifications(w, cfg)
	}
	if err != nil {
		return err
	}
	kind := "notifications"
	if o.events {
		kind = "events"
	}
	fmt.Fprintf(stderr, "%s: %d\n", kind, n)
	return nil
}

type benchIngestOptions struct {
	workload      workloadFlags
	database      string
	migrate       bool
	definitions   string
	triggers      string
	input         string
	notifications bool
	batch         int
	retryFor      time.Duration
	output        string
}

func newBenchIngestCmd() *cobra.Command {
	var o benchIngestOptions
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Measure how fast the trigger manager stores a workload",
		Long: `ingest puts a workload into a store through the trigger manager, in
batches of --batch events (one transaction each; --batch 1 measures
single-event ingest), and prints the rate. The workload is generated
(--instances, --days, --seed) or read from --input (JSON lines as written
by bench generate). Events are ingested as distilled events, or with
--notifications as notifications distilled by the manager.

The manager's clock follows the events: it is set to the timestamp of the
first event of each batch, as if each batch were taken from the queue as
soon as its first event arrived. (A generated workload is sparse: a batch
of 500 events of 2,000 instances spans hours, and a clock at its end would
find most streams of the sample trigger, which expire an hour after their
last event, expired within the batch.)

Without --database-url a fresh SQLite database in a temporary directory is
used and removed afterwards. Use a scratch database: ingest writes to it.

A batch that fails because the database is unavailable (a restart, a lost
connection) or busy is retried with backoff for up to --retry-for; a batch
whose commit went through before the connection was lost then counts its
events as duplicates. On a terminal, progress is shown on standard error;
the summary goes to standard output (-o json: one JSON object).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := benchDefinitions(cmd, &o.definitions, &o.triggers); err != nil {
				return err
			}
			o.database = cli.FlagsOf(cmd).DatabaseURL
			return runBenchIngest(cmd.Context(), &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.workload.addTo(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&o.migrate, "migrate", true, "bring the schema up to date first")
	fs.StringVar(&o.definitions, "definitions", defaultBenchDefinitions, "event definitions (distilling the generated notifications)")
	fs.StringVar(&o.triggers, "triggers", defaultBenchTriggers, "trigger definitions")
	fs.StringVar(&o.input, "input", "", "read the workload from this file of JSON lines (events, or notifications with --notifications) instead of generating it")
	fs.BoolVar(&o.notifications, "notifications", false, "ingest notifications (AddNotifications) instead of distilled events")
	fs.IntVar(&o.batch, "batch", defaultBenchBatch, "events per transaction")
	fs.DurationVar(&o.retryFor, "retry-for", defaultBenchRetryFor, "retry a batch that fails because the database is unavailable or busy for up to this long")
	fs.StringVarP(&o.output, "output", "o", "text", "summary format: text or json")
	return cmd
}

// benchDefinitions takes the definition files from the configuration
// given with -c, for the flags (--definitions, --triggers; nil: not
// taken) the command line does not set.
func benchDefinitions(cmd *cobra.Command, definitions, triggers *string) error {
	if !cli.ConfigChanged(cmd) {
		return nil
	}
	cfg, err := winchester.Read(cli.FlagsOf(cmd).ConfigFile)
	if err != nil {
		return err
	}
	take := func(flag, key, name string, dst *string) error {
		if dst == nil || cmd.Flags().Changed(flag) {
			return nil
		}
		if name == "" {
			return fmt.Errorf("%s: %s is not set (or use --%s)", cfg.Pos(key), key, flag)
		}
		p, err := cfg.ResolvePath(name)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", cfg.Pos(key), key, err)
		}
		*dst = p
		return nil
	}
	if err := take("definitions", "distiller_config", cfg.DistillerConfig, definitions); err != nil {
		return err
	}
	return take("triggers", "trigger_definitions", cfg.TriggerDefinitions, triggers)
}

// benchClock is the manager's clock during ingest: it follows the events.
type benchClock struct{ now time.Time }

func (c *benchClock) Now() time.Time { return c.now }

// ingestItem is one unit of the workload: a notification body or an event.
type ingestItem struct {
	body []byte
	ev   stream.Event
}

func runBenchIngest(ctx context.Context, o *benchIngestOptions, stdout, stderr io.Writer) error {
	if o.batch < 1 {
		return fmt.Errorf("--batch %d: want at least 1", o.batch)
	}
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output %q: want text or json", o.output)
	}
	d, err := distiller.Load(o.definitions, distiller.Config{})
	if err != nil {
		return err
	}
	defs, _, err := trigger.Load(o.triggers)
	if err != nil {
		return err
	}
	items, err := loadIngestItems(o, d)
	if err != nil {
		return err
	}
	dbURL := o.database
	if dbURL == "" {
		dir, err := os.MkdirTemp("", "winchester-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dbURL = "sqlite://" + filepath.Join(dir, "bench.db")
	} else {
		// The original's SQLAlchemy forms: sqlite:///relative.db, sqlite:////abs.db.
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if dbURL, err = winchester.NormalizeDatabaseURL(dbURL, wd); err != nil {
			return err
		}
	}
	var store db.Store
	if _, err := retryBlips(ctx, o.retryFor, func() error {
		var err error
		store, err = db.Open(ctx, dbURL, db.Options{Migrate: o.migrate})
		return err
	}, func(err error, wait time.Duration) {
		fmt.Fprintf(stderr, "bench ingest: open database: %v; retrying in %s\n", err, wait.Round(time.Millisecond))
	}); err != nil {
		return err
	}
	defer store.Close()
	clock := &benchClock{}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{Clock: clock, DistillFunc: d.Event})
	if err != nil {
		return err
	}
	var stored, dups, rejected, matched int
	count := func(res []trigger.Result) {
		for _, r := range res {
			switch r.Outcome {
			case trigger.Stored:
				stored++
			case trigger.Duplicate:
				dups++
			case trigger.Rejected:
				rejected++
			}
			matched += r.Matched
		}
	}
	prog := cli.NewProgress(stderr)
	retries := 0
	begin := time.Now()
	for start := 0; start < len(items); start += o.batch {
		batch := items[start:min(start+o.batch, len(items))]
		var res []trigger.Result
		ingest := func() error {
			var err error
			if o.notifications {
				bodies := make([][]byte, len(batch))
				for i, it := range batch {
					bodies[i] = it.body
				}
				clock.now = batch[0].ev.Timestamp
				res, err = mgr.AddNotifications(ctx, bodies)
			} else {
				events := make([]stream.Event, len(batch))
				for i, it := range batch {
					events[i] = it.ev
				}
				clock.now = events[0].Timestamp
				res, err = mgr.AddEvents(ctx, events)
			}
			return err
		}
		n, err := retryBlips(ctx, o.retryFor, ingest, func(err error, wait time.Duration) {
			prog.Done()
			fmt.Fprintf(stderr, "bench ingest: batch at item %d: %v; retrying in %s\n", start, err, wait.Round(time.Millisecond))
		})
		retries += n
		if err != nil {
			prog.Done()
			return fmt.Errorf("batch at item %d: %w", start, err)
		}
		count(res)
		done := start + len(batch)
		prog.Update("bench ingest: %d/%d (%d%%), %s", done, len(items), 100*done/len(items), cli.Rate(done, time.Since(begin)))
	}
	prog.Done()
	elapsed := time.Since(begin)
	kind := "events"
	if o.notifications {
		kind = "notifications"
	}
	if o.output == "json" {
		return json.NewEncoder(stdout).Encode(benchIngestJSON{
			Database: winchester.MaskURL(dbURL), Kind: kind, Items: len(items), Batch: o.batch,
			Stored: stored, Duplicates: dups, Rejected: rejected, StreamMatches: matched, Retries: retries,
			ElapsedSeconds: elapsed.Seconds(), Rate: float64(len(items)) / elapsed.Seconds(),
		})
	}
	fmt.Fprintf(stdout, "database:   %s\n", winchester.MaskURL(dbURL))
	fmt.Fprintf(stdout, "%-11s %d in batches of %d\n", kind+":", len(items), o.batch)
	fmt.Fprintf(stdout, "stored:     %d (duplicates %d, rejected %d, stream matches %d)\n", stored, dups, rejected, matched)
	if retries > 0 {
		fmt.Fprintf(stdout, "retries:    %d (batches retried after a database blip; a batch whose commit was lost counts its events as duplicates)\n", retries)
	}
	fmt.Fprintf(stdout, "elapsed:    %s\n", elapsed.Round(time.Millisecond))
	fmt.Fprintf(stdout, "rate:       %.0f %s/s\n", float64(len(items))/elapsed.Seconds(), kind)
	return nil
}

// benchIngestJSON is the summary of bench ingest -o json.
type benchIngestJSON struct {
	Database       string  `json:"database"`
	Kind           string  `json:"kind"` // events or notifications
	Items          int     `json:"items"`
	Batch          int     `json:"batch"`
	Stored         int     `json:"stored"`
	Duplicates     int     `json:"duplicates"`
	Rejected       int     `json:"rejected"`
	StreamMatches  int     `json:"stream_matches"`
	Retries        int     `json:"retries"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	Rate           float64 `json:"rate"` // items per second
}

// retryBlips runs fn until it succeeds, fails with an error that is not a
// database blip (db.ErrUnavailable, db.ErrAborted), or blips for longer
// than retryFor, backing off from 100ms to 5s. notify is called before each
// wait. It returns the number of retries.
func retryBlips(ctx context.Context, retryFor time.Duration, fn func() error, notify func(err error, wait time.Duration)) (int, error) {
	var first time.Time
	wait := 100 * time.Millisecond
	for retries := 0; ; retries++ {
		err := fn()
		if err == nil || !(errors.Is(err, db.ErrUnavailable) || errors.Is(err, db.ErrAborted)) {
			return retries, err
		}
		if first.IsZero() {
			first = time.Now()
		}
		if time.Since(first) > retryFor {
			return retries, fmt.Errorf("still failing after %s of retries: %w", retryFor, err)
		}
		notify(err, wait)
		select {
		case <-ctx.Done():
			return retries, errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// loadIngestItems generates the workload or reads it from o.input. Each
// item has its event (the notification distilled, for the clock) and, for
// notifications, its body.
func loadIngestItems(o *benchIngestOptions, d *distiller.Distiller) ([]ingestItem, error) {
	var items []ingestItem
	add := func(line []byte, where string) error {
		if o.notifications {
			ev, _, err := d.Distill(line)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			items = append(items, ingestItem{body: line, ev: ev})
			return nil
		}
		ev, _, err := stream.DecodeEvent(line)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		items = append(items, ingestItem{ev: ev})
		return nil
	}
	if o.input == "" {
		cfg, err := o.workload.config()
		if err != nil {
			return nil, err
		}
		err = workload.Generate(cfg, func(n workload.Notification) error {
			if o.notifications {
				return add(n.Body, "notification "+n.MessageID)
			}
			ev, _, err := d.Distill(n.Body)
			if err != nil {
				return fmt.Errorf("notification %s: %w", n.MessageID, err)
			}
			items = append(items, ingestItem{ev: ev})
			return nil
		})
		return items, err
	}
	f, err := os.Open(o.input)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		b := append([]byte(nil), sc.Bytes()...)
		if err := add(b, fmt.Sprintf("%s:%d", o.input, line)); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", o.input, err)
	}
	if len(items) == 0 {
		return nil, errors.New(o.input + ": no events")
	}
	return items, nil
}
