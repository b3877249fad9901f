package dbtest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// exerciseFixture checks db.FixtureLoader, for stores that have it.
func exerciseFixture(t *testing.T, open OpenFunc) {
	load := func(t *testing.T, f db.Fixture) db.Store {
		t.Helper()
		s := open(t)
		fl, ok := s.(db.FixtureLoader)
		if !ok {
			t.Skip("the store has no FixtureLoader")
		}
		if err := fl.LoadFixture(t.Context(), f); err != nil {
			t.Fatalf("LoadFixture: %v", err)
		}
		return s
	}
	h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }

	t.Run("RowsAndIDs", func(t *testing.T) {
		t.Parallel()
		evs := []db.FixtureEvent{
			{ID: 10, Event: newEvent("fx-10", "test.fx", h(2), map[string]stream.Value{"n": stream.Int(1)})},
			{ID: 20, Event: newEvent("fx-20", "test.fx", h(1), nil)},
		}
		st := stream.Stream{
			ID: 5, Name: "fx", State: stream.StateError, SerialNo: 3, FirstEvent: h(1), LastEvent: h(2),
			ExpireTimestamp: h(3), FireTimestamp: h(4), DistinguishedBy: dist42(),
		}
		s := load(t, db.Fixture{Events: evs, Streams: []db.FixtureStream{{Stream: st, EventIDs: []int64{10, 20}}}})
		ctx := t.Context()
		got, err := s.EventByMessageID(ctx, "fx-10")
		if err != nil || got.ID != 10 {
			t.Fatalf("EventByMessageID(fx-10) = id %d, %v; want 10", got.ID, err)
		}
		if diff := cmp.Diff(evs[0].Event, got.Event, cmpOpts); diff != "" {
			t.Errorf("fixture event (-want +got):\n%s", diff)
		}
		want := st
		want.Key = stream.Key(st.DistinguishedBy)
		if diff := cmp.Diff(want, streamByID(t, s, 5), cmpOpts); diff != "" {
			t.Errorf("fixture stream (-want +got):\n%s", diff)
		}
		evsOf, err := s.StreamEvents(ctx, 5)
		if err != nil {
			t.Fatalf("StreamEvents: %v", err)
		}
		if diff := cmp.Diff([]string{"fx-20", "fx-10"}, messageIDs(evsOf)); diff != "" {
			t.Errorf("fixture links (-want +got):\n%s", diff)
		}
		// New rows get ids after the fixture's.
		ids := save(t, s, newEvent("fx-new", "test.fx", h(5), nil))
		if ids[0] <= 20 {
			t.Errorf("new event id %d, want > 20", ids[0])
		}
		if id := create(t, s, streamSpec{name: "fx"}); id <= 5 {
			t.Errorf("new stream id %d, want > 5", id)
		}
	})

	t.Run("TwinActiveStreams", func(t *testing.T) {
		t.Parallel()
		// The original's data may hold two active streams with one key;
		// the first listed is loaded open, the other closed.
		mk := func(id int64) db.FixtureStream {
			return db.FixtureStream{Stream: stream.Stream{ID: id, Name: "twin", State: stream.StateActive, FirstEvent: h(1), LastEvent: h(1), ExpireTimestamp: h(9), DistinguishedBy: map[string]stream.Value{}}}
		}
		s := load(t, db.Fixture{Streams: []db.FixtureStream{mk(3), mk(4)}})
		got, err := s.OpenStream(t.Context(), "twin", stream.Key(nil))
		if err != nil || got.ID != 3 {
			t.Errorf("OpenStream = %d, %v; want the first twin, 3", got.ID, err)
		}
		if st := streamByID(t, s, 4); st.Open || st.State != stream.StateActive {
			t.Errorf("second twin: open %v, state %s; want closed and active", st.Open, st.State)
		}
	})
}
