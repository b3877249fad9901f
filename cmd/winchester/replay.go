package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

func init() { subcommands = append(subcommands, newReplayCmd) }

type replayOptions struct {
	flags         cli.Flags
	notifications bool
	output        string
	noDrain       bool
	pacing        string
	against       string
}

// Replay pacings: when worker passes run relative to the input records.
const (
	// pacingDeadlines runs the stream deadlines that fall before each
	// record first, at their own times, as workers running all along
	// would have done (the default).
	pacingDeadlines = "deadlines"
	// pacingRecords runs passes only after each record, at the record's
	// time, as the original's playback did: a stream whose deadline fell
	// between two records is processed at the second one, after it was
	// added.
	pacingRecords = "records"
)

func newReplayCmd() *cobra.Command {
	var o replayOptions
	cmd := &cobra.Command{
		Use:   "replay [flags] INPUT...",
		Short: "Play old events through the triggers and pipelines on a virtual clock",
		Long: `replay plays events (or raw notifications with --notifications) through the
configured triggers and pipelines, deterministically, on a virtual clock.

INPUT files hold one JSON object per line ("-" reads standard input): events
in the project's event JSON encoding, or notifications. For each record,
stream deadlines that fall before the record's timestamp are run first, in
order (the clock jumps just past each one and worker passes run there), as
workers running all along would have done; then the clock moves to the
record's timestamp (it never goes back), the event is added, and worker
passes run at that clock (fire, then expire, new events from pipelines added
at the same clock) until a pass processes nothing. A stream is ready when
its deadline is strictly before the clock. After the input, unless
--no-drain, the remaining deadlines run the same way until no stream is
ready or pending.

Pipelines run for real with the configured handlers. Each processed stream
is written as one JSON line to --output (default standard output), in
processing order; a summary goes to standard error. Without --database-url
the replay runs on a private in-memory store (the configuration's
database.url and WINCHESTER_DATABASE_URL are not used), so it is also the
way to try new trigger definitions against history before deploying them.
With --database-url it replays into that database, and every pending
stream of that database is processed, not only the replay's.

With --against NEW_CONFIG the input is replayed twice, each time on a
private store: through the configuration's definitions and through those
of NEW_CONFIG. Instead of the processed streams, one JSON line is printed
per stream whose outcome differs ("fired", "expired", "error", "open" or
"none" when the other replay has no such stream), a stream being its
trigger, distinguishing values and first event time; a summary goes to
standard error. Use it to judge a change of the definitions on history
before applying it.`,
		Example: `  winchester replay -c etc/winchester.yaml events.jsonl
  winchester replay -c etc/winchester.yaml --notifications notifications.jsonl -o streams.jsonl
  winchester replay -c etc/winchester.yaml --against new/winchester.yaml events.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.flags = cli.FlagsOf(cmd)
			return runReplay(cmd.Context(), &o, args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.notifications, "notifications", false, "inputs are raw notifications: distill them first (needs distiller_config)")
	fs.StringVarP(&o.output, "output", "o", "-", "file receiving one JSON line per processed stream (- = standard output)")
	fs.BoolVar(&o.noDrain, "no-drain", false, "stop after the last input record instead of running the remaining deadlines")
	fs.StringVar(&o.pacing, "pacing", pacingDeadlines, "when passes run: deadlines (before each record, at each deadline) or records (only after each record, as the original's playback)")
	fs.StringVar(&o.against, "against", "", "replay the input through the definitions of this configuration too, and print the streams whose outcome differs (fired, expired, error, open)")
	return cmd
}

// virtualClock is the replay's only clock.
type virtualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) advance(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// replaySummary counts what a replay did.
type replaySummary struct {
	read, stored, duplicates, rejected int
	fired, expired, errored            int
}

// replayRecord is one output line.
type replayRecord struct {
	Action          string                  `json:"action"`
	Trigger         string                  `json:"trigger"`
	Pipeline        *string                 `json:"pipeline"`
	Outcome         string                  `json:"outcome"`
	DistinguishedBy map[string]stream.Value `json:"distinguished_by"`
	FirstEvent      string                  `json:"first_event"`
	LastEvent       string                  `json:"last_event"`
	Events          []string                `json:"events"`
	Clock           string                  `json:"clock"`
	Error           string                  `json:"error,omitempty"`
}

func runReplay(ctx context.Context, o *replayOptions, inputs []string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch o.pacing {
	case "", pacingDeadlines, pacingRecords:
	default:
		return fmt.Errorf("--pacing %q: want %s or %s", o.pacing, pacingDeadlines, pacingRecords)
	}
	prog := cli.NewProgress(stderr)
	defer prog.Done()
	cfg, log, err := o.flags.Setup(os.Getenv, prog.Writer())
	if err != nil {
		return err
	}
	if o.against != "" {
		return runReplayAgainst(ctx, o, cfg, log, inputs, stdin, stdout, stderr, prog)
	}
	out := stdout
	if o.output != "-" && o.output != "" {
		f, err := os.Create(o.output)
		if err != nil {
			return fmt.Errorf("output: %w", err)
		}
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriter(out)
	defer bw.Flush()
	// Only an explicit --database-url is written to; otherwise a private
	// in-memory store.
	r, err := replayOnce(ctx, o, cfg, log, o.flags.DatabaseURL, inputs, stdin, bw, prog, nil)
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	prog.Done()
	s := r.sum
	fmt.Fprintf(stderr, "replay: %d records read, %d events stored, %d duplicates, %d rejected; streams: %d fired, %d expired, %d errored\n",
		s.read, s.stored, s.duplicates, s.rejected, s.fired, s.expired, s.errored)
	return nil
}

// replayOnce replays inputs through cfg's definitions into the database
// at dbURL ("": a private in-memory store), writing one line per
// processed stream to out. When final is not nil it is called with the
// engine before it closes (to read what is left in the store).
func replayOnce(ctx context.Context, o *replayOptions, cfg *winchester.Config, log *slog.Logger, dbURL string,
	inputs []string, stdin io.Reader, out *bufio.Writer, prog *cli.Progress, final func(*winchester.Engine) error,
) (*replayer, error) {
	private := dbURL == ""
	if private {
		dbURL = winchester.SQLiteMemoryURL
	}
	clock := &virtualClock{}
	eng, err := winchester.Open(ctx, cfg, winchester.Options{
		Clock: clock, Logger: log,
		DatabaseURL: dbURL, Migrate: private,
	})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	if o.notifications && eng.Defs.Distiller == nil {
		return nil, errors.New("--notifications needs distiller_config in the configuration")
	}
	wcfg := eng.WorkerConfig("replay")
	wcfg.Clock = clock
	wcfg.Concurrency = 1 // one stream at a time: a deterministic replay
	// No job runs beside the replay's worker: it does the housekeeping.
	wcfg.NoRescue, wcfg.Trim = false, cfg.TrimEvents
	worker, err := eng.NewWorker(wcfg)
	if err != nil {
		return nil, err
	}
	r := &replayer{eng: eng, worker: worker, clock: clock, out: out, log: log, notifications: o.notifications,
		byRecords: o.pacing == pacingRecords, prog: prog}
	for _, in := range inputs {
		if err := r.playFile(ctx, in, stdin); err != nil {
			return nil, err
		}
	}
	if !o.noDrain {
		if err := r.drain(ctx); err != nil {
			return nil, err
		}
	}
	if final != nil {
		if err := final(eng); err != nil {
			return nil, err
		}
	}
	return r, nil
}

type replayer struct {
	eng           *winchester.Engine
	worker        *pipeline.Worker
	clock         *virtualClock
	out           *bufio.Writer
	log           *slog.Logger
	notifications bool
	byRecords     bool // --pacing records
	prog          *cli.Progress
	sum           replaySummary
}

func (r *replayer) playFile(ctx context.Context, name string, stdin io.Reader) error {
	var in io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		defer f.Close()
		in = f
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		data := sc.Bytes()
		if len(trimSpace(data)) == 0 {
			continue
		}
		r.sum.read++
		r.prog.Update("replay: %s line %d, clock %s; %d stored, streams %d fired, %d expired, %d errored",
			name, line, stream.FormatTime(r.clock.Now()), r.sum.stored, r.sum.fired, r.sum.expired, r.sum.errored)
		ev, err := r.decode(data)
		if err != nil {
			r.sum.rejected++
			r.log.Warn("skipped input record", "file", name, "line", line, "error", err)
			continue
		}
		if err := r.play(ctx, ev); err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func (r *replayer) decode(data []byte) (stream.Event, error) {
	if r.notifications {
		ev, _, err := r.eng.Defs.Distiller.Distill(data)
		return ev, err
	}
	ev, dropped, err := stream.DecodeEvent(data)
	for _, d := range dropped {
		r.log.Warn("dropped trait of unsupported type", "message_id", ev.MessageID, "trait", d.Trait, "reason", d.Reason)
	}
	return ev, err
}

// play adds one event at its own time (the clock never goes back) and runs
// worker passes at that clock until one processes nothing.
func (r *replayer) play(ctx context.Context, ev stream.Event) error {
	// Deadlines that fall before this record are processed first, in
	// order, as workers running all along would have: a stream ready to
	// fire at 10:00 does not take in an event of 12:00. With --pacing
	// records they wait for the passes after the record, as in the
	// original's playback.
	if !r.byRecords {
		if err := r.runDeadlines(ctx, ev.Timestamp); err != nil {
			return err
		}
	}
	r.clock.advance(ev.Timestamp)
	res, err := r.eng.Manager.AddEvent(ctx, ev)
	if err != nil {
		return err
	}
	switch res.Outcome {
	case trigger.Stored:
		r.sum.stored++
	case trigger.Duplicate:
		r.sum.duplicates++
	default:
		r.sum.rejected++
	}
	return r.passes(ctx)
}

// compareReadiness orders attempts as the store lists ready streams: fires
// before expiries, then by the deadline that made them ready, then by id.
func compareReadiness(a, b pipeline.Attempt) int {
	deadline := func(x pipeline.Attempt) time.Time {
		if x.Action == db.Fire {
			return x.Stream.FireTimestamp
		}
		return x.Stream.ExpireTimestamp
	}
	if a.Action != b.Action {
		if a.Action == db.Fire {
			return -1
		}
		return 1
	}
	if c := deadline(a).Compare(deadline(b)); c != 0 {
		return c
	}
	return cmp.Compare(a.StreamID, b.StreamID)
}

func (r *replayer) passes(ctx context.Context) error {
	for {
		res, err := r.worker.Pass(ctx, ctx)
		if err != nil {
			return err
		}
		// A pass runs its streams concurrently and lists them as they
		// finish; the output is in the order they became ready instead,
		// so that a replay prints the same lines every time.
		slices.SortStableFunc(res.Attempts, compareReadiness)
		for _, a := range res.Attempts {
			if err := r.write(a); err != nil {
				return err
			}
		}
		if len(res.Attempts) == 0 {
			return nil
		}
	}
}

// drain runs the remaining deadlines: the clock jumps just past the
// earliest pending one, then passes run, until nothing is pending.
func (r *replayer) drain(ctx context.Context) error {
	return r.runDeadlines(ctx, time.Time{})
}

// runDeadlines moves the clock just past each pending deadline before
// until (zero: all of them), in order, and runs worker passes there.
func (r *replayer) runDeadlines(ctx context.Context, until time.Time) error {
	for {
		next, err := r.nextDeadline(ctx)
		if err != nil {
			return err
		}
		if next.IsZero() || (!until.IsZero() && !next.Before(until)) {
			return nil
		}
		if next.Before(r.clock.Now()) {
			next = r.clock.Now() // overdue: ready at the current clock
		}
		r.clock.advance(next.Add(time.Microsecond))
		before := r.sum.fired + r.sum.expired + r.sum.errored
		if err := r.passes(ctx); err != nil {
			return err
		}
		if r.sum.fired+r.sum.expired+r.sum.errored == before {
			return fmt.Errorf("stream deadline %s passed but no stream became ready", stream.FormatTime(next))
		}
	}
}

// nextDeadline returns the earliest time at which a stream becomes ready
// (zero: none pending). An active stream waiting to fire is ready when its
// fire time comes, even if its expiry time is earlier.
func (r *replayer) nextDeadline(ctx context.Context) (time.Time, error) {
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	fire, err := r.eng.Store.ReadyStreams(ctx, db.ReadyParams{Action: db.Fire, Now: far, Limit: 1})
	if err != nil {
		return next, err
	}
	if len(fire) > 0 {
		consider(fire[0].FireTimestamp)
	}
	// Active streams waiting to fire are ready at their fire time (counted
	// above), whatever their expiry: the expire query leaves out every
	// active stream with a fire time. Asked at the earliest fire time F, it
	// returns the first plain expiry, if any before F.
	at := far
	if !next.IsZero() {
		at = next
	}
	expire, err := r.eng.Store.ReadyStreams(ctx, db.ReadyParams{Action: db.Expire, Now: at, Limit: 1})
	if err != nil {
		return next, err
	}
	if len(expire) > 0 {
		consider(expire[0].ExpireTimestamp)
	}
	return next, nil
}

func (r *replayer) write(a pipeline.Attempt) error {
	if a.LostClaim {
		return nil
	}
	rec := replayRecord{
		Action:          a.Action.String(),
		Trigger:         a.Trigger,
		Outcome:         "completed",
		DistinguishedBy: a.Stream.DistinguishedBy,
		FirstEvent:      stream.FormatTime(a.Stream.FirstEvent),
		LastEvent:       stream.FormatTime(a.Stream.LastEvent),
		Events:          []string{},
		Clock:           stream.FormatTime(r.clock.Now()),
	}
	if rec.DistinguishedBy == nil {
		rec.DistinguishedBy = map[string]stream.Value{}
	}
	if a.Pipeline != "" {
		p := a.Pipeline
		rec.Pipeline = &p
	}
	for _, ev := range a.Events {
		rec.Events = append(rec.Events, ev.MessageID)
	}
	switch {
	case !a.OK:
		rec.Outcome = "error"
		if a.Err != nil {
			rec.Error = a.Err.Error()
		}
		r.sum.errored++
	case a.Action == db.Fire:
		r.sum.fired++
	default:
		r.sum.expired++
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	r.out.Write(data)
	return r.out.WriteByte('\n')
}
