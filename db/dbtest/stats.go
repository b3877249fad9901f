package dbtest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// exerciseStreamStats checks StreamStats against the streams themselves
// and the one definition of readiness, stream.Stream.ReadyTo: the streams
// of the ready bundle (one per name, every state and deadline position)
// plus several streams sharing a name, at every deadline and just after.
func exerciseStreamStats(t *testing.T, open OpenFunc) {
	b := setupReady(t, open)
	ctx := t.Context()
	h := func(n int) time.Time { return at(time.Duration(n) * time.Hour) }
	for i, st := range []stream.State{stream.StateActive, stream.StateActive, stream.StateActive, stream.StateError, stream.StateCompleted} {
		id := create(t, b.s, streamSpec{name: "shared", dist: instance(fmt.Sprint(i)), fire: h(2 + i), expire: h(30 - i)})
		if st != stream.StateActive {
			setState(t, b.s, id, stream.StateFiring)
			setState(t, b.s, id, st)
		}
		b.ids[fmt.Sprint("shared-", i)] = id
	}
	all, times := b.streamsAndDeadlines(t)
	for _, now := range append([]time.Time{h(0)}, times...) {
		type key struct {
			name  string
			state stream.State
		}
		rows := map[key]*db.StreamStat{}
		for _, st := range all {
			k := key{st.Name, st.State}
			r := rows[k]
			if r == nil {
				r = &db.StreamStat{Name: st.Name, State: st.State}
				rows[k] = r
			}
			r.Count++
			if st.ReadyTo(db.Fire, now) {
				r.ReadyToFire++
				if r.OldestFire.IsZero() || st.FireTimestamp.Before(r.OldestFire) {
					r.OldestFire = st.FireTimestamp
				}
			}
			if st.ReadyTo(db.Expire, now) {
				r.ReadyToExpire++
				if r.OldestExpire.IsZero() || st.ExpireTimestamp.Before(r.OldestExpire) {
					r.OldestExpire = st.ExpireTimestamp
				}
			}
		}
		var want []db.StreamStat
		for _, r := range rows {
			want = append(want, *r)
		}
		slices.SortFunc(want, func(x, y db.StreamStat) int {
			return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.State, y.State))
		})
		got, err := b.s.StreamStats(ctx, now)
		if err != nil {
			t.Fatalf("StreamStats(%s): %v", stream.FormatTime(now), err)
		}
		if diff := gocmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("StreamStats(%s) disagrees with the streams (-want +got):\n%s", stream.FormatTime(now), diff)
		}
	}
	empty, err := open(t).StreamStats(ctx, h(0))
	if err != nil || len(empty) != 0 {
		t.Errorf("StreamStats of an empty store = %v, %v; want no rows", empty, err)
	}
}
