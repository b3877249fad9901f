package dbtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// exerciseBatchClaim specifies the batched worker operations: ClaimStreams,
// RenewLeases, CompleteStreams and StreamsEvents.
func exerciseBatchClaim(t *testing.T, open OpenFunc) {
	h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }

	t.Run("ClaimsWhatIsReady", func(t *testing.T) {
		cases := []struct {
			name   string
			action db.Action
			now    time.Time
			limit  int
		}{
			{"fire", db.Fire, h(6), 100},
			{"fire_limit", db.Fire, h(6), 2},
			{"fire_none", db.Fire, h(1), 100},
			{"expire", db.Expire, h(11), 100},
			{"expire_limit", db.Expire, h(11), 3},
			{"expire_late", db.Expire, h(31), 100},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setupReady(t, open)
				ctx := t.Context()
				ready, err := b.s.ReadyStreams(ctx, db.ReadyParams{Action: tc.action, Now: tc.now, Limit: tc.limit})
				if err != nil {
					t.Fatal(err)
				}
				before := map[int64]stream.Stream{}
				for _, id := range b.ids {
					before[id] = streamByID(t, b.s, id)
				}
				lease := tc.now.Add(time.Minute)
				got, err := b.s.ClaimStreams(ctx, db.ClaimParams{Action: tc.action, Now: tc.now, Limit: tc.limit, Owner: "w1", LeaseUntil: lease})
				if err != nil {
					t.Fatalf("ClaimStreams: %v", err)
				}
				if diff := gocmp.Diff(b.names(ready), b.names(got)); diff != "" {
					t.Fatalf("ClaimStreams(%s, limit %d) claimed other streams than ReadyStreams returns (-ready +claimed):\n%s", tc.action, tc.limit, diff)
				}
				target := stream.StateFiring
				if tc.action == db.Expire {
					target = stream.StateExpiring
				}
				claimed := map[int64]bool{}
				for _, c := range got {
					claimed[c.ID] = true
					stored := streamByID(t, b.s, c.ID)
					if diff := gocmp.Diff(stored, c, cmpOpts); diff != "" {
						t.Errorf("stream %d: returned differs from stored (-stored +returned):\n%s", c.ID, diff)
					}
					if stored.State != target || stored.SerialNo != before[c.ID].SerialNo+1 || stored.ClaimedBy != "w1" ||
						!stored.LeaseUntil.Equal(lease) || stored.Open {
						t.Errorf("claimed stream %d: state %s serial %d (was %d) owner %q lease %s open %v; want %s, serial+1, w1, %s, closed",
							c.ID, stored.State, stored.SerialNo, before[c.ID].SerialNo, stored.ClaimedBy, stream.FormatTime(stored.LeaseUntil), stored.Open,
							target, stream.FormatTime(lease))
					}
				}
				for id, st := range before {
					if claimed[id] {
						continue
					}
					if diff := gocmp.Diff(st, streamByID(t, b.s, id), cmpOpts); diff != "" {
						t.Errorf("unclaimed stream %d changed (-before +after):\n%s", id, diff)
					}
				}
				// Claimed streams are no longer ready: a second claim
				// takes the rest.
				rest, err := b.s.ClaimStreams(ctx, db.ClaimParams{Action: tc.action, Now: tc.now, Limit: 100, Owner: "w2", LeaseUntil: lease})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rest {
					if claimed[r.ID] {
						t.Errorf("stream %d claimed twice", r.ID)
					}
				}
			})
		}
	})

	t.Run("InvalidParams", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		for _, p := range []db.ClaimParams{
			{Action: db.Fire, Now: h(1), Limit: 0},
			{Action: db.Action(99), Now: h(1), Limit: 1},
		} {
			if _, err := s.ClaimStreams(t.Context(), p); err == nil {
				t.Errorf("ClaimStreams(%+v) succeeded, want an error", p)
			}
		}
	})

	t.Run("StaleReadinessNotClaimed", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := create(t, s, streamSpec{name: "t", expire: h(1)})
		// An ingester appends: the stream becomes ready to fire and its
		// expiry moves on. It must not be claimed for expiry.
		if err := s.AppendToStream(t.Context(), db.AppendParams{
			StreamID: id, FirstEvent: base, LastEvent: base, ExpireTimestamp: h(3), FireTimestamp: h(2).Add(-time.Minute),
		}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClaimStreams(t.Context(), db.ClaimParams{Action: db.Expire, Now: h(2), Limit: 10, Owner: "w", LeaseUntil: h(3)})
		if err != nil || len(got) != 0 {
			t.Fatalf("ClaimStreams(expire) = %v, %v; want nothing (the stream waits to fire)", streamIDs(got), err)
		}
		got, err = s.ClaimStreams(t.Context(), db.ClaimParams{Action: db.Fire, Now: h(2), Limit: 10, Owner: "w", LeaseUntil: h(3)})
		if err != nil || len(got) != 1 || got[0].ID != id {
			t.Fatalf("ClaimStreams(fire) = %v, %v; want [%d]", streamIDs(got), err, id)
		}
	})

	t.Run("ConcurrentClaimersDisjoint", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const n = 60
		var want []int64
		for i := range n {
			want = append(want, create(t, s, streamSpec{name: "t", dist: map[string]stream.Value{"i": stream.Int(int64(i))},
				fire: h(1), expire: h(50)}))
		}
		type result struct {
			ids []int64
			err error
		}
		results := race(8, func(i int) result {
			var r result
			for {
				got, err := s.ClaimStreams(t.Context(), db.ClaimParams{Action: db.Fire, Now: h(2), Limit: 5,
					Owner: fmt.Sprintf("w%d", i), LeaseUntil: h(3)})
				if errors.Is(err, db.ErrAborted) {
					continue // a busy single writer: run it again
				}
				if err != nil || len(got) == 0 {
					r.err = err
					return r
				}
				r.ids = append(r.ids, streamIDs(got)...)
			}
		})
		var all []int64
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("claimer %d: %v", i, r.err)
			}
			for _, id := range r.ids {
				if owner := streamByID(t, s, id).ClaimedBy; owner != fmt.Sprintf("w%d", i) {
					t.Errorf("stream %d claimed by claimer %d is owned by %q", id, i, owner)
				}
			}
			all = append(all, r.ids...)
		}
		slices.Sort(all)
		if diff := gocmp.Diff(want, all); diff != "" {
			t.Errorf("claimed streams (-want +got), each exactly once:\n%s", diff)
		}
	})

	t.Run("RenewLeases", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		a := create(t, s, streamSpec{name: "a", fire: h(1), expire: h(50)})
		bID := create(t, s, streamSpec{name: "b", fire: h(1), expire: h(50)})
		claimed, err := s.ClaimStreams(ctx, db.ClaimParams{Action: db.Fire, Now: h(2), Limit: 10, Owner: "w", LeaseUntil: h(3)})
		if err != nil || len(claimed) != 2 {
			t.Fatalf("ClaimStreams: %v %v", streamIDs(claimed), err)
		}
		// b is taken over by another worker.
		taken := setState(t, s, bID, stream.StateFiring)
		renewed, err := s.RenewLeases(ctx, []db.StreamSerial{
			{ID: claimed[0].ID, SerialNo: claimed[0].SerialNo},
			{ID: claimed[1].ID, SerialNo: claimed[1].SerialNo},
			{ID: 999999, SerialNo: 1},
		}, h(4))
		if err != nil {
			t.Fatalf("RenewLeases: %v", err)
		}
		got := streamByID(t, s, a)
		if diff := gocmp.Diff(map[int64]int64{a: got.SerialNo}, renewed); diff != "" {
			t.Errorf("RenewLeases renewed (-want +got):\n%s", diff)
		}
		if !got.LeaseUntil.Equal(h(4)) || got.SerialNo != claimed[0].SerialNo+1 || got.ClaimedBy != "w" || got.State != stream.StateFiring {
			t.Errorf("renewed stream: lease %s serial %d owner %q state %s; want lease %s, serial %d, w, firing",
				stream.FormatTime(got.LeaseUntil), got.SerialNo, got.ClaimedBy, got.State, stream.FormatTime(h(4)), claimed[0].SerialNo+1)
		}
		if diff := gocmp.Diff(taken, streamByID(t, s, bID), cmpOpts); diff != "" {
			t.Errorf("stream taken over was changed (-want +got):\n%s", diff)
		}
		if r, err := s.RenewLeases(ctx, nil, h(4)); err != nil || len(r) != 0 {
			t.Errorf("RenewLeases(nil) = %v, %v; want nothing", r, err)
		}
	})

	for _, purge := range []bool{false, true} {
		t.Run(fmt.Sprintf("CompleteStreams/purge=%v", purge), func(t *testing.T) {
			t.Parallel()
			s := open(t)
			ctx := t.Context()
			evs := save(t, s, newEvent("e1", "x", base, nil), newEvent("e2", "x", base, nil))
			var ids []int64
			for i := range 4 {
				ids = append(ids, create(t, s, streamSpec{name: "t", dist: map[string]stream.Value{"i": stream.Int(int64(i))},
					fire: h(1), expire: h(50), events: evs}))
			}
			claimed, err := s.ClaimStreams(ctx, db.ClaimParams{Action: db.Fire, Now: h(2), Limit: 10, Owner: "w", LeaseUntil: h(3)})
			if err != nil || len(claimed) != 4 {
				t.Fatalf("ClaimStreams: %v %v", streamIDs(claimed), err)
			}
			// ids[1] is taken over, ids[3] purged by someone else.
			taken := setState(t, s, ids[1], stream.StateFiring)
			if err := s.PurgeStream(ctx, ids[3], -1); err != nil {
				t.Fatal(err)
			}
			refs := []db.StreamSerial{}
			for _, c := range claimed {
				refs = append(refs, db.StreamSerial{ID: c.ID, SerialNo: c.SerialNo})
			}
			// Rolled back: nothing changes.
			errRollback := errors.New("roll back")
			err = s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
				if _, err := tx.CompleteStreams(ctx, refs, purge); err != nil {
					return err
				}
				return errRollback
			})
			wantErr(t, "InTx", err, errRollback)
			if st := streamByID(t, s, ids[0]); st.State != stream.StateFiring {
				t.Fatalf("after rollback: state %s, want firing", st.State)
			}
			lost, err := s.CompleteStreams(ctx, refs, purge)
			if err != nil {
				t.Fatalf("CompleteStreams: %v", err)
			}
			if diff := gocmp.Diff([]int64{ids[1], ids[3]}, lost); diff != "" {
				t.Errorf("lost (-want +got):\n%s", diff)
			}
			for i, c := range claimed[:3] {
				if c.ID == ids[1] {
					continue
				}
				got, err := s.StreamByID(ctx, c.ID)
				switch {
				case purge:
					wantErr(t, fmt.Sprintf("stream %d after purge", i), err, db.ErrNotFound)
					evs, err := s.StreamEvents(ctx, c.ID)
					if err != nil || len(evs) != 0 {
						t.Errorf("purged stream %d: events %v, %v; want none", c.ID, messageIDs(evs), err)
					}
				case err != nil:
					t.Fatal(err)
				case got.State != stream.StateCompleted || got.SerialNo != c.SerialNo+1 || got.ClaimedBy != "" || !got.LeaseUntil.IsZero():
					t.Errorf("completed stream %d: state %s serial %d owner %q lease %s; want completed, %d, no claim",
						c.ID, got.State, got.SerialNo, got.ClaimedBy, stream.FormatTime(got.LeaseUntil), c.SerialNo+1)
				}
			}
			if diff := gocmp.Diff(taken, streamByID(t, s, ids[1]), cmpOpts); diff != "" {
				t.Errorf("stream taken over was changed (-want +got):\n%s", diff)
			}
			if _, err := s.EventByMessageID(ctx, "e1"); err != nil {
				t.Errorf("event of a completed stream: %v, want kept", err)
			}
		})
	}

	t.Run("StreamsEvents", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		evs := save(t, s,
			newEvent("late", "x", at(3*time.Minute), nil),
			newEvent("early", "x", at(time.Minute), nil),
			newEvent("mid", "x", at(2*time.Minute), nil))
		a := create(t, s, streamSpec{name: "a", expire: h(1), events: evs})
		b := create(t, s, streamSpec{name: "b", expire: h(1), events: evs[:1]})
		empty := create(t, s, streamSpec{name: "c", expire: h(1)})
		got, err := s.StreamsEvents(ctx, []int64{a, b, empty, 999999})
		if err != nil {
			t.Fatalf("StreamsEvents: %v", err)
		}
		names := map[int64][]string{}
		for id, evs := range got {
			names[id] = messageIDs(evs)
		}
		want := map[int64][]string{a: {"early", "mid", "late"}, b: {"late"}}
		if diff := gocmp.Diff(want, names); diff != "" {
			t.Errorf("StreamsEvents (-want +got):\n%s", diff)
		}
		single, err := s.StreamEvents(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if diff := gocmp.Diff(single, got[a], cmpOpts); diff != "" {
			t.Errorf("StreamsEvents differs from StreamEvents (-single +batch):\n%s", diff)
		}
		if got, err := s.StreamsEvents(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("StreamsEvents(nil) = %v, %v; want nothing", got, err)
		}
	})
}
