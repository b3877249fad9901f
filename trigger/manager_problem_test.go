package trigger_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Expressions that load but cannot be evaluated for some events: a month
// after the 31st of January does not exist, and a day range needs a
// datetime.
const problemTriggers = `
- name: monthly
  distinguished_by: [instance_id]
  expiration: "$last + 1mo"
  fire_pipeline: p
  match_criteria:
  - event_type: compute.*
  fire_criteria:
  - event_type: never
- name: daily
  distinguished_by: [instance_id, {timestamp: day}]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: compute.*
    map_distinguished_by: {timestamp: audit_period_beginning}
  fire_criteria:
  - event_type: never
`

// syncBuffer is a log destination for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestManagerExpressionErrorIsTheEventsProblem checks that an event whose
// stream's expiration or distinguishing values cannot be evaluated is
// stored and left out of that trigger's stream, with a reason, a counter
// and a log line, while the rest of its batch goes on as usual, on every
// ingest path.
func TestManagerExpressionErrorIsTheEventsProblem(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) trigger.Store{
		"sqlite":         func(t *testing.T) trigger.Store { return enginetest.SQLite(t) },
		"postgres batch": func(t *testing.T) trigger.Store { return enginetest.Postgres(t) },
		"postgres single": func(t *testing.T) trigger.Store {
			return singleStore{enginetest.Postgres(t)}
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open(t)
			defs, _, err := trigger.Parse("triggers.yaml", []byte(problemTriggers))
			if err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			clock := fixedClock{time.Date(2014, 1, 20, 0, 0, 0, 0, time.UTC)}
			m, err := trigger.NewManager(store, defs, trigger.ManagerConfig{
				Clock: clock, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			day := func(d int) time.Time { return time.Date(2014, 1, d, 10, 0, 0, 0, time.UTC) }
			event := func(id, instance string, ts time.Time, audit stream.Value) stream.Event {
				return stream.Event{MessageID: id, Type: "compute.instance.exists", Timestamp: ts, Traits: map[string]stream.Value{
					"instance_id": stream.String(instance), "audit_period_beginning": audit,
				}}
			}
			res, err := m.AddEvents(t.Context(), []stream.Event{
				event("e1", "i-1", day(15), stream.Datetime(day(15))),
				event("e2", "i-1", day(31), stream.Datetime(day(31))),   // monthly: 2014-01-31 + 1mo
				event("e3", "i-2", day(16), stream.String("yesterday")), // daily: not a datetime
			})
			if err != nil {
				t.Fatalf("AddEvents: %v (an expression error of one event failed the batch)", err)
			}
			type outcome struct {
				Outcome trigger.Outcome
				Matched int
				Reason  string // prefix
			}
			var got []outcome
			for _, r := range res {
				reason := r.Reason
				if i := strings.Index(reason, ": timex"); i >= 0 {
					reason = reason[:i]
				}
				got = append(got, outcome{r.Outcome, r.Matched, reason})
			}
			want := []outcome{
				{trigger.Stored, 2, ""},
				{trigger.Stored, 1, `trigger "monthly": expiration "$last + 1mo"`},
				{trigger.Stored, 1, `trigger "daily": distinguished_by timestamp: trait "audit_period_beginning" is a string, not a datetime`},
			}
			if d := gocmp.Diff(want, got); d != "" {
				t.Errorf("results mismatch (-want +got):\n%s", d)
			}
			if !strings.Contains(res[1].Reason, "2014-01-31") {
				t.Errorf("reason %q does not say which date failed", res[1].Reason)
			}

			var streams []string
			for _, s := range storedStreams(t, store.(db.Ops)) {
				streams = append(streams, s.Name+" "+s.Events+" last="+s.Last.Format("01-02"))
			}
			slices.Sort(streams)
			wantStreams := []string{"daily e1 last=01-15", "daily e2 last=01-31", "monthly e1 last=01-15", "monthly e3 last=01-16"}
			if d := gocmp.Diff(wantStreams, streams); d != "" {
				t.Errorf("streams mismatch (-want +got):\n%s", d)
			}

			_, per := m.Stats().Totals()
			if per["monthly"]["expiration_failed"] != 1 || per["daily"]["distinguish_failed"] != 1 {
				t.Errorf("counters = %v, want expiration_failed 1 for monthly and distinguish_failed 1 for daily", per)
			}

			var warned []string
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if rec["msg"] == "event not added to a stream of its trigger" && rec["level"] == "WARN" {
					warned = append(warned, rec["message_id"].(string)+" "+rec["trigger"].(string))
				}
			}
			slices.Sort(warned)
			if d := gocmp.Diff([]string{"e2 monthly", "e3 daily"}, warned); d != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s\nlog:\n%s", d, logs.String())
			}
		})
	}
}
