package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// streamStats is the summary of one trigger's streams (or of all, with
// Trigger empty), as `winchester streams stats -o json` prints it.
type streamStats struct {
	Trigger string           `json:"trigger,omitempty"`
	Streams int64            `json:"streams"`
	States  map[string]int64 `json:"states"`
	// ReadyToFire and ReadyToExpire are the streams whose deadline passed
	// and that wait for a worker (winchester_streams_ready).
	ReadyToFire   int64 `json:"ready_to_fire"`
	ReadyToExpire int64 `json:"ready_to_expire"`
	// OldestReadyToFire and OldestReadyToExpire are the earliest deadlines
	// among them; OldestReadySeconds is how long ago the earliest of both
	// passed.
	OldestReadyToFire   string   `json:"oldest_ready_to_fire,omitempty"`
	OldestReadyToExpire string   `json:"oldest_ready_to_expire,omitempty"`
	OldestReadySeconds  *float64 `json:"oldest_ready_seconds,omitempty"`
	// InError are the streams that wait for an operator, error and
	// expire_error (winchester_streams_in_error).
	InError int64 `json:"in_error"`

	oldestFire, oldestExpire time.Time
}

// statsReport is the whole output of `winchester streams stats`.
type statsReport struct {
	Now      string         `json:"now"`
	Total    *streamStats   `json:"total"`
	Triggers []*streamStats `json:"triggers"`
}

// summarize folds the store's rows into one summary per trigger (in the
// rows' order) and a total, as of now.
func summarize(rows []db.StreamStat, now time.Time) statsReport {
	r := statsReport{Now: stream.FormatTime(now), Total: &streamStats{States: map[string]int64{}}, Triggers: []*streamStats{}}
	for _, row := range rows {
		if n := len(r.Triggers); n == 0 || r.Triggers[n-1].Trigger != row.Name {
			r.Triggers = append(r.Triggers, &streamStats{Trigger: row.Name, States: map[string]int64{}})
		}
		for _, s := range []*streamStats{r.Triggers[len(r.Triggers)-1], r.Total} {
			s.add(row)
		}
	}
	for _, s := range append([]*streamStats{r.Total}, r.Triggers...) {
		s.finish(now)
	}
	return r
}

func (s *streamStats) add(row db.StreamStat) {
	s.Streams += row.Count
	s.States[row.State.String()] += row.Count
	if row.State == stream.StateError || row.State == stream.StateExpireError {
		s.InError += row.Count
	}
	s.ReadyToFire += row.ReadyToFire
	s.ReadyToExpire += row.ReadyToExpire
	s.oldestFire = earliest(s.oldestFire, row.OldestFire)
	s.oldestExpire = earliest(s.oldestExpire, row.OldestExpire)
}

func (s *streamStats) finish(now time.Time) {
	if !s.oldestFire.IsZero() {
		s.OldestReadyToFire = stream.FormatTime(s.oldestFire)
	}
	if !s.oldestExpire.IsZero() {
		s.OldestReadyToExpire = stream.FormatTime(s.oldestExpire)
	}
	if oldest := earliest(s.oldestFire, s.oldestExpire); !oldest.IsZero() {
		age := max(0, now.Sub(oldest).Seconds())
		s.OldestReadySeconds = &age
	}
}

// earliest returns the earlier of two times, a zero time meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// statesText lists the non-zero state counts in state order.
func statesText(states map[string]int64) string {
	var parts []string
	for st := stream.StateActive; st <= stream.StateRetryExpire; st++ {
		if n := states[st.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func oldestText(s *streamStats) string {
	if s.OldestReadySeconds == nil {
		return "-"
	}
	return (time.Duration(*s.OldestReadySeconds) * time.Second).String()
}

func writeStatsText(w io.Writer, r statsReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRIGGER\tSTREAMS\tREADY TO FIRE\tREADY TO EXPIRE\tOLDEST READY\tIN ERROR\tBY STATE")
	line := func(name string, s *streamStats) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\t%s\n", name, s.Streams, s.ReadyToFire, s.ReadyToExpire, oldestText(s), s.InError, statesText(s.States))
	}
	for _, s := range r.Triggers {
		line(s.Trigger, s)
	}
	if len(r.Triggers) != 1 {
		line("(all)", r.Total)
	}
	return tw.Flush()
}

func newStreamsStatsCmd() *cobra.Command {
	var sf storeFlags
	var trig string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count streams by trigger and state, with the ready backlog and the streams in error",
		Long: `stats summarises the stored streams, read from the database (no running
serve needed), per trigger and in all: how many are in each state, how many
are ready to fire and to expire (their deadline passed and they wait for a
worker) and how long ago the oldest of those deadlines passed, and how many
failed and wait for an operator (states error and expire_error; see
winchester streams reset). The ready and error counts are those serve
exports as winchester_streams_ready and winchester_streams_in_error.

It reads every stream row: on a very large database it takes a while.`,
		Example: `  winchester streams stats -c etc/winchester.yaml
  winchester streams stats --trigger test_trigger -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := sf.openReads(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			now := stream.NormalizeTime(time.Now())
			rows, err := store.StreamStats(cmd.Context(), now)
			if err != nil {
				return err
			}
			if trig != "" {
				kept := rows[:0]
				for _, r := range rows {
					if r.Name == trig {
						kept = append(kept, r)
					}
				}
				rows = kept
			}
			report := summarize(rows, now)
			if sf.output == "json" {
				return writeJSONLines(cmd.OutOrStdout(), []any{report})
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no streams")
				return nil
			}
			return writeStatsText(cmd.OutOrStdout(), report)
		},
	}
	sf.addTo(cmd)
	cli.AddReadURLTo(cmd)
	cmd.Flags().StringVar(&trig, "trigger", "", "only the streams of this trigger")
	return cmd
}
