package dbtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// ExerciseBatch specifies db.BatchIngester, the optional capability of a
// store's transactions to do the ingest path's stream operations for many
// streams at once. A driver whose transactions implement it runs this
// besides Exercise; the test fails if they do not.
func ExerciseBatch(t *testing.T, open OpenFunc) {
	t.Helper()
	groups := []struct {
		name string
		run  func(t *testing.T, open OpenFunc)
	}{
		{"OpenStreams", exerciseBatchOpen},
		{"CreateStreams", exerciseBatchCreate},
		{"AppendToStreams", exerciseBatchAppend},
		{"CloseStreams", exerciseBatchClose},
		{"Concurrency", exerciseBatchConcurrency},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, open)
		})
	}
}

// inBatchTx runs fn in a transaction of s with its Ops as a
// db.BatchIngester, failing the test if they are not one.
func inBatchTx(t *testing.T, s db.Store, fn func(ctx context.Context, tx db.Ops, b db.BatchIngester) error) error {
	t.Helper()
	return s.InTx(t.Context(), func(ctx context.Context, tx db.Ops) error {
		b, ok := tx.(db.BatchIngester)
		if !ok {
			t.Fatalf("the Ops of a transaction (%T) do not implement db.BatchIngester", tx)
		}
		return fn(ctx, tx, b)
	})
}

// instance returns distinguishing values with one instance_id.
func instance(id string) map[string]stream.Value {
	return map[string]stream.Value{"instance_id": stream.String(id)}
}

// skey is the StreamKey of trigger name and dist.
func skey(name string, dist map[string]stream.Value) db.StreamKey {
	return db.StreamKey{Name: name, Key: stream.Key(dist)}
}

// linked returns the message ids of the events linked to a stream.
func linked(t *testing.T, s db.Ops, id int64) []string {
	t.Helper()
	evs, err := s.StreamEvents(t.Context(), id)
	if err != nil {
		t.Fatalf("StreamEvents(%d): %v", id, err)
	}
	return messageIDs(evs)
}

func exerciseBatchOpen(t *testing.T, open OpenFunc) {
	s := open(t)
	a := create(t, s, streamSpec{name: "t", dist: instance("a"), expire: at(time.Hour), counts: []int{1}})
	b := create(t, s, streamSpec{name: "t", dist: instance("b"), expire: at(time.Hour)})
	closed := create(t, s, streamSpec{name: "t", dist: instance("c"), expire: at(time.Hour)})
	if err := s.CloseStream(t.Context(), closed); err != nil {
		t.Fatal(err)
	}
	firing := create(t, s, streamSpec{name: "t", dist: instance("d"), expire: at(time.Hour)})
	setState(t, s, firing, stream.StateFiring)
	other := create(t, s, streamSpec{name: "u", dist: instance("a"), expire: at(time.Hour)})

	tests := []struct {
		name string
		keys []db.StreamKey
		want []int64
	}{
		{"none", nil, nil},
		{"one", []db.StreamKey{skey("t", instance("a"))}, []int64{a}},
		{"several, unsorted, with a twin key and unknown keys",
			[]db.StreamKey{skey("t", instance("b")), skey("x", instance("a")), skey("t", instance("a")),
				skey("t", instance("b")), skey("t", instance("zz")), skey("u", instance("a"))},
			[]int64{a, b, other}},
		{"closed and claimed streams are not open",
			[]db.StreamKey{skey("t", instance("c")), skey("t", instance("d"))}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got map[db.StreamKey]stream.Stream
			err := inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
				var err error
				got, err = bi.OpenStreams(ctx, tt.keys)
				return err
			})
			if err != nil {
				t.Fatalf("OpenStreams: %v", err)
			}
			want := map[db.StreamKey]stream.Stream{}
			for _, id := range tt.want {
				st := streamByID(t, s, id)
				want[db.StreamKey{Name: st.Name, Key: st.Key}] = st
			}
			if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
				t.Errorf("OpenStreams (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("on the store", func(t *testing.T) {
		bi, ok := s.(db.BatchIngester)
		if !ok {
			t.Skipf("%T does not implement db.BatchIngester outside a transaction", s)
		}
		got, err := bi.OpenStreams(t.Context(), []db.StreamKey{skey("t", instance("a"))})
		if err != nil || got[skey("t", instance("a"))].ID != a {
			t.Errorf("OpenStreams = %v, %v; want stream %d", got, err, a)
		}
	})
}

func exerciseBatchCreate(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	ids := save(t, s,
		newEvent("e-1", "test.b", at(0), nil), newEvent("e-2", "test.b", at(time.Minute), nil),
		newEvent("e-3", "test.b", at(2*time.Minute), nil), newEvent("e-4", "test.b", at(3*time.Minute), nil),
		newEvent("e-5", "test.b", at(4*time.Minute), nil), newEvent("e-6", "test.b", at(5*time.Minute), nil),
		newEvent("e-7", "test.b", at(6*time.Minute), nil))
	stored := create(t, s, streamSpec{name: "t", dist: instance("stored"), expire: at(time.Hour)})

	newStream := func(dist map[string]stream.Value, closed bool, events ...int64) db.BatchNewStream {
		return db.BatchNewStream{Closed: closed, NewStream: db.NewStream{
			Name: "t", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: at(0), LastEvent: at(time.Minute), ExpireTimestamp: at(2 * time.Hour),
			FireCounts: []int{len(events), 0}, EventIDs: events, Now: at(3 * time.Hour),
		}}
	}
	batch := []db.BatchNewStream{
		newStream(instance("x"), false, ids[0], ids[1], ids[0]), // an event given twice is linked once
		newStream(instance("stored"), false, ids[2]),            // twin of a stored open stream
		newStream(instance("y"), true, ids[3]),                  // created closed ...
		newStream(instance("y"), false, ids[4]),                 // ... so this one takes the open key
		newStream(instance("x"), false, ids[5]),                 // twin of the first element
		newStream(instance("stored"), true, ids[6]),             // closed: never a twin
	}
	batch[3].FireTimestamp = at(90 * time.Minute)
	batch[3].FireCounts = nil
	var got []int64
	var created []bool
	err := inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
		var err error
		got, created, err = bi.CreateStreams(ctx, batch)
		return err
	})
	if err != nil {
		t.Fatalf("CreateStreams: %v", err)
	}
	if diff := cmp.Diff([]bool{true, false, true, true, false, true}, created); diff != "" {
		t.Fatalf("created (-want +got):\n%s", diff)
	}
	for i, id := range got {
		if (id != 0) != created[i] {
			t.Errorf("ids[%d] = %d with created %v", i, id, created[i])
		}
	}
	if !(got[0] < got[2] && got[2] < got[3] && got[3] < got[5]) {
		t.Errorf("ids %v do not increase in input order", got)
	}
	for i, id := range got {
		if id == 0 {
			continue
		}
		p := batch[i]
		want := stream.Stream{
			ID: id, Name: "t", Key: p.Key, DistinguishedBy: p.DistinguishedBy, State: stream.StateActive,
			Open: !p.Closed, FirstEvent: p.FirstEvent, LastEvent: p.LastEvent,
			ExpireTimestamp: p.ExpireTimestamp, FireTimestamp: p.FireTimestamp, FireCounts: p.FireCounts,
			CreatedAt: p.Now,
		}
		if diff := cmp.Diff(want, streamByID(t, s, id), cmpOpts); diff != "" {
			t.Errorf("stream of element %d (-want +got):\n%s", i, diff)
		}
	}
	for i, want := range map[int][]string{0: {"e-1", "e-2"}, 2: {"e-4"}, 3: {"e-5"}, 5: {"e-7"}} {
		if diff := cmp.Diff(want, linked(t, s, got[i])); diff != "" {
			t.Errorf("events of element %d (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff([]string{}, linked(t, s, stored)); diff != "" {
		t.Errorf("the refused twin linked events to the stored stream (-want +got):\n%s", diff)
	}
	if n, err := s.CountStreams(ctx, db.FindStreamsParams{Name: "t"}); err != nil || n != 5 {
		t.Errorf("CountStreams = %d, %v; want 5 (the stored one and four created)", n, err)
	}

	t.Run("invalid element writes nothing", func(t *testing.T) {
		bad := newStream(instance("z"), false)
		bad.Key = "not the key"
		err := inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
			_, _, err := bi.CreateStreams(ctx, []db.BatchNewStream{newStream(instance("w"), false), bad})
			return err
		})
		if err == nil {
			t.Fatal("CreateStreams with a wrong key: no error")
		}
		if n, err := s.CountStreams(ctx, db.FindStreamsParams{Name: "t"}); err != nil || n != 5 {
			t.Errorf("CountStreams = %d, %v; want still 5", n, err)
		}
	})
}

func exerciseBatchAppend(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	ids := save(t, s,
		newEvent("a-1", "test.b", at(0), nil), newEvent("a-2", "test.b", at(time.Minute), nil),
		newEvent("a-3", "test.b", at(2*time.Minute), nil), newEvent("a-4", "test.b", at(3*time.Minute), nil),
		newEvent("a-5", "test.b", at(4*time.Minute), nil), newEvent("a-6", "test.b", at(5*time.Minute), nil))
	open1 := create(t, s, streamSpec{name: "t", dist: instance("1"), expire: at(time.Hour), counts: []int{0}})
	open2 := create(t, s, streamSpec{name: "t", dist: instance("2"), expire: at(time.Hour), counts: []int{0},
		fire: at(30 * time.Minute)})
	closed := create(t, s, streamSpec{name: "t", dist: instance("3"), expire: at(time.Hour), counts: []int{0}})
	if err := s.CloseStream(ctx, closed); err != nil {
		t.Fatal(err)
	}
	claimed := create(t, s, streamSpec{name: "t", dist: instance("4"), expire: at(time.Hour), counts: []int{0}})
	setState(t, s, claimed, stream.StateFiring)
	before := map[int64]stream.Stream{closed: streamByID(t, s, closed), claimed: streamByID(t, s, claimed)}

	batch := []db.AppendParams{
		{StreamID: open1, EventIDs: ids[0:1], FirstEvent: at(0), LastEvent: at(0), ExpireTimestamp: at(2 * time.Hour),
			FireTimestamp: at(40 * time.Minute), FireCounts: nil},
		{StreamID: closed, EventIDs: ids[1:2], FirstEvent: at(0), LastEvent: at(time.Minute), ExpireTimestamp: at(2 * time.Hour)},
		{StreamID: open2, EventIDs: ids[2:3], FirstEvent: at(0), LastEvent: at(2 * time.Minute), ExpireTimestamp: at(2 * time.Hour),
			FireCounts: []int{1}},
		{StreamID: claimed, EventIDs: ids[3:4], FirstEvent: at(0), LastEvent: at(3 * time.Minute), ExpireTimestamp: at(2 * time.Hour)},
		{StreamID: 1 << 40, EventIDs: ids[4:5], FirstEvent: at(0), LastEvent: at(3 * time.Minute)}, // no such stream
		// A second element for open1: its columns win, except its zero
		// fire time, which keeps the first's.
		{StreamID: open1, EventIDs: ids[5:6], FirstEvent: at(0), LastEvent: at(5 * time.Minute), ExpireTimestamp: at(3 * time.Hour)},
	}
	var conflicted []int64
	err := inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
		var err error
		conflicted, err = bi.AppendToStreams(ctx, batch)
		return err
	})
	if err != nil {
		t.Fatalf("AppendToStreams: %v", err)
	}
	if diff := cmp.Diff([]int64{closed, claimed, 1 << 40}, conflicted); diff != "" {
		t.Errorf("conflicted (-want +got):\n%s", diff)
	}
	got1 := streamByID(t, s, open1)
	want1 := got1
	want1.FirstEvent, want1.LastEvent, want1.ExpireTimestamp = at(0), at(5*time.Minute), at(3*time.Hour)
	want1.FireTimestamp, want1.FireCounts = at(40*time.Minute), nil
	if diff := cmp.Diff(want1, got1, cmpOpts); diff != "" {
		t.Errorf("stream appended twice (-want +got):\n%s", diff)
	}
	got2 := streamByID(t, s, open2)
	if !got2.FireTimestamp.Equal(at(30*time.Minute)) || !slices.Equal(got2.FireCounts, []int{1}) || !got2.LastEvent.Equal(at(2*time.Minute)) {
		t.Errorf("stream %d = %+v; want fire time kept, counts [1], last event +2m", open2, got2)
	}
	for id, want := range map[int64][]string{open1: {"a-1", "a-6"}, open2: {"a-3"}, closed: {}, claimed: {}} {
		if diff := cmp.Diff(want, linked(t, s, id)); diff != "" {
			t.Errorf("events of stream %d (-want +got):\n%s", id, diff)
		}
	}
	for id, want := range before {
		if diff := cmp.Diff(want, streamByID(t, s, id), cmpOpts); diff != "" {
			t.Errorf("conflicted stream %d changed (-before +after):\n%s", id, diff)
		}
	}
}

func exerciseBatchClose(t *testing.T, open OpenFunc) {
	s := open(t)
	a := create(t, s, streamSpec{name: "t", dist: instance("a"), expire: at(time.Hour)})
	b := create(t, s, streamSpec{name: "t", dist: instance("b"), expire: at(time.Hour)})
	c := create(t, s, streamSpec{name: "t", dist: instance("c"), expire: at(time.Hour)})
	if err := s.CloseStream(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	err := inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
		return bi.CloseStreams(ctx, []int64{a, c, a})
	})
	if err != nil {
		t.Fatalf("CloseStreams(open, closed, open again): %v", err)
	}
	for id, want := range map[int64]bool{a: false, b: true, c: false} {
		if got := streamByID(t, s, id); got.Open != want || got.State != stream.StateActive {
			t.Errorf("stream %d: open %v, state %s; want open %v, active", id, got.Open, got.State, want)
		}
	}
	err = inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
		return bi.CloseStreams(ctx, []int64{b, 1 << 40})
	})
	wantErr(t, "CloseStreams with an unknown id", err, db.ErrNotFound)
	if err := inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
		return bi.CloseStreams(ctx, nil)
	}); err != nil {
		t.Errorf("CloseStreams(nil): %v", err)
	}
}

func exerciseBatchConcurrency(t *testing.T, open OpenFunc) {
	t.Run("OpenStreamsWaitsForLock", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ids := make([]int64, 3)
		keys := make([]db.StreamKey, 3)
		for i := range ids {
			dist := instance(fmt.Sprint(i))
			ids[i] = create(t, s, streamSpec{name: "t", dist: dist, expire: at(time.Hour)})
			keys[i] = skey("t", dist)
		}
		// The first transaction locks the streams and holds them until
		// released; the second asks for them in the opposite order and
		// gets them only after the first commits, and sees its close.
		locked, release := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		var firstErr error
		wg.Go(func() {
			firstErr = inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
				got, err := bi.OpenStreams(ctx, keys)
				if err != nil {
					return err
				}
				if len(got) != 3 {
					return fmt.Errorf("first OpenStreams found %d streams, want 3", len(got))
				}
				close(locked)
				<-release
				return bi.CloseStreams(ctx, ids[1:2])
			})
		})
		<-locked
		type result struct {
			got map[db.StreamKey]stream.Stream
			err error
		}
		done := make(chan result, 1)
		go func() {
			var r result
			r.err = inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
				var err error
				reversed := slices.Clone(keys)
				slices.Reverse(reversed)
				r.got, err = bi.OpenStreams(ctx, reversed)
				return err
			})
			done <- r
		}()
		select {
		case r := <-done:
			t.Fatalf("second OpenStreams returned while the rows were locked: %v, %v", r.got, r.err)
		case <-time.After(300 * time.Millisecond):
		}
		close(release)
		wg.Wait()
		if firstErr != nil {
			t.Fatalf("first transaction: %v", firstErr)
		}
		r := <-done
		if r.err != nil {
			t.Fatalf("second OpenStreams: %v", r.err)
		}
		if _, ok := r.got[keys[1]]; ok || len(r.got) != 2 {
			t.Errorf("second OpenStreams found %d streams (key 1: %v); want the 2 still open", len(r.got), ok)
		}
	})

	t.Run("CreateSameKeys", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Every transaction creates the same ten keys, in its own order:
		// each key is created exactly once, and nobody deadlocks.
		const nkeys = 10
		type result struct {
			created map[string]int64
			err     error
		}
		results := race(workers, func(w int) result {
			r := result{created: map[string]int64{}}
			order := make([]int, nkeys)
			for i := range order {
				order[i] = (i + w) % nkeys
			}
			slices.Sort(order) // the manager sends creates in key order
			var ps []db.BatchNewStream
			for _, i := range order {
				dist := instance(fmt.Sprint(i))
				ps = append(ps, db.BatchNewStream{NewStream: db.NewStream{
					Name: "race", Key: stream.Key(dist), DistinguishedBy: dist,
					FirstEvent: base, LastEvent: base, ExpireTimestamp: at(time.Hour), Now: base,
				}})
			}
			r.err = inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
				ids, created, err := bi.CreateStreams(ctx, ps)
				for i := range ps {
					if created[i] {
						r.created[ps[i].Key] = ids[i]
					}
				}
				return err
			})
			return r
		})
		winners := map[string]int{}
		for w, r := range results {
			if r.err != nil {
				t.Errorf("transaction %d: %v", w, r.err)
			}
			for k := range r.created {
				winners[k]++
			}
		}
		if len(winners) != nkeys {
			t.Errorf("%d keys created, want %d", len(winners), nkeys)
		}
		for k, n := range winners {
			if n != 1 {
				t.Errorf("key %s created by %d transactions, want 1", k, n)
			}
		}
	})

	t.Run("IngestLoop", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Each transaction does what the trigger manager does for a batch:
		// lock the open streams of its keys (given in a shuffled order),
		// append to those it found and create the others. Every event
		// ends in the one open stream of its key.
		const nkeys, rounds = 8, 5
		events := make([]stream.Event, 0, workers*rounds)
		for w := range workers {
			for r := range rounds {
				events = append(events, newEvent(fmt.Sprintf("l-%d-%d", w, r), "test.l", at(time.Duration(r)*time.Second), nil))
			}
		}
		eventIDs := save(t, s, events...)
		errs := race(workers, func(w int) error {
			for r := range rounds {
				eid := eventIDs[w*rounds+r]
				keys := make([]db.StreamKey, nkeys)
				for i := range keys {
					keys[i] = skey("loop", instance(fmt.Sprint((i*7+w+r)%nkeys)))
				}
				for attempt := 0; ; attempt++ {
					err := inBatchTx(t, s, func(ctx context.Context, _ db.Ops, bi db.BatchIngester) error {
						open, err := bi.OpenStreams(ctx, keys)
						if err != nil {
							return err
						}
						var appends []db.AppendParams
						var creates []db.BatchNewStream
						for i := range nkeys {
							dist := instance(fmt.Sprint(i))
							if st, ok := open[skey("loop", dist)]; ok {
								appends = append(appends, db.AppendParams{StreamID: st.ID, EventIDs: []int64{eid},
									FirstEvent: st.FirstEvent, LastEvent: st.LastEvent, ExpireTimestamp: st.ExpireTimestamp})
								continue
							}
							creates = append(creates, db.BatchNewStream{NewStream: db.NewStream{
								Name: "loop", Key: stream.Key(dist), DistinguishedBy: dist,
								FirstEvent: base, LastEvent: base, ExpireTimestamp: at(time.Hour), EventIDs: []int64{eid}, Now: base,
							}})
						}
						conflicted, err := bi.AppendToStreams(ctx, appends)
						if err != nil {
							return err
						}
						if len(conflicted) > 0 {
							return fmt.Errorf("append conflicted on locked streams %v", conflicted)
						}
						_, created, err := bi.CreateStreams(ctx, creates)
						if err != nil {
							return err
						}
						if slices.Contains(created, false) {
							return fmt.Errorf("%w: lost a create race", db.ErrConflict) // redo the round
						}
						return nil
					})
					if err == nil {
						break
					}
					if !errors.Is(err, db.ErrConflict) || attempt >= 20 {
						return fmt.Errorf("worker %d round %d: %w", w, r, err)
					}
				}
			}
			return nil
		})
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		found, err := s.FindStreams(t.Context(), db.FindStreamsParams{Name: "loop", IncludeEvents: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != nkeys {
			t.Fatalf("%d streams, want %d (one per key)", len(found), nkeys)
		}
		for _, f := range found {
			if len(f.Events) != len(events) {
				t.Errorf("stream %d (%s) has %d events, want %d", f.Stream.ID, f.Stream.Key, len(f.Events), len(events))
			}
		}
	})
}
