package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

func init() {
	subcommands = append(subcommands, newStreamsCmd, newEventsCmd)
}

// storeFlags are the flags of the commands that only open the store.
type storeFlags struct {
	outputFlag
	wide bool // listings: do not cut long cells
}

func (f *storeFlags) addWideTo(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.wide, "wide", false, "do not cut long cells of the text table (-o json prints values whole)")
}

// open opens the database, for the commands that write (streams reset).
func (f *storeFlags) open(cmd *cobra.Command) (db.Store, error) {
	_, store, err := f.openStore(cmd, false)
	return store, err
}

// openReads opens the store the read-only commands query: the read
// replica of database.read_url (or --read-url) when there is one, without
// connecting to the primary; the database otherwise.
func (f *storeFlags) openReads(cmd *cobra.Command) (db.Store, error) {
	_, store, err := f.openStore(cmd, true)
	return store, err
}

// printCount prints the result of a --count query.
func (f *storeFlags) printCount(out io.Writer, n int64, err error) error {
	if err != nil {
		return err
	}
	if f.output == "json" {
		return writeJSONLines(out, []any{map[string]int64{"count": n}})
	}
	_, err = fmt.Fprintln(out, n)
	return err
}

// listing is what printListing needs of a paged listing (streams,
// events).
type listing[T any] struct {
	count func(ctx context.Context) (int64, error) // the number of matches (--count)
	find  func(ctx context.Context) ([]T, error)   // the page of matches
	mark  func(r T) string                         // the paging mark of a row
	json  func(r T) any                            // a row as -o json prints it
	// header and line are the text table: line writes a row, cutting its
	// cells at narrow and wide runes (0: whole, with --wide).
	header string
	line   func(w io.Writer, r T, narrow, wide int)
}

// printListing prints the page of matches of l (or only their number with
// count), tells on stderr when nothing matched (and how the --trait values
// were read) and how to page on when the page was cut at limit.
func printListing[T any](cmd *cobra.Command, f *storeFlags, count bool, inferred []string, limit int, l listing[T]) error {
	out, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if count {
		n, err := l.count(cmd.Context())
		if err == nil {
			explainNoMatch(stderr, int(n), inferred)
		}
		return f.printCount(out, n, err)
	}
	found, err := l.find(cmd.Context())
	if err != nil {
		return err
	}
	explainNoMatch(stderr, len(found), inferred)
	if f.output == "json" {
		items := make([]any, len(found))
		for i, r := range found {
			items[i] = l.json(r)
		}
		return writeJSONLines(out, items)
	}
	narrow, wide := cellNarrow, cellWide
	if f.wide {
		narrow, wide = 0, 0
	}
	if err := printRows(out, "text", found, l.header, func(w io.Writer, r T) { l.line(w, r, narrow, wide) }); err != nil {
		return err
	}
	if len(found) > 0 {
		moreMayFollow(stderr, len(found), limit, l.mark(found[len(found)-1]))
	}
	return nil
}

// moreMayFollow tells on stderr how to page on when a listing was cut at
// its limit.
func moreMayFollow(w io.Writer, rows, limit int, lastMark string) {
	if rows > 0 && limit > 0 && rows == limit {
		fmt.Fprintf(w, "more may follow: --mark %s\n", lastMark)
	}
}

// parseTraitFilters parses --trait NAME[:TYPE]=VALUE into typed values.
// TYPE is string, int, float or datetime; without it the type is inferred
// from VALUE (an integer, a decimal number, an ISO 8601 date-time, else a
// string), and inferred lists, for each such filter, how it was read: a
// typed trait matches only a value of its own type, so a listing that
// finds nothing tells the user how to ask for another type.
func parseTraitFilters(specs []string) (filters map[string]stream.Value, inferred []string, err error) {
	if len(specs) == 0 {
		return nil, nil, nil
	}
	out := map[string]stream.Value{}
	for _, spec := range specs {
		key, raw, ok := strings.Cut(spec, "=")
		if !ok || key == "" {
			return nil, nil, fmt.Errorf("--trait %q: want NAME[:TYPE]=VALUE", spec)
		}
		name, typ, typed := strings.Cut(key, ":")
		if name == "" {
			return nil, nil, fmt.Errorf("--trait %q: want NAME[:TYPE]=VALUE", spec)
		}
		var v stream.Value
		switch typ {
		case "":
			if typed {
				return nil, nil, fmt.Errorf("--trait %q: empty type (string, int, float, datetime)", spec)
			}
			v = inferTraitValue(raw)
			if v.Kind() != stream.KindString {
				inferred = append(inferred, fmt.Sprintf("--trait %s was read as %s %s (write %s:string=%s to match text)",
					spec, article(v.Kind().String()), v.Kind(), name, raw))
			}
		case "string", "text":
			v = stream.String(raw)
		case "int":
			i, err := strconv.ParseInt(raw, 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("--trait %q: %q is not an integer", spec, raw)
			}
			v = stream.Int(i)
		case "float":
			f, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("--trait %q: %q is not a number", spec, raw)
			}
			v = stream.Float(f)
		case "datetime":
			t, err := stream.ParseTime(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("--trait %q: %v", spec, err)
			}
			v = stream.Datetime(t)
		default:
			return nil, nil, fmt.Errorf("--trait %q: unknown type %q (string, int, float, datetime)", spec, typ)
		}
		out[name] = v
	}
	return out, inferred, nil
}

// inferTraitValue reads an untyped --trait value: an integer, a decimal
// number, an ISO 8601 date-time, or else a string.
func inferTraitValue(raw string) stream.Value {
	if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return stream.Int(i)
	}
	if strings.Trim(raw, "+-0123456789.eE") == "" && strings.ContainsAny(raw, "0123456789") {
		if f, err := strconv.ParseFloat(raw, 64); err == nil {
			return stream.Float(f)
		}
	}
	if len(raw) >= len("2006-01-02T15") && raw[4] == '-' {
		if t, err := stream.ParseTime(raw); err == nil {
			return stream.Datetime(t)
		}
	}
	return stream.String(raw)
}

func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// explainNoMatch tells on w, when a listing found nothing, how untyped
// --trait values were read.
func explainNoMatch(w io.Writer, n int, inferred []string) {
	if n > 0 || len(inferred) == 0 {
		return
	}
	fmt.Fprintln(w, "nothing matched; typed traits match only values of their own type:")
	for _, s := range inferred {
		fmt.Fprintln(w, "  "+s)
	}
}

func parseTimeFlag(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := stream.ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s: %v", name, err)
	}
	return t, nil
}

// stateText is the STATE column: the state, with the outcome of a
// completed stream.
func stateText(s stream.Stream) string {
	if o := s.Outcome(); o != "" {
		return s.State.String() + " (" + o + ")"
	}
	return s.State.String()
}

// nextText is the NEXT column: "fire 2014-08-01T10:00:00", or "-".
func nextText(s stream.Stream) string {
	next, at := s.Next()
	if next == "" {
		return "-"
	}
	return strings.ReplaceAll(next, "_", " ") + " " + stream.FormatTime(at)
}

// Caps on the width of text table cells, so that one huge value does not
// pad every row of a listing to its width (-o json and --wide print
// values whole).
const (
	cellNarrow = 40
	cellWide   = 80
)

// cell makes s fit a table cell: control characters (tabs, newlines)
// become spaces, and beyond max runes (0: no cap) it is cut with "…".
func cell(s string, max int) string {
	clean := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if max <= 0 || utf8.RuneCountInString(clean) <= max {
		return clean
	}
	n := 0
	for i := range clean {
		if n == max-1 {
			return clean[:i] + "…"
		}
		n++
	}
	return clean
}

func distText(d map[string]stream.Value) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + d[k].String()
	}
	return strings.Join(parts, " ")
}

type streamFilter struct {
	trigger, state, from, to, older, younger, mark string
	traits                                         []string
	limit                                          int
	inferred                                       []string // how untyped --trait values were read
}

func (f *streamFilter) addTo(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.trigger, "trigger", "", "only streams of this trigger")
	fs.StringVar(&f.state, "state", "", "only streams in this state (active, firing, expiring, error, expire_error, completed, retry_fire, retry_expire)")
	fs.StringArrayVar(&f.traits, "trait", nil, "only streams with this distinguishing value: NAME[:TYPE]=VALUE, TYPE string, int, float or datetime (default: inferred from VALUE); repeatable")
	fs.StringVar(&f.from, "from", "", "only streams with events after this time: last event after it (exclusive, ISO 8601)")
	fs.StringVar(&f.to, "to", "", "only streams with events up to this time: first event at or before it (inclusive, ISO 8601)")
	// The old names, kept working.
	fs.StringVar(&f.older, "older-than", "", "only streams whose first event is before this time (ISO 8601)")
	fs.StringVar(&f.younger, "younger-than", "", "same as --from")
	_ = fs.MarkHidden("older-than")
	_ = fs.MarkHidden("younger-than")
	fs.StringVar(&f.mark, "mark", "", "paging mark: continue after the _mark of the last row (\"+\" lists oldest first)")
	fs.IntVar(&f.limit, "limit", 100, "at most this many streams (0: all)")
}

func (f *streamFilter) params() (db.FindStreamsParams, error) {
	p := db.FindStreamsParams{Name: f.trigger, Mark: f.mark, Limit: f.limit}
	if f.state != "" {
		st, err := stream.ParseState(f.state)
		if err != nil {
			return p, fmt.Errorf("--state: %w", err)
		}
		p.State = st
	}
	var err error
	if p.DistinguishedBy, f.inferred, err = parseTraitFilters(f.traits); err != nil {
		return p, err
	}
	if f.from != "" && f.younger != "" || f.to != "" && f.older != "" {
		return p, errors.New("give --from and --to, or the old --younger-than and --older-than, not both")
	}
	if p.YoungerThan, err = parseTimeFlag("from", f.from); err != nil {
		return p, err
	}
	to, err := parseTimeFlag("to", f.to)
	if err != nil {
		return p, err
	}
	if !to.IsZero() {
		// Inclusive like events list --to: times are stored to the
		// microsecond, so "before to + 1µs" is "at or before to".
		p.OlderThan = to.Add(time.Microsecond)
	}
	if f.older != "" {
		if p.OlderThan, err = parseTimeFlag("older-than", f.older); err != nil {
			return p, err
		}
	}
	if f.younger != "" {
		if p.YoungerThan, err = parseTimeFlag("younger-than", f.younger); err != nil {
			return p, err
		}
	}
	return p, nil
}

func newStreamsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List, show, count and reset streams",
		Long: `streams inspects the streams in the configured database, counts them by
trigger and state (stats) and resets failed ones so that a worker retries
them.`,
	}
	cmd.AddCommand(newStreamsListCmd(), newStreamsShowCmd(), newStreamsResetCmd(), newStreamsStatsCmd())
	return cmd
}

func newStreamsListCmd() *cobra.Command {
	var sf storeFlags
	var f streamFilter
	var count bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List streams, newest first",
		Example: `  winchester streams list -c etc/winchester.yaml --state error
  winchester streams list --trigger test_trigger --trait instance_id=aaaa-1111 -o json
  winchester streams list --state error --count`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.params()
			if err != nil {
				return err
			}
			store, err := sf.openReads(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			return printListing(cmd, &sf, count, f.inferred, p.Limit, listing[db.FoundStream]{
				count:  func(ctx context.Context) (int64, error) { return store.CountStreams(ctx, p) },
				find:   func(ctx context.Context) ([]db.FoundStream, error) { return store.FindStreams(ctx, p) },
				mark:   func(fs db.FoundStream) string { return fs.Mark },
				json:   func(fs db.FoundStream) any { return fs.Stream.JSON(fs.Mark, nil) },
				header: "ID\tTRIGGER\tSTATE\tNEXT\tFIRST EVENT\tLAST EVENT\tDISTINGUISHED BY\tERROR",
				line: func(w io.Writer, fs db.FoundStream, narrow, wide int) {
					s := fs.Stream
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, cell(s.Name, narrow), stateText(s), nextText(s),
						stream.FormatTime(s.FirstEvent), stream.FormatTime(s.LastEvent),
						cell(distText(s.DistinguishedBy), wide), cell(firstLine(s.LastError), wide))
				},
			})
		},
	}
	sf.addTo(cmd)
	cli.AddReadURLTo(cmd)
	sf.addWideTo(cmd)
	f.addTo(cmd)
	cmd.Flags().BoolVar(&count, "count", false, "print only the number of matching streams")
	return cmd
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func parseIDs(args []string) ([]int64, error) {
	ids := make([]int64, len(args))
	for i, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("stream id %q: want a positive integer", a)
		}
		ids[i] = id
	}
	return ids, nil
}

func newStreamsShowCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "show ID...",
		Short: "Show streams with their events",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			store, err := sf.openReads(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			out := cmd.OutOrStdout()
			for _, id := range ids {
				s, err := store.StreamByID(cmd.Context(), id)
				if errors.Is(err, db.ErrNotFound) {
					return &exitError{code: 1, err: fmt.Errorf("stream %d not found (purged after completion, or never existed)", id)}
				}
				if err != nil {
					return err
				}
				events, err := store.StreamEvents(cmd.Context(), id)
				if err != nil {
					return err
				}
				if sf.output == "json" {
					if err := writeJSONLines(out, []any{s.JSON("", events)}); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(out, "stream %d\n  trigger:          %s\n  state:            %s (serial %d)\n", s.ID, s.Name, s.State, s.SerialNo)
				fmt.Fprintf(out, "  distinguished by: %s\n  first event:      %s\n  last event:       %s\n",
					distText(s.DistinguishedBy), stream.FormatTime(s.FirstEvent), stream.FormatTime(s.LastEvent))
				fmt.Fprintf(out, "  expires:          %s\n  fires:            %s\n", timeOrDash(s.ExpireTimestamp), timeOrDash(s.FireTimestamp))
				if s.Attempts > 0 || s.LastError != "" {
					fmt.Fprintf(out, "  attempts:         %d\n  last error:       %s\n", s.Attempts, s.LastError)
				}
				if s.ClaimedBy != "" {
					fmt.Fprintf(out, "  claimed by:       %s until %s\n", s.ClaimedBy, timeOrDash(s.LeaseUntil))
				}
				fmt.Fprintf(out, "  events (%d):\n", len(events))
				for _, ev := range events {
					fmt.Fprintf(out, "    %s  %s  %s\n", stream.FormatTime(ev.Timestamp), ev.Type, ev.MessageID)
				}
			}
			return nil
		},
	}
	sf.addTo(cmd)
	cli.AddReadURLTo(cmd)
	return cmd
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return stream.FormatTime(t)
}

func newStreamsResetCmd() *cobra.Command {
	var sf storeFlags
	var f streamFilter
	var all bool
	cmd := &cobra.Command{
		Use:   "reset [ID...]",
		Short: "Retry failed streams (error → retry_fire, expire_error → retry_expire)",
		Long: `reset moves streams in error to retry_fire and streams in expire_error to
retry_expire, so that the next worker pass runs their pipeline again. Give
stream ids, or --all with filters (--trigger, --trait, ...) to reset every
failed stream that matches (at most --limit of them, oldest first, when
--limit is given). Streams in other states are left alone. A stream that
cannot be reset (not found, changed concurrently, a storage error) is
reported with its reason and the others are still reset; the command then
exits 1.`,
		Example: `  winchester streams reset 42 43
  winchester streams reset --all --trigger test_trigger
  winchester streams reset --all --state error --limit 10`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0 && !all:
				return errors.New("nothing to reset: give stream ids, or --all to reset every failed stream matching the filters")
			case len(args) > 0 && all:
				return errors.New("give stream ids or --all, not both")
			case len(args) > 0 && streamFilterGiven(cmd):
				return errors.New("filters (--trigger, --state, --trait, --from, --to, --limit) select streams for --all; with stream ids, leave them out")
			}
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			store, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			ctx := cmd.Context()
			if all {
				p, err := f.params()
				if err != nil {
					return err
				}
				if f.state != "" && p.State != stream.StateError && p.State != stream.StateExpireError {
					return fmt.Errorf("--state %s: only streams in error or expire_error can be reset", p.State)
				}
				limit := 0 // all, unless --limit is given
				if cmd.Flags().Changed("limit") {
					limit = f.limit
				}
				p.Limit = 0
				for _, st := range []stream.State{stream.StateError, stream.StateExpireError} {
					if f.state != "" && p.State != st {
						continue
					}
					q := p
					q.State = st
					found, err := store.FindStreams(ctx, q)
					if err != nil {
						return err
					}
					for _, fs := range found {
						ids = append(ids, fs.Stream.ID)
					}
				}
				slices.Sort(ids) // ids grow with creation: oldest first across both states
				if limit > 0 && len(ids) > limit {
					ids = ids[:limit]
				}
			}
			var results []any
			reset, failed := 0, 0
			prog := cli.NewProgress(cmd.ErrOrStderr())
			defer prog.Done()
			for i, id := range ids {
				prog.Update("streams reset: %d/%d, %d reset, %d failed", i, len(ids), reset, failed)
				s, err := store.ResetStream(ctx, id)
				res := map[string]any{"id": id}
				switch {
				case errors.Is(err, db.ErrNotFound):
					res["error"] = "not found"
					failed++
				case errors.Is(err, db.ErrConflict), errors.Is(err, db.ErrAborted):
					res["error"] = "changed concurrently; try again"
					failed++
				case ctx.Err() != nil:
					return fmt.Errorf("reset stream %d (after %d reset): %w", id, reset, err)
				case err != nil:
					// A storage error is this stream's: go on with the
					// others and report every failure.
					res["error"] = err.Error()
					failed++
				default:
					res["state"] = s.State.String()
					if s.State == stream.StateRetryFire || s.State == stream.StateRetryExpire {
						reset++
					}
				}
				results = append(results, res)
			}
			prog.Done()
			out := cmd.OutOrStdout()
			if sf.output == "json" {
				if err := writeJSONLines(out, results); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d stream(s) reset for retry\n", reset)
			} else {
				for _, r := range results {
					m := r.(map[string]any)
					if e, ok := m["error"]; ok {
						fmt.Fprintf(out, "stream %d: %s\n", m["id"], e)
					} else {
						fmt.Fprintf(out, "stream %d: %s\n", m["id"], m["state"])
					}
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d stream(s) reset for retry\n", reset)
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d stream(s) could not be reset", failed)}
			}
			return nil
		},
	}
	sf.addTo(cmd)
	f.addTo(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "reset every failed stream matching the filters")
	return cmd
}

// streamFilterGiven reports whether a filter flag of streamFilter was set.
func streamFilterGiven(cmd *cobra.Command) bool {
	for _, name := range []string{"trigger", "state", "trait", "from", "to", "older-than", "younger-than", "mark", "limit"} {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

func newEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List and show stored events",
	}
	cmd.AddCommand(newEventsListCmd(), newEventsShowCmd())
	return cmd
}

func newEventsListCmd() *cobra.Command {
	var sf storeFlags
	var typ, from, to, mark string
	var traits []string
	var limit int
	var count bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List events, newest first, in the event JSON encoding",
		Example: `  winchester events list -c etc/winchester.yaml --type compute.instance.exists --limit 10
  winchester events list --trait instance_id=aaaa-1111 --from 2014-08-01T00:00:00`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := db.FindEventsParams{EventType: typ, Mark: mark, Limit: limit}
			var err error
			var inferred []string
			if p.Traits, inferred, err = parseTraitFilters(traits); err != nil {
				return err
			}
			if p.From, err = parseTimeFlag("from", from); err != nil {
				return err
			}
			if p.To, err = parseTimeFlag("to", to); err != nil {
				return err
			}
			store, err := sf.openReads(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			return printListing(cmd, &sf, count, inferred, limit, listing[db.StoredEvent]{
				count:  func(ctx context.Context) (int64, error) { return store.CountEvents(ctx, p) },
				find:   func(ctx context.Context) ([]db.StoredEvent, error) { return store.FindEvents(ctx, p) },
				mark:   func(e db.StoredEvent) string { return e.Mark },
				json:   func(e db.StoredEvent) any { return e.Event },
				header: "TIMESTAMP\tEVENT TYPE\tMESSAGE ID\tTRAITS",
				line: func(w io.Writer, e db.StoredEvent, narrow, wide int) {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", stream.FormatTime(e.Event.Timestamp), cell(e.Event.Type, narrow),
						cell(e.Event.MessageID, narrow), cell(distText(e.Event.Traits), wide))
				},
			})
		},
	}
	sf.addTo(cmd)
	cli.AddReadURLTo(cmd)
	sf.addWideTo(cmd)
	fs := cmd.Flags()
	fs.StringVar(&typ, "type", "", "only events of this exact type")
	fs.StringVar(&from, "from", "", "only events after this time (exclusive, ISO 8601)")
	fs.StringVar(&to, "to", "", "only events up to this time (inclusive, ISO 8601)")
	fs.StringArrayVar(&traits, "trait", nil, "only events with this trait value: NAME[:TYPE]=VALUE, TYPE string, int, float or datetime (default: inferred from VALUE); repeatable")
	fs.StringVar(&mark, "mark", "", "paging mark: continue after the _mark of the last row (\"+\" lists oldest first)")
	fs.IntVar(&limit, "limit", 100, "at most this many events (0: all)")
	fs.BoolVar(&count, "count", false, "print only the number of matching events")
	return cmd
}

func newEventsShowCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "show MESSAGE_ID...",
		Short: "Print stored events in the event JSON encoding",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := sf.openReads(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			var items []any
			for _, id := range args {
				e, err := store.EventByMessageID(cmd.Context(), id)
				if errors.Is(err, db.ErrNotFound) {
					return &exitError{code: 1, err: fmt.Errorf("no event with message_id %q", id)}
				}
				if err != nil {
					return err
				}
				items = append(items, e.Event)
			}
			return writeJSONLines(cmd.OutOrStdout(), items)
		},
	}
	sf.addTo(cmd)
	cli.AddReadURLTo(cmd)
	return cmd
}
