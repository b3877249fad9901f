package dbtest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

func exerciseStateCAS(t *testing.T, open OpenFunc) {
	t.Run("Transition", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "cas", dist: dist42(), expire: at(time.Hour), fire: at(30 * time.Minute)})
		lease := at(2 * time.Hour)
		got, err := s.SetStreamState(ctx, db.SetStateParams{
			ID: id, SerialNo: 0, State: stream.StateFiring,
			ClaimedBy: ptr("worker-1"), LeaseUntil: &lease, Attempts: ptr(1),
		})
		if err != nil {
			t.Fatalf("SetStreamState(firing): %v", err)
		}
		want := stream.Stream{
			ID: id, Name: "cas", State: stream.StateFiring, SerialNo: 1, FirstEvent: base, LastEvent: base,
			ExpireTimestamp: at(time.Hour), FireTimestamp: at(30 * time.Minute), DistinguishedBy: dist42(),
			Key: stream.Key(dist42()), Open: false, ClaimedBy: "worker-1", LeaseUntil: lease, Attempts: 1,
			CreatedAt: at(time.Hour),
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("SetStreamState result (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, streamByID(t, s, id), cmpOpts); diff != "" {
			t.Errorf("stored after SetStreamState (-want +got):\n%s", diff)
		}
		// Fail: record the error, clear the claim, move the deadlines.
		got, err = s.SetStreamState(ctx, db.SetStateParams{
			ID: id, SerialNo: 1, State: stream.StateError,
			ClaimedBy: ptr(""), LeaseUntil: &time.Time{}, LastError: ptr("handler usage: boom"),
			FireTimestamp: ptr(at(3 * time.Hour)), ExpireTimestamp: ptr(at(4 * time.Hour)),
		})
		if err != nil {
			t.Fatalf("SetStreamState(error): %v", err)
		}
		want.State, want.SerialNo, want.ClaimedBy, want.LeaseUntil, want.LastError = stream.StateError, 2, "", time.Time{}, "handler usage: boom"
		want.FireTimestamp, want.ExpireTimestamp = at(3*time.Hour), at(4*time.Hour)
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("SetStreamState(error) result (-want +got):\n%s", diff)
		}
		// Clearing the fire timestamp with a non-nil zero time.
		got, err = s.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 2, State: stream.StateError, FireTimestamp: &time.Time{}, LastError: ptr("")})
		if err != nil {
			t.Fatalf("SetStreamState: %v", err)
		}
		if !got.FireTimestamp.IsZero() || got.LastError != "" || got.SerialNo != 3 || got.Attempts != 1 {
			t.Errorf("after clearing: fire %s, last error %q, serial %d, attempts %d; want none, empty, 3, 1 (kept)",
				got.FireTimestamp, got.LastError, got.SerialNo, got.Attempts)
		}
	})

	t.Run("StaleSerial", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "cas"})
		if _, err := s.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 0, State: stream.StateFiring}); err != nil {
			t.Fatalf("first SetStreamState: %v", err)
		}
		// The same stale serial again: the original's LockError.
		_, err := s.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 0, State: stream.StateFiring})
		wantErr(t, "SetStreamState with a stale serial", err, db.ErrConflict)
		_, err = s.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 5, State: stream.StateCompleted})
		wantErr(t, "SetStreamState with a future serial", err, db.ErrConflict)
		if st := streamByID(t, s, id); st.State != stream.StateFiring || st.SerialNo != 1 {
			t.Errorf("after the lost CAS: state %s serial %d, want firing 1", st.State, st.SerialNo)
		}
		_, err = s.SetStreamState(ctx, db.SetStateParams{ID: 987654, SerialNo: 0, State: stream.StateFiring})
		wantErr(t, "SetStreamState of a missing stream", err, db.ErrNotFound)
		if _, err = s.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 1, State: stream.State(99)}); err == nil {
			t.Errorf("SetStreamState to state 99 succeeded")
		}
	})

	t.Run("SerialCountsEveryTransition", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := create(t, s, streamSpec{name: "serial"})
		// Fail, reset, fire again, complete: active 0 → firing 1 → error 2
		// → retry_fire 3 → firing 4 → completed 5.
		setState(t, s, id, stream.StateFiring)
		setState(t, s, id, stream.StateError)
		st, err := s.ResetStream(t.Context(), id)
		if err != nil {
			t.Fatalf("ResetStream: %v", err)
		}
		if st.State != stream.StateRetryFire || st.SerialNo != 3 {
			t.Fatalf("ResetStream = %s/%d, want retry_fire/3", st.State, st.SerialNo)
		}
		setState(t, s, id, stream.StateFiring)
		st = setState(t, s, id, stream.StateCompleted)
		if st.SerialNo != 5 {
			t.Errorf("serial after fail, reset, fire = %d, want 5", st.SerialNo)
		}
	})

	t.Run("StreamByIDMissing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.StreamByID(t.Context(), 99)
		wantErr(t, "StreamByID(99)", err, db.ErrNotFound)
	})

	t.Run("StreamHasDistTrait", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := create(t, s, streamSpec{name: "d", dist: dist42()})
		d := dist42()
		tests := []struct {
			name  string
			trait string
			value stream.Value
			want  stream.Value
			found bool
		}{
			{"string", "instance_id", d["instance_id"], d["instance_id"], true},
			{"int", "memory_mb", stream.Int(4096), d["memory_mb"], true},
			{"float", "test_weight", stream.Float(3.1415), d["test_weight"], true},
			{"datetime", "launched_at", d["launched_at"], d["launched_at"], true},
			{"timerange", "timestamp", d["timestamp"], d["timestamp"], true},
			{"any_value", "instance_id", stream.Value{}, d["instance_id"], true},
			{"wrong_value", "instance_id", stream.String("other"), stream.Value{}, false},
			{"wrong_type", "memory_mb", stream.String("4096"), stream.Value{}, false},
			{"int_vs_float", "memory_mb", stream.Float(4096), stream.Value{}, false},
			{"range_other_end", "timestamp", stream.TimeRange(d["timestamp"].Time(), d["timestamp"].Time().Add(time.Hour)), stream.Value{}, false},
			{"missing_name", "nope", stream.Value{}, stream.Value{}, false},
		}
		for _, tc := range tests {
			got, found, err := s.StreamHasDistTrait(t.Context(), id, tc.trait, tc.value)
			if err != nil {
				t.Errorf("%s: StreamHasDistTrait: %v", tc.name, err)
				continue
			}
			if found != tc.found || !got.Equal(tc.want) {
				t.Errorf("%s: StreamHasDistTrait(%s, %v) = %v, %v; want %v, %v", tc.name, tc.trait, tc.value, got, found, tc.want, tc.found)
			}
		}
		_, _, err := s.StreamHasDistTrait(t.Context(), 987654, "instance_id", stream.Value{})
		wantErr(t, "StreamHasDistTrait of a missing stream", err, db.ErrNotFound)
	})
}
