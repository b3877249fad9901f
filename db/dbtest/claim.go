package dbtest

import (
	"errors"
	"fmt"
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
			t.Parallel()
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
		t.Parallel()
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

// exerciseBacklog: streams whose fire criteria are met and whose expiry
// time has passed too (workers fell behind) are fired, never expired,
// whatever order several workers take them in: no expire pass may claim
// one, and every fire pass may.
func exerciseBacklog(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
	const n = 40
	var ids []int64
	for i := range n {
		// Fire time before or after the expiry time: both have passed.
		fire := h(1 + i%3)
		ids = append(ids, create(t, s, streamSpec{name: "backlog", dist: instance(fmt.Sprint(i)), fire: fire, expire: h(2)}))
	}
	plain := create(t, s, streamSpec{name: "backlog_plain", expire: h(2)}) // no fire criteria met: expires
	now := h(10)
	// Each worker alternates expire and fire passes of a few streams, as
	// pipeline workers with a small batch size do.
	errs := race(4, func(w int) error {
		for pass := 0; pass < 2*n; pass++ {
			action := db.Fire
			if (pass+w)%2 == 0 {
				action = db.Expire
			}
			ready, err := s.ReadyStreams(ctx, db.ReadyParams{Action: action, Now: now, Limit: 3})
			if err != nil {
				return err
			}
			for _, st := range ready {
				_, err := s.SetStreamState(ctx, db.SetStateParams{ID: st.ID, SerialNo: st.SerialNo,
					State: action.ClaimState(), ReadyFor: action, ReadyAt: now})
				if err != nil && !errors.Is(err, db.ErrConflict) {
					return fmt.Errorf("worker %d: claim %d for %s: %w", w, st.ID, action, err)
				}
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		if got := streamByID(t, s, id); got.State != stream.StateFiring {
			t.Errorf("backlog stream %d: state %s, want firing (ready to fire: never expired)", i, got.State)
		}
	}
	if got := streamByID(t, s, plain); got.State != stream.StateExpiring {
		t.Errorf("stream without a fire time: state %s, want expiring", got.State)
	}
}
