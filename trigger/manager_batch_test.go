package trigger_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// The manager's batch path (db.BatchIngester, PostgreSQL) against its
// single-stream path on the same database.

const batchTriggers = `
- name: by_last
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
- name: by_first
  distinguished_by: [instance_id]
  expiration: "$first + 2h"
  fire_pipeline: p
  match_criteria:
  - event_type: "*"
  fire_criteria:
  - event_type: compute.instance.exists
    number: 2
`

// singleStore hides the BatchIngester capability of its transactions,
// so that a manager over it takes the single-stream path.
type singleStore struct{ db.Store }

type singleOps struct{ db.Ops }

func (s singleStore) InTx(ctx context.Context, fn func(ctx context.Context, tx db.Ops) error) error {
	return s.Store.InTx(ctx, func(ctx context.Context, tx db.Ops) error { return fn(ctx, singleOps{tx}) })
}

// hookStore calls afterOpen, in the transaction, right after the batch
// path's OpenStreams: a test makes the races of concurrent ingesters and
// workers happen there.
type hookStore struct {
	db.Store
	afterOpen func(ctx context.Context, tx db.Ops, open map[db.StreamKey]stream.Stream) error
}

type hookOps struct {
	db.Ops
	db.BatchIngester
	afterOpen func(ctx context.Context, tx db.Ops, open map[db.StreamKey]stream.Stream) error
}

func (s hookStore) InTx(ctx context.Context, fn func(ctx context.Context, tx db.Ops) error) error {
	return s.Store.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		return fn(ctx, hookOps{Ops: tx, BatchIngester: tx.(db.BatchIngester), afterOpen: s.afterOpen})
	})
}

func (o hookOps) OpenStreams(ctx context.Context, keys []db.StreamKey) (map[db.StreamKey]stream.Stream, error) {
	open, err := o.BatchIngester.OpenStreams(ctx, keys)
	if err == nil && o.afterOpen != nil {
		err = o.afterOpen(ctx, o.Ops, open)
	}
	return open, err
}

type settableClock struct{ now time.Time }

func (c *settableClock) Now() time.Time { return c.now }

func newBatchManager(t *testing.T, store trigger.Store, clock stream.Clock) *trigger.Manager {
	t.Helper()
	defs, _, err := trigger.Parse("triggers.yaml", []byte(batchTriggers))
	if err != nil {
		t.Fatal(err)
	}
	m, err := trigger.NewManager(store, defs, trigger.ManagerConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// storedStream is a stream as a test compares it: without its id.
type storedStream struct {
	Name, Key   string
	State       stream.State
	Open        bool
	First, Last time.Time
	Expire      time.Time
	Fire        time.Time
	Counts      []int
	Created     time.Time
	Events      string // message ids in stream order
}

func storedStreams(t *testing.T, s db.Ops) []storedStream {
	t.Helper()
	found, err := s.FindStreams(t.Context(), db.FindStreamsParams{IncludeEvents: true})
	if err != nil {
		t.Fatalf("FindStreams: %v", err)
	}
	out := make([]storedStream, len(found))
	for i, f := range found {
		st := f.Stream
		var mids []string
		for _, e := range f.Events {
			mids = append(mids, e.MessageID)
		}
		out[i] = storedStream{
			Name: st.Name, Key: st.Key, State: st.State, Open: st.Open,
			First: st.FirstEvent, Last: st.LastEvent, Expire: st.ExpireTimestamp, Fire: st.FireTimestamp,
			Counts: st.FireCounts, Created: st.CreatedAt, Events: strings.Join(mids, " "),
		}
	}
	slices.SortFunc(out, func(a, b storedStream) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Key, b.Key), a.Created.Compare(b.Created), cmp.Compare(a.Events, b.Events))
	})
	return out
}

func instanceEvent(id, typ, instance string, ts time.Time) stream.Event {
	return stream.Event{MessageID: id, Type: typ, Timestamp: ts,
		Traits: map[string]stream.Value{"instance_id": stream.String(instance)}}
}

// TestManagerBatchMatchesSingle runs the same batches through the batch
// path and the single-stream path, each on its own schema, and compares
// the results, the counters and every stream with its events.
func TestManagerBatchMatchesSingle(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)
	minute := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	batches := []struct {
		name   string
		now    time.Time
		events []stream.Event
	}{
		{"new streams, a duplicate, one ready to fire", t0, []stream.Event{
			instanceEvent("1", "compute.instance.update", "i-1", minute(-1)),
			instanceEvent("2", "compute.instance.update", "i-2", minute(-2)),
			instanceEvent("1", "compute.instance.update", "i-1", minute(-1)),
			instanceEvent("3", "compute.instance.exists", "i-1", minute(-1)),
			instanceEvent("4", "image.upload", "i-3", minute(-5)),
		}},
		{"appends to stored streams; a stream whose first event goes back expires within the batch", minute(10), []stream.Event{
			instanceEvent("5", "compute.instance.exists", "i-1", minute(5)),
			instanceEvent("6", "compute.instance.exists", "i-1", minute(6)), // by_first i-1 ready
			instanceEvent("7", "compute.instance.update", "i-2", minute(-180)),
			instanceEvent("8", "compute.instance.update", "i-2", minute(8)),
			instanceEvent("9", "compute.instance.update", "i-2", minute(9)),
			instanceEvent("10", "compute.instance.update", "i-4", minute(9)),
		}},
		{"stored streams expired at the lookup; new streams expired on creation", minute(200), []stream.Event{
			instanceEvent("11", "compute.instance.update", "i-1", minute(199)),
			instanceEvent("12", "compute.instance.update", "i-5", minute(-100)),
			instanceEvent("13", "compute.instance.update", "i-5", minute(-90)),
			instanceEvent("14", "compute.instance.exists", "i-5", minute(-80)),
			instanceEvent("15", "compute.instance.update", "i-5", minute(198)),
			instanceEvent("16", "image.upload", "i-3", minute(150)),
			instanceEvent("17", "compute.instance.update", "i-4", minute(199)),
		}},
		{"a batch of one event", minute(201), []stream.Event{
			instanceEvent("18", "compute.instance.update", "i-5", minute(200)),
		}},
		{"only duplicates", minute(202), []stream.Event{
			instanceEvent("18", "compute.instance.update", "i-5", minute(200)),
		}},
	}

	batchStore, singleDB := enginetest.Postgres(t), enginetest.Postgres(t)
	clock := &settableClock{}
	batch := newBatchManager(t, batchStore, clock)
	single := newBatchManager(t, singleStore{singleDB}, clock)
	for _, b := range batches {
		clock.now = b.now
		got, err := batch.AddEvents(t.Context(), b.events)
		if err != nil {
			t.Fatalf("%s: batch path: %v", b.name, err)
		}
		want, err := single.AddEvents(t.Context(), b.events)
		if err != nil {
			t.Fatalf("%s: single-stream path: %v", b.name, err)
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("%s: results (-single +batch):\n%s", b.name, diff)
		}
		if diff := gocmp.Diff(storedStreams(t, singleDB), storedStreams(t, batchStore)); diff != "" {
			t.Errorf("%s: streams (-single +batch):\n%s", b.name, diff)
		}
	}
	_, wantStats := single.Stats().Snapshot(false)
	_, gotStats := batch.Stats().Snapshot(false)
	if diff := gocmp.Diff(wantStats, gotStats); diff != "" {
		t.Errorf("counters (-single +batch):\n%s", diff)
	}
	// The batches did what their names say.
	var closed, ready, open int
	for _, s := range storedStreams(t, batchStore) {
		if !s.Fire.IsZero() {
			ready++
		}
		if s.Open {
			open++
		} else {
			closed++
		}
	}
	if closed < 5 || ready == 0 || open == 0 {
		t.Errorf("%d closed, %d ready to fire, %d open streams: the batches miss a case", closed, ready, open)
	}
}

// TestManagerBatchRedoesLostRaces makes the batch path lose both races it
// can lose and checks that the groups concerned are redone from the
// stores' current state, as the single-stream path does.
func TestManagerBatchRedoesLostRaces(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)
	key := func(instance string) db.StreamKey {
		return db.StreamKey{Name: "by_last", Key: stream.Key(map[string]stream.Value{"instance_id": stream.String(instance)})}
	}

	t.Run("another ingester created the stream", func(t *testing.T) {
		pg := enginetest.Postgres(t)
		ctx := t.Context()
		ids, err := pg.SaveEvents(ctx, []stream.Event{instanceEvent("other", "compute.instance.update", "i-9", t0)})
		if err != nil {
			t.Fatal(err)
		}
		var twin int64
		store := hookStore{Store: pg, afterOpen: func(ctx context.Context, _ db.Ops, open map[db.StreamKey]stream.Stream) error {
			if _, ok := open[key("i-9")]; ok || twin != 0 {
				return nil
			}
			// Committed on another connection after the lookup.
			dist := map[string]stream.Value{"instance_id": stream.String("i-9")}
			id, created, err := pg.CreateStream(ctx, db.NewStream{
				Name: "by_last", Key: stream.Key(dist), DistinguishedBy: dist,
				FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), FireCounts: []int{0},
				EventIDs: ids, Now: t0,
			})
			if err != nil || !created {
				return fmt.Errorf("concurrent CreateStream = %d, %v, %v", id, created, err)
			}
			twin = id
			return nil
		}}
		m := newBatchManager(t, store, &settableClock{t0})
		if _, err := m.AddEvents(ctx, []stream.Event{
			instanceEvent("a", "compute.instance.update", "i-9", t0.Add(time.Minute)),
			instanceEvent("b", "compute.instance.update", "i-8", t0.Add(time.Minute)),
			instanceEvent("c", "compute.instance.exists", "i-9", t0.Add(2*time.Minute)),
		}); err != nil {
			t.Fatal(err)
		}
		found, err := pg.FindStreams(ctx, db.FindStreamsParams{Name: "by_last", IncludeEvents: true})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64][]string{}
		for _, f := range found {
			for _, e := range f.Events {
				got[f.Stream.ID] = append(got[f.Stream.ID], e.MessageID)
			}
		}
		if len(found) != 2 || gocmp.Diff([]string{"other", "a", "c"}, got[twin]) != "" {
			t.Errorf("streams of by_last: %v; want the concurrent one (%d) with other, a, c, and one for i-8", got, twin)
		}
		st, err := pg.StreamByID(ctx, twin)
		if err != nil || st.FireTimestamp.IsZero() || !st.LastEvent.Equal(t0.Add(2*time.Minute)) {
			t.Errorf("concurrent stream after the batch: %+v, %v; want ready to fire, last event +2m", st, err)
		}
	})

	t.Run("a worker claimed the stream", func(t *testing.T) {
		pg := enginetest.Postgres(t)
		ctx := t.Context()
		clock := &settableClock{t0}
		m := newBatchManager(t, pg, clock)
		if _, err := m.AddEvent(ctx, instanceEvent("first", "compute.instance.update", "i-7", t0)); err != nil {
			t.Fatal(err)
		}
		var claimed int64
		// A claim inside the batch's transaction, after the lookup: the
		// stored stream is no longer open and active when appended to.
		m = newBatchManager(t, hookStore{Store: pg, afterOpen: func(ctx context.Context, tx db.Ops, open map[db.StreamKey]stream.Stream) error {
			s, ok := open[key("i-7")]
			if !ok || claimed != 0 {
				return nil
			}
			claimed = s.ID
			_, err := tx.SetStreamState(ctx, db.SetStateParams{ID: s.ID, SerialNo: s.SerialNo, State: stream.StateFiring})
			return err
		}}, clock)
		clock.now = t0.Add(time.Minute)
		if _, err := m.AddEvents(ctx, []stream.Event{
			instanceEvent("second", "compute.instance.update", "i-7", t0.Add(time.Minute)),
			instanceEvent("third", "compute.instance.update", "i-7", t0.Add(time.Minute)),
		}); err != nil {
			t.Fatal(err)
		}
		if claimed == 0 {
			t.Fatal("the batch path did not find the stored stream")
		}
		var got []string
		for _, s := range storedStreams(t, pg) {
			if s.Name == "by_last" {
				got = append(got, fmt.Sprintf("%s open=%v: %s", s.State, s.Open, s.Events))
			}
		}
		want := []string{"firing open=false: first", "active open=true: second third"}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("streams of by_last (-want +got):\n%s", diff)
		}
	})
}
