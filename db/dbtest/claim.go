package dbtest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// exerciseClaimReady checks that a transition with ReadyFor succeeds exactly
// for the streams ReadyStreams returns for that action and time, and that
// a stream which stopped being ready (an append moved its expiry and made
// it ready to fire) cannot be claimed for expiry from a stale list.
func exerciseClaimReady(t *testing.T, open OpenFunc) {
	h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
	cases := []struct {
		name   string
		action db.Action
		now    time.Time
	}{
		{"fire", db.Fire, h(6)},
		{"expire", db.Expire, h(11)},
		{"expire_late", db.Expire, h(31)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := setupReady(t, open)
			ready, err := b.s.ReadyStreams(t.Context(), db.ReadyParams{Action: tc.action, Now: tc.now})
			if err != nil {
				t.Fatal(err)
			}
			var want []int64
			for _, s := range ready {
				want = append(want, s.ID)
			}
			target := stream.StateFiring
			if tc.action == db.Expire {
				target = stream.StateExpiring
			}
			for name, id := range b.ids {
				cur, err := b.s.StreamByID(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				_, err = b.s.SetStreamState(t.Context(), db.SetStateParams{
					ID: id, SerialNo: cur.SerialNo, State: target, ReadyFor: tc.action, ReadyAt: tc.now,
				})
				isReady := slices.Contains(want, id)
				switch {
				case isReady && err != nil:
					t.Errorf("%s is ready but the ready claim failed: %v", name, err)
				case !isReady && !errors.Is(err, db.ErrConflict):
					t.Errorf("%s is not ready: claim error %v, want db.ErrConflict", name, err)
				}
			}
		})
	}

	t.Run("stale_expire_list", func(t *testing.T) {
		s := open(t)
		id := create(t, s, streamSpec{name: "t", expire: h(1)})
		ready, err := s.ReadyStreams(t.Context(), db.ReadyParams{Action: db.Expire, Now: h(2)})
		if err != nil || len(ready) != 1 {
			t.Fatalf("ReadyStreams: %v %d, want the stream", err, len(ready))
		}
		// An ingester appends: the stream becomes ready to fire and its
		// expiry moves on. The serial does not change.
		if err := s.AppendToStream(t.Context(), db.AppendParams{
			StreamID: id, FirstEvent: base, LastEvent: base, ExpireTimestamp: h(3), FireTimestamp: h(2),
		}); err != nil {
			t.Fatal(err)
		}
		_, err = s.SetStreamState(t.Context(), db.SetStateParams{
			ID: id, SerialNo: ready[0].SerialNo, State: stream.StateExpiring, ReadyFor: db.Expire, ReadyAt: h(2),
		})
		if !errors.Is(err, db.ErrConflict) {
			t.Fatalf("expiry claim from a stale list: %v, want db.ErrConflict", err)
		}
		if _, err := s.SetStreamState(t.Context(), db.SetStateParams{
			ID: id, SerialNo: ready[0].SerialNo, State: stream.StateFiring, ReadyFor: db.Fire, ReadyAt: h(2).Add(time.Microsecond),
		}); err != nil {
			t.Fatalf("fire claim: %v", err)
		}
	})
}
