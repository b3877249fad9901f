package dbtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

func exerciseResetPurgeTrim(t *testing.T, open OpenFunc) {
	t.Run("Reset", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		tests := []struct {
			name   string
			path   []stream.State
			want   stream.State
			serial int64
		}{
			{"error", []stream.State{stream.StateFiring, stream.StateError}, stream.StateRetryFire, 3},
			{"expire_error", []stream.State{stream.StateExpiring, stream.StateExpireError}, stream.StateRetryExpire, 3},
			{"active", nil, stream.StateActive, 0},
			{"firing", []stream.State{stream.StateFiring}, stream.StateFiring, 1},
			{"completed", []stream.State{stream.StateFiring, stream.StateCompleted}, stream.StateCompleted, 2},
			{"retry_fire", []stream.State{stream.StateFiring, stream.StateError, stream.StateRetryFire}, stream.StateRetryFire, 3},
		}
		for _, tc := range tests {
			id := create(t, s, streamSpec{name: "reset_" + tc.name, fire: at(time.Hour), expire: at(2 * time.Hour)})
			for _, st := range tc.path {
				setState(t, s, id, st)
			}
			before := streamByID(t, s, id)
			got, err := s.ResetStream(ctx, id)
			if err != nil {
				t.Fatalf("%s: ResetStream: %v", tc.name, err)
			}
			if got.State != tc.want || got.SerialNo != tc.serial {
				t.Errorf("%s: ResetStream = %s/%d, want %s/%d", tc.name, got.State, got.SerialNo, tc.want, tc.serial)
			}
			// Deadlines are kept, so the retry is picked up at once.
			if !got.FireTimestamp.Equal(before.FireTimestamp) || !got.ExpireTimestamp.Equal(before.ExpireTimestamp) {
				t.Errorf("%s: ResetStream changed the deadlines", tc.name)
			}
			if diff := cmp.Diff(got, streamByID(t, s, id), cmpOpts); diff != "" {
				t.Errorf("%s: ResetStream result differs from the stored stream (-result +stored):\n%s", tc.name, diff)
			}
		}
		_, err := s.ResetStream(ctx, 987654)
		wantOnly(t, "ResetStream of a missing stream", err, db.ErrNotFound)
	})

	// ResetStream's failures pass through the driver's error translation
	// like every other method's: the caller can tell a missing stream, a
	// cancelled call and a store that is gone apart, and a failed reset
	// changes nothing.
	t.Run("ResetErrors", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "reset_errors", fire: at(time.Hour)})
		setState(t, s, id, stream.StateFiring)
		failed := setState(t, s, id, stream.StateError)

		err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			_, err := tx.ResetStream(ctx, 987654)
			return err
		})
		wantOnly(t, "ResetStream of a missing stream in a transaction", err, db.ErrNotFound)

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err = s.ResetStream(cancelled, id)
		wantOnly(t, "ResetStream with a cancelled context", err, context.Canceled)

		errRollback := errors.New("roll back")
		err = s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			if _, err := tx.ResetStream(ctx, id); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("InTx = %v, want the error of fn", err)
		}
		if got := streamByID(t, s, id); got.State != failed.State || got.SerialNo != failed.SerialNo {
			t.Errorf("stream after failed resets = %s/%d, want %s/%d unchanged", got.State, got.SerialNo, failed.State, failed.SerialNo)
		}

		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		_, err = s.ResetStream(ctx, id)
		wantOnly(t, "ResetStream on a closed store", err, db.ErrUnavailable)
	})

	t.Run("Purge", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		ids := save(t, s, newEvent("p-1", "test.p", base, nil), newEvent("p-2", "test.p", at(time.Hour), nil))
		id := create(t, s, streamSpec{name: "purge", dist: dist42(), events: ids})
		other := create(t, s, streamSpec{name: "other", events: ids[:1]})
		if err := s.PurgeStream(ctx, id, -1); err != nil {
			t.Fatalf("PurgeStream: %v", err)
		}
		_, err := s.StreamByID(ctx, id)
		wantErr(t, "StreamByID after purge", err, db.ErrNotFound)
		if evs, err := s.StreamEvents(ctx, id); err != nil || len(evs) != 0 {
			t.Errorf("StreamEvents after purge = %v, %v; want none", messageIDs(evs), err)
		}
		for _, mid := range []string{"p-1", "p-2"} {
			if _, err := s.EventByMessageID(ctx, mid); err != nil {
				t.Errorf("event %s after purging its stream: %v (events stay)", mid, err)
			}
		}
		if evs, err := s.StreamEvents(ctx, other); err != nil || len(evs) != 1 {
			t.Errorf("other stream's events after purge = %v, %v; want [p-1]", messageIDs(evs), err)
		}
		// The purged stream's key is free again.
		create(t, s, streamSpec{name: "purge", dist: dist42()})
		wantErr(t, "PurgeStream of a missing stream", s.PurgeStream(ctx, id, -1), db.ErrNotFound)
	})

	t.Run("PurgeCAS", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "purge"})
		st := setState(t, s, id, stream.StateFiring)
		wantErr(t, "PurgeStream with a stale serial", s.PurgeStream(ctx, id, st.SerialNo-1), db.ErrConflict)
		if _, err := s.StreamByID(ctx, id); err != nil {
			t.Fatalf("stream after the lost purge: %v", err)
		}
		if err := s.PurgeStream(ctx, id, st.SerialNo); err != nil {
			t.Fatalf("PurgeStream with the current serial: %v", err)
		}
		wantErr(t, "PurgeStream of a purged stream", s.PurgeStream(ctx, id, st.SerialNo), db.ErrNotFound)
	})

	t.Run("Trim", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
		ids := save(t, s,
			newEvent("old-free-2", "test.t", h(2), nil),
			newEvent("old-free-1", "test.t", h(1), nil),
			newEvent("old-active", "test.t", h(0), nil),
			newEvent("old-completed", "test.t", h(3), nil),
			newEvent("old-error", "test.t", h(0), nil),
			newEvent("old-firing", "test.t", h(0), nil),
			newEvent("old-shared", "test.t", h(0), nil), // in a completed and an active stream
			newEvent("edge", "test.t", h(10), nil),
			newEvent("new", "test.t", h(20), nil),
		)
		byName := map[string]int64{}
		for i, n := range []string{"old-free-2", "old-free-1", "old-active", "old-completed", "old-error", "old-firing", "old-shared", "edge", "new"} {
			byName[n] = ids[i]
		}
		create(t, s, streamSpec{name: "active", events: []int64{byName["old-active"], byName["old-shared"]}})
		completed := create(t, s, streamSpec{name: "completed", events: []int64{byName["old-completed"], byName["old-shared"], byName["new"]}})
		setState(t, s, completed, stream.StateFiring)
		setState(t, s, completed, stream.StateCompleted)
		errored := create(t, s, streamSpec{name: "error", events: []int64{byName["old-error"]}})
		setState(t, s, errored, stream.StateFiring)
		setState(t, s, errored, stream.StateError)
		firing := create(t, s, streamSpec{name: "firing", events: []int64{byName["old-firing"]}})
		setState(t, s, firing, stream.StateFiring)

		// Oldest first, up to the limit.
		n, err := s.TrimEvents(ctx, h(10), 1)
		if err != nil || n != 1 {
			t.Fatalf("TrimEvents(limit 1) = %d, %v; want 1", n, err)
		}
		if _, err := s.EventByMessageID(ctx, "old-free-1"); err == nil {
			t.Errorf("old-free-1 (the oldest trimmable event) survived")
		}
		n, err = s.TrimEvents(ctx, h(10), 100)
		if err != nil || n != 2 {
			t.Fatalf("TrimEvents = %d, %v; want 2 (old-free-2, old-completed)", n, err)
		}
		left, err := s.FindEvents(ctx, db.FindEventsParams{Mark: "+"})
		if err != nil {
			t.Fatalf("FindEvents: %v", err)
		}
		want := []string{"old-active", "old-error", "old-firing", "old-shared", "edge", "new"}
		if diff := cmp.Diff(want, storedIDs(left)); diff != "" {
			t.Errorf("events after trimming (-want +got):\n%s", diff)
		}
		evs, err := s.StreamEvents(ctx, completed)
		if err != nil {
			t.Fatalf("StreamEvents: %v", err)
		}
		if diff := cmp.Diff([]string{"old-shared", "new"}, messageIDs(evs)); diff != "" {
			t.Errorf("completed stream's events after trimming (-want +got):\n%s", diff)
		}
		if n, err := s.TrimEvents(ctx, h(10), 100); err != nil || n != 0 {
			t.Errorf("second TrimEvents = %d, %v; want 0", n, err)
		}
	})
}
