package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// Outcomes of a stream in a replay, as replay --against compares them.
const (
	outcomeFired   = "fired"
	outcomeExpired = "expired"
	outcomeError   = "error"
	outcomeOpen    = "open" // not processed when the replay ended (--no-drain)
	outcomeNone    = "none" // the replay has no such stream
)

// againstStream is one stream of a replay: what identifies it across two
// replays (its trigger, distinguishing values and first event time) and
// its outcome.
type againstStream struct {
	Trigger         string
	DistinguishedBy map[string]stream.Value
	FirstEvent      string
	LastEvent       string
	Outcome         string
}

func (s againstStream) key() string {
	dist, _ := json.Marshal(s.DistinguishedBy)
	return s.Trigger + "\x00" + string(dist) + "\x00" + s.FirstEvent
}

// againstLine is one output line of replay --against: a stream whose
// outcome differs.
type againstLine struct {
	Trigger         string                  `json:"trigger"`
	DistinguishedBy map[string]stream.Value `json:"distinguished_by"`
	FirstEvent      string                  `json:"first_event"`
	Current         string                  `json:"current"`
	New             string                  `json:"new"`
	// CurrentLastEvent and NewLastEvent are the stream's last event time
	// in each replay ("" when it has no such stream).
	CurrentLastEvent string `json:"current_last_event"`
	NewLastEvent     string `json:"new_last_event"`
}

// runReplayAgainst replays the input through cfg's definitions and
// through o.against's, each on a private store, and prints the streams
// whose outcome differs.
func runReplayAgainst(ctx context.Context, o *replayOptions, cfg *winchester.Config, log *slog.Logger,
	inputs []string, stdin io.Reader, stdout, stderr io.Writer, prog *cli.Progress,
) error {
	if o.flags.DatabaseURL != "" {
		return errors.New("--against replays on private stores: --database-url cannot be used with it")
	}
	if o.output != "-" && o.output != "" {
		return errors.New("--against prints the differences on standard output: --output cannot be used with it")
	}
	newCfg, err := winchester.Load(o.against)
	if err != nil {
		return fmt.Errorf("--against: %w", err)
	}
	// Standard input is read twice: keep it.
	var in []byte
	if slices.Contains(inputs, "-") {
		if in, err = io.ReadAll(stdin); err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
	}
	run := func(c *winchester.Config) (map[string]againstStream, error) {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		var open []againstStream
		_, err := replayOnce(ctx, o, c, log, "", inputs, bytes.NewReader(in), bw, prog, func(eng *winchester.Engine) error {
			var err error
			open, err = openStreams(ctx, eng)
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := bw.Flush(); err != nil {
			return nil, err
		}
		return replayOutcomes(buf.Bytes(), open)
	}
	cur, err := run(cfg)
	if err != nil {
		return err
	}
	next, err := run(newCfg)
	if err != nil {
		return fmt.Errorf("--against %s: %w", o.against, err)
	}
	prog.Done()
	lines := diffOutcomes(cur, next)
	enc := json.NewEncoder(stdout)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return fmt.Errorf("output: %w", err)
		}
	}
	fmt.Fprintf(stderr, "replay --against: %d streams in the current replay, %d in the new one; %d differ (current %s, new %s)\n",
		len(cur), len(next), len(lines), countOutcomes(cur), countOutcomes(next))
	return nil
}

// openStreams returns the streams a replay left unprocessed.
func openStreams(ctx context.Context, eng *winchester.Engine) ([]againstStream, error) {
	var out []againstStream
	for _, st := range []stream.State{stream.StateActive, stream.StateRetryFire, stream.StateRetryExpire} {
		found, err := eng.Store.FindStreams(ctx, db.FindStreamsParams{State: st})
		if err != nil {
			return nil, fmt.Errorf("streams left open: %w", err)
		}
		for _, f := range found {
			out = append(out, againstStream{
				Trigger: f.Stream.Name, DistinguishedBy: f.Stream.DistinguishedBy,
				FirstEvent: stream.FormatTime(f.Stream.FirstEvent), LastEvent: stream.FormatTime(f.Stream.LastEvent),
				Outcome: outcomeOpen,
			})
		}
	}
	return out, nil
}

// replayOutcomes reads a replay's output lines (the last line of a stream
// is its outcome) and adds the streams left open.
func replayOutcomes(out []byte, open []againstStream) (map[string]againstStream, error) {
	m := map[string]againstStream{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var rec replayRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("read replay output: %w", err)
		}
		s := againstStream{Trigger: rec.Trigger, DistinguishedBy: rec.DistinguishedBy, FirstEvent: rec.FirstEvent,
			LastEvent: rec.LastEvent, Outcome: outcomeOf(rec)}
		m[s.key()] = s
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read replay output: %w", err)
	}
	for _, s := range open {
		m[s.key()] = s
	}
	return m, nil
}

func outcomeOf(rec replayRecord) string {
	switch {
	case rec.Outcome != "completed":
		return outcomeError
	case rec.Action == db.Fire.String():
		return outcomeFired
	default:
		return outcomeExpired
	}
}

// diffOutcomes returns the streams whose outcome differs between two
// replays, ordered by first event time, trigger and values.
func diffOutcomes(cur, next map[string]againstStream) []againstLine {
	keys := map[string]bool{}
	for k := range cur {
		keys[k] = true
	}
	for k := range next {
		keys[k] = true
	}
	var out []againstLine
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		c, inCur := cur[k]
		n, inNext := next[k]
		l := againstLine{Current: outcomeNone, New: outcomeNone}
		for _, s := range []struct {
			s       againstStream
			ok      bool
			outcome *string
			last    *string
		}{{c, inCur, &l.Current, &l.CurrentLastEvent}, {n, inNext, &l.New, &l.NewLastEvent}} {
			if s.ok {
				l.Trigger, l.DistinguishedBy, l.FirstEvent = s.s.Trigger, s.s.DistinguishedBy, s.s.FirstEvent
				*s.outcome, *s.last = s.s.Outcome, s.s.LastEvent
			}
		}
		if l.Current != l.New {
			out = append(out, l)
		}
	}
	slices.SortStableFunc(out, func(a, b againstLine) int {
		return cmp.Or(cmp.Compare(a.FirstEvent, b.FirstEvent), cmp.Compare(a.Trigger, b.Trigger))
	})
	return out
}

// countOutcomes renders the number of streams per outcome.
func countOutcomes(m map[string]againstStream) string {
	n := map[string]int{}
	for _, s := range m {
		n[s.Outcome]++
	}
	return fmt.Sprintf("%d fired, %d expired, %d error, %d open", n[outcomeFired], n[outcomeExpired], n[outcomeError], n[outcomeOpen])
}
