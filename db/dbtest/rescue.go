package dbtest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

func exerciseRescue(t *testing.T, open OpenFunc) {
	t.Run("StaleClaims", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
		claim := func(name string, state stream.State, lease time.Time) int64 {
			id := create(t, s, streamSpec{name: name, fire: h(0), expire: h(1)})
			if _, err := s.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 0, State: state, ClaimedBy: ptr("w-" + name), LeaseUntil: &lease}); err != nil {
				t.Fatalf("claim %s: %v", name, err)
			}
			return id
		}
		late := claim("firing_late", stream.StateFiring, h(3))
		early := claim("expiring_early", stream.StateExpiring, h(1))
		mid := claim("firing_mid", stream.StateFiring, h(2))
		claim("firing_live", stream.StateFiring, h(10))
		exact := claim("firing_exact", stream.StateFiring, h(4))
		// A finished stream with an old lease is not a claim.
		done := claim("done", stream.StateFiring, h(1))
		setState(t, s, done, stream.StateCompleted)

		tests := []struct {
			name  string
			now   time.Time
			limit int
			want  []int64
		}{
			{"none", h(1), 10, nil},
			{"oldest_first", h(4), 10, []int64{early, mid, late}}, // lease_until < now is strict
			{"limit", h(4), 2, []int64{early, mid}},
			{"later", h(5), 10, []int64{early, mid, late, exact}},
		}
		for _, tc := range tests {
			got, err := s.StaleClaims(ctx, tc.now, tc.limit)
			if err != nil {
				t.Fatalf("StaleClaims: %v", err)
			}
			if diff := cmp.Diff(tc.want, streamIDs(got), cmpOpts); diff != "" {
				t.Errorf("%s: StaleClaims(%s, %d) (-want +got):\n%s", tc.name, stream.FormatTime(tc.now), tc.limit, diff)
			}
		}
		got, err := s.StaleClaims(ctx, h(4), 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("StaleClaims = %v, %v", got, err)
		}
		if got[0].ClaimedBy != "w-expiring_early" || !got[0].LeaseUntil.Equal(h(1)) {
			t.Errorf("stale claim: claimed by %q until %s, want w-expiring_early until %s", got[0].ClaimedBy, got[0].LeaseUntil, h(1))
		}
	})

	t.Run("RescueIsACAS", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "r", fire: base, expire: at(time.Hour)})
		lease := at(time.Minute)
		claimed, err := s.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 0, State: stream.StateFiring, ClaimedBy: ptr("dead"), LeaseUntil: &lease})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		stale, err := s.StaleClaims(ctx, at(time.Hour), 10)
		if err != nil || len(stale) != 1 || stale[0].SerialNo != claimed.SerialNo {
			t.Fatalf("StaleClaims = %v, %v; want the claimed stream", stale, err)
		}
		// Two rescuers saw the same row: one wins, one loses.
		p := db.SetStateParams{ID: id, SerialNo: stale[0].SerialNo, State: stream.StateRetryFire, ClaimedBy: ptr(""), LeaseUntil: &time.Time{}, Attempts: ptr(1)}
		rescued, err := s.SetStreamState(ctx, p)
		if err != nil {
			t.Fatalf("first rescue: %v", err)
		}
		_, err = s.SetStreamState(ctx, p)
		wantErr(t, "second rescue of the same claim", err, db.ErrConflict)
		if rescued.State != stream.StateRetryFire || rescued.ClaimedBy != "" || !rescued.LeaseUntil.IsZero() || rescued.Attempts != 1 {
			t.Errorf("rescued stream = %s, claimed by %q until %s, attempts %d; want retry_fire, unclaimed, 1 attempt",
				rescued.State, rescued.ClaimedBy, rescued.LeaseUntil, rescued.Attempts)
		}
		if stale, err := s.StaleClaims(ctx, at(time.Hour), 10); err != nil || len(stale) != 0 {
			t.Errorf("StaleClaims after the rescue = %v, %v; want none", streamIDs(stale), err)
		}
		ready, err := s.ReadyStreams(ctx, db.ReadyParams{Action: db.Fire, Now: at(time.Hour), Limit: 10})
		if err != nil || len(ready) != 1 || ready[0].ID != id {
			t.Errorf("ReadyStreams(fire) after the rescue = %v, %v; want the rescued stream", streamIDs(ready), err)
		}
	})
}
