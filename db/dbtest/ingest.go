package dbtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// dist42 are distinguishing values of every kind.
func dist42() map[string]stream.Value {
	return map[string]stream.Value{
		"instance_id": stream.String("zzzz-xxxx-yyyy-wwww"),
		"memory_mb":   stream.Int(4096),
		"test_weight": stream.Float(3.1415),
		"launched_at": stream.Datetime(time.Date(2014, 7, 8, 9, 40, 50, 77777000, time.UTC)),
		"timestamp":   stream.TimeRange(time.Date(2014, 7, 8, 0, 0, 0, 27000, time.UTC), time.Date(2014, 7, 9, 0, 0, 0, 27000, time.UTC)),
	}
}

func exerciseIngest(t *testing.T, open OpenFunc) {
	t.Run("CreateAndOpen", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		ids := save(t, s,
			newEvent("c-3", "test.c", at(2*time.Hour), nil),
			newEvent("c-1", "test.c", at(0), nil),
			newEvent("c-2b", "test.c", at(time.Hour), nil),
			newEvent("c-2a", "test.c", at(time.Hour), nil),
		)
		dist := dist42()
		p := db.NewStream{
			Name: "test_trigger", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: at(0), LastEvent: at(2 * time.Hour), ExpireTimestamp: at(26 * time.Hour),
			FireCounts: []int{1, 0}, EventIDs: ids, Now: at(3 * time.Hour),
		}
		id, created, err := s.CreateStream(ctx, p)
		if err != nil || !created || id == 0 {
			t.Fatalf("CreateStream = %d, %v, %v; want a new stream", id, created, err)
		}
		want := stream.Stream{
			ID: id, Name: "test_trigger", State: stream.StateActive, SerialNo: 0,
			FirstEvent: at(0), LastEvent: at(2 * time.Hour), ExpireTimestamp: at(26 * time.Hour),
			DistinguishedBy: dist, Key: stream.Key(dist), Open: true, FireCounts: []int{1, 0},
			CreatedAt: at(3 * time.Hour),
		}
		got, err := s.OpenStream(ctx, "test_trigger", stream.Key(dist))
		if err != nil {
			t.Fatalf("OpenStream: %v", err)
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("OpenStream (-want +got):\n%s", diff)
		}
		if got, err = s.StreamByID(ctx, id); err != nil {
			t.Fatalf("StreamByID: %v", err)
		} else if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("StreamByID (-want +got):\n%s", diff)
		}
		evs, err := s.StreamEvents(ctx, id)
		if err != nil {
			t.Fatalf("StreamEvents: %v", err)
		}
		// Ordered by timestamp, then id (c-2b was stored before c-2a).
		if diff := cmp.Diff([]string{"c-1", "c-2b", "c-2a", "c-3"}, messageIDs(evs)); diff != "" {
			t.Errorf("StreamEvents order (-want +got):\n%s", diff)
		}
	})

	t.Run("SaveEncodedEvents", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// db.EncodeEvents refuses what SaveEvents refuses.
		long := newEvent(strings.Repeat("x", stream.StorageLimits().MessageIDBytes+1), "test.enc", at(0), nil)
		if _, err := db.EncodeEvents([]stream.Event{newEvent("enc-ok", "test.enc", at(0), nil), long}); !errors.Is(err, stream.ErrInvalidEvent) {
			t.Errorf("EncodeEvents(an event beyond the storage limits) = %v, want stream.ErrInvalidEvent", err)
		}
		err := s.InTx(t.Context(), func(ctx context.Context, tx db.Ops) error {
			es, ok := tx.(db.EncodedEventSaver)
			if !ok {
				t.Skipf("the Ops of a transaction (%T) do not implement db.EncodedEventSaver", tx)
			}
			save(t, tx, newEvent("enc-0", "test.enc", at(0), nil))
			dist := dist42()
			events := []stream.Event{
				newEvent("enc-1", "test.enc", at(time.Hour), dist),
				newEvent("enc-0", "test.enc", at(0), nil),
				newEvent("enc-2", "test.enc", at(2*time.Hour), nil),
				newEvent("enc-1", "test.enc", at(time.Hour), dist),
			}
			e, err := db.EncodeEvents(events)
			if err != nil {
				t.Fatalf("EncodeEvents: %v", err)
			}
			ids, err := es.SaveEncodedEvents(ctx, e)
			if err != nil {
				t.Fatalf("SaveEncodedEvents: %v", err)
			}
			if len(ids) != 4 || ids[0] == 0 || ids[1] != 0 || ids[2] == 0 || ids[3] != 0 || ids[2] <= ids[0] {
				t.Fatalf("SaveEncodedEvents(new, stored before, new, repeated) = %v; want increasing ids for the new ones, 0 for the others", ids)
			}
			got, err := tx.EventByMessageID(ctx, "enc-1")
			if err != nil {
				t.Fatalf("EventByMessageID: %v", err)
			}
			if diff := cmp.Diff(events[0], got.Event, cmpOpts); diff != "" || got.ID != ids[0] {
				t.Errorf("EventByMessageID(enc-1) = id %d (want %d), diff (-want +got):\n%s", got.ID, ids[0], diff)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("OpenStreamMissing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.OpenStream(t.Context(), "nothing", stream.Key(nil))
		wantErr(t, "OpenStream on an empty store", err, db.ErrNotFound)
	})

	t.Run("TwinRefused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		ids := save(t, s, newEvent("tw-1", "test.t", base, nil), newEvent("tw-2", "test.t", base, nil))
		first := create(t, s, streamSpec{name: "twin", dist: dist42(), events: ids[:1]})
		dist := dist42()
		id, created, err := s.CreateStream(ctx, db.NewStream{
			Name: "twin", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: base, LastEvent: base, EventIDs: ids[1:], Now: base,
		})
		if err != nil || created {
			t.Fatalf("second CreateStream = %d, %v, %v; want created false and no error", id, created, err)
		}
		if n, err := s.CountStreams(ctx, db.FindStreamsParams{Name: "twin"}); err != nil || n != 1 {
			t.Errorf("CountStreams(twin) = %d, %v; want 1", n, err)
		}
		evs, err := s.StreamEvents(ctx, first)
		if err != nil {
			t.Fatalf("StreamEvents: %v", err)
		}
		if diff := cmp.Diff([]string{"tw-1"}, messageIDs(evs)); diff != "" {
			t.Errorf("the refused create linked events (-want +got):\n%s", diff)
		}
	})

	t.Run("TypedKeys", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		// "42", 42 and 42.0 are three keys; the same key under another
		// trigger name is another stream.
		keys := []struct {
			name string
			dist map[string]stream.Value
		}{
			{"t", map[string]stream.Value{"n": stream.String("42")}},
			{"t", map[string]stream.Value{"n": stream.Int(42)}},
			{"t", map[string]stream.Value{"n": stream.Float(42)}},
			{"t", map[string]stream.Value{"n": stream.Datetime(time.UnixMicro(42))}},
			{"t", map[string]stream.Value{}},
			{"u", map[string]stream.Value{"n": stream.Int(42)}},
		}
		ids := map[int64]bool{}
		for _, k := range keys {
			id := create(t, s, streamSpec{name: k.name, dist: k.dist})
			ids[id] = true
			got, err := s.OpenStream(ctx, k.name, stream.Key(k.dist))
			if err != nil || got.ID != id {
				t.Errorf("OpenStream(%s, %v) = %d, %v; want %d", k.name, k.dist, got.ID, err, id)
			}
		}
		if len(ids) != len(keys) {
			t.Errorf("%d distinct keys gave %d streams", len(keys), len(ids))
		}
	})

	t.Run("ExactKeyOnly", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		create(t, s, streamSpec{name: "test_trigger", dist: dist42()})
		// D-14: a subset of the distinguishing values is another key.
		sub := map[string]stream.Value{"instance_id": stream.String("zzzz-xxxx-yyyy-wwww")}
		_, err := s.OpenStream(t.Context(), "test_trigger", stream.Key(sub))
		wantErr(t, "OpenStream with a subset of the key", err, db.ErrNotFound)
		_, err = s.OpenStream(t.Context(), "test_trigger", stream.Key(nil))
		wantErr(t, "OpenStream with the empty key", err, db.ErrNotFound)
		// And a superset.
		sup := dist42()
		sup["extra"] = stream.Int(1)
		_, err = s.OpenStream(t.Context(), "test_trigger", stream.Key(sup))
		wantErr(t, "OpenStream with a superset of the key", err, db.ErrNotFound)
	})

	t.Run("Append", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		ids := save(t, s,
			newEvent("ap-1", "test.a", at(time.Hour), nil),
			newEvent("ap-0", "test.a", at(0), nil),
			newEvent("ap-2", "test.a", at(2*time.Hour), nil),
		)
		id := create(t, s, streamSpec{name: "app", first: at(time.Hour), expire: at(5 * time.Hour), counts: []int{0}, events: ids[:1]})
		err := s.AppendToStream(ctx, db.AppendParams{
			StreamID: id, EventIDs: []int64{ids[1], ids[0]}, // ap-1 again: linked once
			FirstEvent: at(0), LastEvent: at(time.Hour), ExpireTimestamp: at(4 * time.Hour), FireCounts: []int{1},
		})
		if err != nil {
			t.Fatalf("AppendToStream: %v", err)
		}
		got := streamByID(t, s, id)
		want := stream.Stream{
			ID: id, Name: "app", State: stream.StateActive, FirstEvent: at(0), LastEvent: at(time.Hour),
			ExpireTimestamp: at(4 * time.Hour), Key: stream.Key(nil), Open: true, FireCounts: []int{1}, CreatedAt: at(time.Hour),
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("after AppendToStream (-want +got):\n%s", diff)
		}
		// Becoming ready: the fire timestamp is set and the counts go.
		err = s.AppendToStream(ctx, db.AppendParams{
			StreamID: id, EventIDs: ids[2:], FirstEvent: at(0), LastEvent: at(2 * time.Hour),
			ExpireTimestamp: at(6 * time.Hour), FireTimestamp: at(3 * time.Hour),
		})
		if err != nil {
			t.Fatalf("AppendToStream: %v", err)
		}
		got = streamByID(t, s, id)
		want.LastEvent, want.ExpireTimestamp, want.FireTimestamp, want.FireCounts = at(2*time.Hour), at(6*time.Hour), at(3*time.Hour), nil
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("after the ready AppendToStream (-want +got):\n%s", diff)
		}
		// A zero fire timestamp leaves the set one alone.
		err = s.AppendToStream(ctx, db.AppendParams{
			StreamID: id, FirstEvent: at(0), LastEvent: at(2 * time.Hour), ExpireTimestamp: at(6 * time.Hour),
		})
		if err != nil {
			t.Fatalf("AppendToStream: %v", err)
		}
		if got := streamByID(t, s, id); !got.FireTimestamp.Equal(at(3 * time.Hour)) {
			t.Errorf("fire timestamp after an append without one = %s, want %s", got.FireTimestamp, at(3*time.Hour))
		}
		evs, err := s.StreamEvents(ctx, id)
		if err != nil {
			t.Fatalf("StreamEvents: %v", err)
		}
		if diff := cmp.Diff([]string{"ap-0", "ap-1", "ap-2"}, messageIDs(evs)); diff != "" {
			t.Errorf("StreamEvents (-want +got):\n%s", diff)
		}
	})

	// An append gives every column, changed or not; a driver may skip
	// writing those that keep their value (SQLite does, for the times),
	// and each result must be the same as writing them all.
	t.Run("AppendChangedAndUnchangedTimes", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "times", expire: at(5 * time.Hour), counts: []int{0}})
		want := streamByID(t, s, id)
		steps := []struct {
			name           string
			expire, fire   time.Time
			counts         []int
			wantFire       time.Time
			wantFireCounts []int
		}{
			{name: "same expiry, no fire time", expire: at(5 * time.Hour), counts: []int{1}, wantFireCounts: []int{1}},
			{name: "same expiry, first fire time", expire: at(5 * time.Hour), fire: at(3 * time.Hour), wantFire: at(3 * time.Hour)},
			{name: "same expiry and fire time", expire: at(5 * time.Hour), fire: at(3 * time.Hour), wantFire: at(3 * time.Hour)},
			{name: "same expiry, no fire time given", expire: at(5 * time.Hour), counts: []int{2}, wantFire: at(3 * time.Hour), wantFireCounts: []int{2}},
			{name: "same expiry, new fire time", expire: at(5 * time.Hour), fire: at(2 * time.Hour), wantFire: at(2 * time.Hour)},
			{name: "new expiry, same fire time", expire: at(7 * time.Hour), fire: at(2 * time.Hour), wantFire: at(2 * time.Hour)},
			{name: "new expiry and fire time", expire: at(6 * time.Hour), fire: at(time.Hour), wantFire: at(time.Hour)},
		}
		for i, st := range steps {
			last := at(time.Duration(i+1) * time.Minute)
			err := s.AppendToStream(ctx, db.AppendParams{StreamID: id, FirstEvent: base, LastEvent: last,
				ExpireTimestamp: st.expire, FireTimestamp: st.fire, FireCounts: st.counts})
			if err != nil {
				t.Fatalf("%s: AppendToStream: %v", st.name, err)
			}
			want.LastEvent, want.ExpireTimestamp, want.FireTimestamp, want.FireCounts = last, st.expire, st.wantFire, st.wantFireCounts
			if diff := cmp.Diff(want, streamByID(t, s, id), cmpOpts); diff != "" {
				t.Errorf("%s: stream after the append (-want +got):\n%s", st.name, diff)
			}
		}
		err := s.AppendToStream(ctx, db.AppendParams{StreamID: id + 1000, FirstEvent: base, LastEvent: base, ExpireTimestamp: at(5 * time.Hour)})
		wantErr(t, "AppendToStream to a stream that does not exist", err, db.ErrConflict)
	})

	t.Run("NullFireTimestampStaysNull", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := create(t, s, streamSpec{name: "n", expire: at(time.Hour), counts: []int{0, 0}})
		err := s.AppendToStream(t.Context(), db.AppendParams{StreamID: id, FirstEvent: base, LastEvent: base, ExpireTimestamp: at(time.Hour), FireCounts: []int{1, 0}})
		if err != nil {
			t.Fatalf("AppendToStream: %v", err)
		}
		got := streamByID(t, s, id)
		if !got.FireTimestamp.IsZero() {
			t.Errorf("fire timestamp = %s, want none", got.FireTimestamp)
		}
		if diff := cmp.Diff([]int{1, 0}, got.FireCounts); diff != "" {
			t.Errorf("fire counts (-want +got):\n%s", diff)
		}
	})

	t.Run("AppendRefusedAfterClaimOrClose", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		ids := save(t, s, newEvent("rf-1", "test.r", base, nil), newEvent("rf-2", "test.r", base, nil))
		claimed := create(t, s, streamSpec{name: "claimed", events: ids[:1]})
		setState(t, s, claimed, stream.StateFiring)
		closed := create(t, s, streamSpec{name: "closed", events: ids[:1]})
		if err := s.CloseStream(ctx, closed); err != nil {
			t.Fatalf("CloseStream: %v", err)
		}
		for _, id := range []int64{claimed, closed} {
			before := streamByID(t, s, id)
			err := s.AppendToStream(ctx, db.AppendParams{StreamID: id, EventIDs: ids[1:], FirstEvent: base, LastEvent: at(time.Hour), ExpireTimestamp: at(time.Hour)})
			wantErr(t, "AppendToStream to a claimed or closed stream", err, db.ErrConflict)
			after := streamByID(t, s, id)
			if diff := cmp.Diff(before, after, cmpOpts); diff != "" {
				t.Errorf("the refused append changed stream %d (-before +after):\n%s", id, diff)
			}
			evs, err := s.StreamEvents(ctx, id)
			if err != nil {
				t.Fatalf("StreamEvents: %v", err)
			}
			if diff := cmp.Diff([]string{"rf-1"}, messageIDs(evs)); diff != "" {
				t.Errorf("the refused append linked events (-want +got):\n%s", diff)
			}
		}
	})

	t.Run("CloseThenReopenKey", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		dist := map[string]stream.Value{"instance_id": stream.String("i-1")}
		old := create(t, s, streamSpec{name: "late", dist: dist, expire: at(time.Hour)})
		if err := s.CloseStream(ctx, old); err != nil {
			t.Fatalf("CloseStream: %v", err)
		}
		if err := s.CloseStream(ctx, old); err != nil {
			t.Errorf("CloseStream of a closed stream: %v, want no error", err)
		}
		_, err := s.OpenStream(ctx, "late", stream.Key(dist))
		wantErr(t, "OpenStream after CloseStream", err, db.ErrNotFound)
		st := streamByID(t, s, old)
		if st.Open || st.State != stream.StateActive || st.SerialNo != 0 {
			t.Errorf("closed stream: open %v, state %s, serial %d; want closed, active, 0", st.Open, st.State, st.SerialNo)
		}
		// A late event opens a new stream beside the expired one.
		fresh := create(t, s, streamSpec{name: "late", dist: dist, expire: at(3 * time.Hour)})
		if fresh == old {
			t.Fatalf("new stream reused id %d", old)
		}
		got, err := s.OpenStream(ctx, "late", stream.Key(dist))
		if err != nil || got.ID != fresh {
			t.Errorf("OpenStream = %d, %v; want the new stream %d", got.ID, err, fresh)
		}
		// The old one still expires.
		ready, err := s.ReadyStreams(ctx, db.ReadyParams{Action: db.Expire, Now: at(2 * time.Hour), Limit: 10})
		if err != nil {
			t.Fatalf("ReadyStreams: %v", err)
		}
		if diff := cmp.Diff([]int64{old}, streamIDs(ready)); diff != "" {
			t.Errorf("ready to expire (-want +got):\n%s", diff)
		}
		wantErr(t, "CloseStream(missing)", s.CloseStream(ctx, 987654), db.ErrNotFound)
	})

	t.Run("LeavingActiveCloses", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "claimed", dist: dist42()})
		st := setState(t, s, id, stream.StateFiring)
		if st.Open {
			t.Errorf("a firing stream is still open")
		}
		_, err := s.OpenStream(ctx, "claimed", stream.Key(dist42()))
		wantErr(t, "OpenStream of a firing stream", err, db.ErrNotFound)
		create(t, s, streamSpec{name: "claimed", dist: dist42()})
	})

	t.Run("CreateWithUnknownEventFails", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		_, created, err := s.CreateStream(ctx, db.NewStream{Name: "x", Key: stream.Key(nil), FirstEvent: base, LastEvent: base, EventIDs: []int64{424242}, Now: base})
		if err == nil || created {
			t.Fatalf("CreateStream linking a missing event = %v, %v; want an error", created, err)
		}
		if n, err := s.CountStreams(ctx, db.FindStreamsParams{}); err != nil || n != 0 {
			t.Errorf("CountStreams after the failed create = %d, %v; want 0", n, err)
		}
	})
}

// ignoreClaim ignores the claim and retry bookkeeping of streams.
var ignoreClaim = cmpopts.IgnoreFields(stream.Stream{}, "ClaimedBy", "LeaseUntil", "Attempts", "LastError", "CreatedAt")
