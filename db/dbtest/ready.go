package dbtest

import (
	"cmp"
	"maps"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// readyBundle is a store with streams in every state and deadline
// position, named for the tests.
type readyBundle struct {
	s   db.Store
	ids map[string]int64
}

func setupReady(t *testing.T, open OpenFunc) readyBundle {
	t.Helper()
	s := open(t)
	b := readyBundle{s: s, ids: map[string]int64{}}
	h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
	specs := []struct {
		name   string
		fire   time.Time
		expire time.Time
		state  stream.State
	}{
		// Created out of deadline order so ordering is by deadline, not id.
		{"fire_late", h(5), h(50), stream.StateActive},
		{"fire_early", h(1), h(50), stream.StateActive},
		{"fire_retry", h(3), h(50), stream.StateRetryFire},
		{"fire_tie_a", h(4), h(50), stream.StateActive},
		{"fire_tie_b", h(4), h(50), stream.StateActive},
		{"fire_future", h(20), h(21), stream.StateActive},     // ready later; its expiry comes after
		{"fire_preempt", h(30), h(6), stream.StateActive},     // expiry due first but waits to fire (D-16)
		{"fire_reached", h(2), h(7), stream.StateActive},      // both due: fired, never expired
		{"error", h(1), h(1), stream.StateError},              // never ready
		{"expire_error", h(1), h(1), stream.StateExpireError}, // never ready
		{"retry_expire", h(1), h(8), stream.StateRetryExpire},
		{"retry_expire_future_fire", h(40), h(9), stream.StateRetryExpire},
		{"expire_only", time.Time{}, h(10), stream.StateActive},
		{"expire_first", time.Time{}, h(2), stream.StateActive},
		{"completed", h(1), h(1), stream.StateCompleted},
		{"firing", h(1), h(1), stream.StateFiring},
		{"expiring", h(1), h(1), stream.StateExpiring},
	}
	for _, sp := range specs {
		id := create(t, s, streamSpec{name: sp.name, fire: sp.fire, expire: sp.expire})
		b.ids[sp.name] = id
		switch sp.state {
		case stream.StateActive:
		case stream.StateRetryFire:
			setState(t, s, id, stream.StateFiring)
			setState(t, s, id, stream.StateError)
			setState(t, s, id, stream.StateRetryFire)
		case stream.StateRetryExpire:
			setState(t, s, id, stream.StateExpiring)
			setState(t, s, id, stream.StateExpireError)
			setState(t, s, id, stream.StateRetryExpire)
		default:
			setState(t, s, id, sp.state)
		}
	}
	return b
}

func (b readyBundle) names(sts []stream.Stream) []string {
	byID := map[int64]string{}
	for n, id := range b.ids {
		byID[id] = n
	}
	out := []string{}
	for _, st := range sts {
		out = append(out, byID[st.ID])
	}
	return out
}

func exerciseReady(t *testing.T, open OpenFunc) {
	b := setupReady(t, open)
	h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
	tests := []struct {
		name   string
		action db.Action
		now    time.Time
		limit  int
		want   []string
	}{
		{"fire_none_yet", db.Fire, h(1), 100, nil}, // fire_timestamp < now is strict
		{"fire_some", db.Fire, h(1).Add(time.Microsecond), 100, []string{"fire_early"}},
		{"fire_order", db.Fire, h(6), 100, []string{"fire_early", "fire_reached", "fire_retry", "fire_tie_a", "fire_tie_b", "fire_late"}},
		{"fire_limit", db.Fire, h(6), 2, []string{"fire_early", "fire_reached"}},
		{"expire_none_yet", db.Expire, h(2), 100, nil},
		{"expire_strict", db.Expire, h(2).Add(time.Microsecond), 100, []string{"expire_first"}},
		// fire_preempt is due to expire at 6h but waits to fire at 30h;
		// fire_reached (expire 7h) has reached its fire time: both are
		// fired, never expired; retry_expire ignores fire times.
		{"expire_excludes_waiting_to_fire", db.Expire, h(11), 100, []string{"expire_first", "retry_expire", "retry_expire_future_fire", "expire_only"}},
		{"expire_limit", db.Expire, h(11), 3, []string{"expire_first", "retry_expire", "retry_expire_future_fire"}},
		// However late the workers are, a stream with a fire time is
		// never ready to expire.
		{"expire_after_fire_time", db.Expire, h(31), 100, []string{"expire_first", "retry_expire", "retry_expire_future_fire", "expire_only"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := b.s.ReadyStreams(t.Context(), db.ReadyParams{Action: tc.action, Now: tc.now, Limit: tc.limit})
			if err != nil {
				t.Fatalf("ReadyStreams: %v", err)
			}
			if diff := gocmp.Diff(tc.want, b.names(got), cmpOpts); diff != "" {
				t.Errorf("ReadyStreams(%s, now %s, limit %d) (-want +got):\n%s", tc.action, stream.FormatTime(tc.now), tc.limit, diff)
			}
		})
	}
}

// streamsAndDeadlines returns the bundle's streams as stored and, sorted,
// every fire and expire time among them and the microsecond after each.
func (b readyBundle) streamsAndDeadlines(t *testing.T) ([]stream.Stream, []time.Time) {
	t.Helper()
	var all []stream.Stream
	times := map[time.Time]bool{}
	for _, id := range b.ids {
		st := streamByID(t, b.s, id)
		all = append(all, st)
		for _, d := range []time.Time{st.FireTimestamp, st.ExpireTimestamp} {
			if !d.IsZero() {
				times[d] = true
				times[d.Add(time.Microsecond)] = true
			}
		}
	}
	return all, slices.SortedFunc(maps.Keys(times), time.Time.Compare)
}

// exerciseReadyAgreesWithStream checks ReadyStreams against the one
// definition of readiness, stream.Stream.ReadyTo, for every action at
// every deadline of the bundle and just after it.
func exerciseReadyAgreesWithStream(t *testing.T, open OpenFunc) {
	b := setupReady(t, open)
	ctx := t.Context()
	all, times := b.streamsAndDeadlines(t)
	for _, now := range times {
		for _, a := range []db.Action{db.Fire, db.Expire} {
			got, err := b.s.ReadyStreams(ctx, db.ReadyParams{Action: a, Now: now})
			if err != nil {
				t.Fatalf("ReadyStreams(%s, %s): %v", a, stream.FormatTime(now), err)
			}
			var want []stream.Stream
			for _, st := range all {
				if st.ReadyTo(a, now) {
					want = append(want, st)
				}
			}
			deadline := func(st stream.Stream) time.Time {
				if a == db.Fire {
					return st.FireTimestamp
				}
				return st.ExpireTimestamp
			}
			slices.SortFunc(want, func(x, y stream.Stream) int {
				if c := deadline(x).Compare(deadline(y)); c != 0 {
					return c
				}
				return cmp.Compare(x.ID, y.ID)
			})
			if diff := gocmp.Diff(b.names(want), b.names(got)); diff != "" {
				t.Errorf("ReadyStreams(%s, now %s) disagrees with stream.ReadyTo (-ReadyTo +store):\n%s", a, stream.FormatTime(now), diff)
			}
		}
	}
}
