// Package dbtest is the storage conformance suite: Exercise specifies the
// behaviour of db.Store once, and every driver runs it from its one
// _test.go file with a constructor of fresh stores. It also holds the
// shared storage benchmarks (Benchmark) and a slog handler that writes to
// the test log (Logger).
//
// Change storage behaviour here first, then in the drivers.
package dbtest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// OpenFunc returns a fresh, empty, migrated store for one test and
// arranges its cleanup (t.Cleanup) itself.
type OpenFunc func(t *testing.T) db.Store

// Exercise runs the whole storage conformance suite. Every subtest calls
// open for its own store, so subtests are independent; they run in
// parallel, so open must be safe for concurrent use.
func Exercise(t *testing.T, open OpenFunc) {
	t.Helper()
	groups := []struct {
		name string
		run  func(t *testing.T, open OpenFunc)
	}{
		{"Events", exerciseEvents},
		{"Ingest", exerciseIngest},
		{"StateCAS", exerciseStateCAS},
		{"Ready", exerciseReady},
		{"ClaimReady", exerciseClaimReady},
		{"BatchClaim", exerciseBatchClaim},
		{"ReadyAgreesWithStream", exerciseReadyAgreesWithStream},
		{"StreamStats", exerciseStreamStats},
		{"Backlog", exerciseBacklog},
		{"Rescue", exerciseRescue},
		{"ResetPurgeTrim", exerciseResetPurgeTrim},
		{"Find", exerciseFind},
		{"Tx", exerciseTx},
		{"Concurrency", exerciseConcurrency},
		{"Fixture", exerciseFixture},
		{"Poison", exercisePoison},
		{"PurgeEvents", exercisePurgeEvents},
		{"Jobs", exerciseJobs},
		{"Definitions", exerciseDefinitions},
		{"Subscribers", exerciseSubscribers},
		{"StateCounts", exerciseStateCounts},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, open)
		})
	}
}

// cmpOpts compare stored values and times by meaning.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b stream.Value) bool { return a.Equal(b) }),
	cmpopts.EquateEmpty(),
}

// base is the reference time of the suite's data: a microsecond-precise
// instant in the original's fixture.
var base = time.Date(2014, 8, 1, 10, 20, 45, 453201000, time.UTC)

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// newEvent builds an event.
func newEvent(messageID, typ string, ts time.Time, traits map[string]stream.Value) stream.Event {
	if traits == nil {
		traits = map[string]stream.Value{}
	}
	return stream.Event{MessageID: messageID, Type: typ, Timestamp: stream.NormalizeTime(ts), Traits: traits}
}

// save stores events and returns their ids, failing on any error or
// duplicate.
func save(t *testing.T, s db.Ops, events ...stream.Event) []int64 {
	t.Helper()
	ids, err := s.SaveEvents(t.Context(), events)
	if err != nil {
		t.Fatalf("SaveEvents: %v", err)
	}
	for i, id := range ids {
		if id == 0 {
			t.Fatalf("SaveEvents: event %q was taken for a duplicate", events[i].MessageID)
		}
	}
	return ids
}

// streamSpec is a stream to create for a test.
type streamSpec struct {
	name    string
	dist    map[string]stream.Value
	first   time.Time
	last    time.Time
	expire  time.Time
	fire    time.Time
	counts  []int
	events  []int64
	version int64
}

// create creates a stream and fails unless it was created.
func create(t *testing.T, s db.Ops, sp streamSpec) int64 {
	t.Helper()
	if sp.dist == nil {
		sp.dist = map[string]stream.Value{}
	}
	if sp.first.IsZero() {
		sp.first = base
	}
	if sp.last.IsZero() {
		sp.last = sp.first
	}
	id, created, err := s.CreateStream(t.Context(), db.NewStream{
		Name: sp.name, Key: stream.Key(sp.dist), DistinguishedBy: sp.dist,
		FirstEvent: sp.first, LastEvent: sp.last, ExpireTimestamp: sp.expire, FireTimestamp: sp.fire,
		FireCounts: sp.counts, EventIDs: sp.events, Now: at(time.Hour), DefinitionVersion: sp.version,
	})
	if err != nil || !created || id == 0 {
		t.Fatalf("CreateStream(%s, %v) = %d, %v, %v; want a new stream", sp.name, sp.dist, id, created, err)
	}
	return id
}

// setState moves a stream to state with the CAS, failing on error.
func setState(t *testing.T, s db.Ops, id int64, state stream.State) stream.Stream {
	t.Helper()
	st, err := s.StreamByID(t.Context(), id)
	if err != nil {
		t.Fatalf("StreamByID(%d): %v", id, err)
	}
	st, err = s.SetStreamState(t.Context(), db.SetStateParams{ID: id, SerialNo: st.SerialNo, State: state})
	if err != nil {
		t.Fatalf("SetStreamState(%d, %s): %v", id, state, err)
	}
	return st
}

func streamByID(t *testing.T, s db.Ops, id int64) stream.Stream {
	t.Helper()
	st, err := s.StreamByID(t.Context(), id)
	if err != nil {
		t.Fatalf("StreamByID(%d): %v", id, err)
	}
	return st
}

// ids returns the ids of streams.
func streamIDs(sts []stream.Stream) []int64 {
	out := []int64{}
	for _, st := range sts {
		out = append(out, st.ID)
	}
	return out
}

// messageIDs returns the message ids of events.
func messageIDs(evs []stream.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.MessageID)
	}
	return out
}

// wantErr fails unless err wraps want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
}

func ptr[T any](v T) *T { return &v }
