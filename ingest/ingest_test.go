package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

const testTriggers = `
- name: per_instance
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
`

const testEventDefs = `
- event_type: compute.instance.*
  traits:
    instance_id:
      fields: payload.instance_id
`

// countingStore is a real store that counts its transactions and can
// hold the first one, or fail the transactions holding a given event.
type countingStore struct {
	db.Store
	mu     sync.Mutex
	txs    int
	sizes  []int
	hold   chan struct{} // when not nil, the first transaction waits for it to close
	held   chan struct{} // closed when the first transaction is waiting
	poison string        // SaveEvents fails when it sees this message id
}

func (s *countingStore) InTx(ctx context.Context, fn func(ctx context.Context, tx db.Ops) error) error {
	s.mu.Lock()
	s.txs++
	first := s.txs == 1
	s.mu.Unlock()
	if first && s.hold != nil {
		close(s.held)
		<-s.hold
	}
	return s.Store.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		return fn(ctx, &countingOps{Ops: tx, s: s})
	})
}

type countingOps struct {
	db.Ops
	s *countingStore
}

func (o *countingOps) SaveEvents(ctx context.Context, events []stream.Event) ([]int64, error) {
	o.s.mu.Lock()
	o.s.sizes = append(o.s.sizes, len(events))
	poison := o.s.poison
	o.s.mu.Unlock()
	for _, ev := range events {
		if poison != "" && ev.MessageID == poison {
			return nil, fmt.Errorf("poisoned event %s", ev.MessageID)
		}
	}
	return o.Ops.SaveEvents(ctx, events)
}

// BatchIngester is not passed through, so the manager takes the
// single-stream path: the counting is the point here, not speed.

func (s *countingStore) transactions() (int, []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txs, append([]int(nil), s.sizes...)
}

type bundle struct {
	store *countingStore
	mgr   *trigger.Manager
	in    *Ingester
}

type opener struct {
	name string
	open func(t *testing.T) db.Store
}

func openers() []opener {
	return []opener{
		{"sqlite", func(t *testing.T) db.Store { return enginetest.SQLite(t) }},
		{"postgres", func(t *testing.T) db.Store { return enginetest.Postgres(t) }},
	}
}

func setup(t *testing.T, open func(t *testing.T) db.Store, cfg Config) *bundle {
	t.Helper()
	store := &countingStore{Store: open(t)}
	mgr := enginetest.Manager(t, store, testTriggers, trigger.ManagerConfig{
		Clock: fixedClock{when.Add(time.Minute)}, DistillFunc: enginetest.Distill(t, testEventDefs),
	})
	cfg.Logger = dbtest.Logger(t)
	return &bundle{store: store, mgr: mgr, in: New(mgr, cfg)}
}

var when = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func event(id, typ, instance string) stream.Event {
	return stream.Event{MessageID: id, Type: typ, Timestamp: when,
		Traits: map[string]stream.Value{"instance_id": stream.String(instance)}}
}

func notification(id, typ, instance string) []byte {
	return fmt.Appendf(nil, `{"message_id": %q, "event_type": %q, "timestamp": "2026-01-02 03:04:05.000000",
		"payload": {"instance_id": %q}}`, id, typ, instance)
}

func forEachStore(t *testing.T, f func(t *testing.T, open func(t *testing.T) db.Store)) {
	for _, o := range openers() {
		t.Run(o.name, func(t *testing.T) {
			t.Parallel()
			f(t, o.open)
		})
	}
}

// Submissions that arrive while a group is being written are written
// together in the next transaction, and each caller gets its own results.
func TestConcurrentSubmissionsShareATransaction(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) db.Store) {
		b := setup(t, open, Config{Linger: -1})
		b.store.hold = make(chan struct{})
		b.store.held = make(chan struct{})
		ctx := t.Context()

		first := make(chan error, 1)
		go func() {
			_, err := b.in.AddEvents(ctx, SourceLibrary, []stream.Event{event("first", "compute.instance.update", "i-0")})
			first <- err
		}()
		<-b.store.held // the first group is being written

		const n = 40
		joined := make(chan struct{}, n)
		b.in.mu.Lock()
		b.in.onJoin = func() { joined <- struct{}{} }
		b.in.mu.Unlock()
		type answer struct {
			i   int
			res []trigger.Result
			err error
		}
		answers := make(chan answer, n)
		for i := range n {
			go func() {
				evs := []stream.Event{event(fmt.Sprintf("m%d", i), "compute.instance.update", fmt.Sprintf("i-%d", i%4))}
				if i == 7 {
					evs = append(evs, event("m0", "compute.instance.update", "i-0")) // duplicate of submission 0's
					evs = append(evs, stream.Event{MessageID: "bad", Type: "x"})     // no timestamp
				}
				res, err := b.in.AddEvents(ctx, SourceHTTP, evs)
				answers <- answer{i, res, err}
			}()
		}
		for range n {
			select {
			case <-joined:
			case <-time.After(10 * time.Second):
				t.Fatal("submissions did not join the next group")
			}
		}
		close(b.store.hold)
		if err := <-first; err != nil {
			t.Fatalf("first submission: %v", err)
		}
		// Submissions 0 and 7 both carry m0 and share a group: whichever
		// joined first stores it and the other is told it is a duplicate.
		// Exactly one copy is stored either way.
		all := make(map[int]answer, n)
		for range n {
			a := <-answers
			if a.err != nil {
				t.Fatalf("submission %d: %v", a.i, a.err)
			}
			all[a.i] = a
		}
		if len(all[7].res) != 3 || len(all[0].res) != 1 {
			t.Fatalf("results: submission 0 %v, submission 7 %v", all[0].res, all[7].res)
		}
		m0First, m0Second := all[0].res[0].Outcome, all[7].res[1].Outcome
		if m0First == m0Second || (m0First != trigger.Stored && m0First != trigger.Duplicate) ||
			(m0Second != trigger.Stored && m0Second != trigger.Duplicate) {
			t.Errorf("m0 outcomes: submission 0 %v, submission 7 %v; want one stored and one duplicate", m0First, m0Second)
		}
		for i := range n {
			a := all[i]
			want := []trigger.Outcome{trigger.Stored}
			if i == 0 {
				want[0] = m0First
			}
			if i == 7 {
				want = []trigger.Outcome{trigger.Stored, m0Second, trigger.Rejected}
			}
			if len(a.res) != len(want) {
				t.Fatalf("submission %d: %d results, want %d", a.i, len(a.res), len(want))
			}
			for j, r := range a.res {
				if r.Outcome != want[j] {
					t.Errorf("submission %d result %d = %v (%s), want %v", a.i, j, r.Outcome, r.Reason, want[j])
				}
			}
			if a.res[0].MessageID != fmt.Sprintf("m%d", a.i) {
				t.Errorf("submission %d got the results of %s", a.i, a.res[0].MessageID)
			}
		}
		txs, sizes := b.store.transactions()
		if txs != 2 {
			t.Errorf("%d transactions for 1+%d submissions, want 2 (group sizes %v)", txs, n, sizes)
		}
		got, err := b.store.CountEvents(ctx, db.FindEventsParams{})
		if err != nil {
			t.Fatal(err)
		}
		if got != 1+n {
			t.Errorf("%d events stored, want %d", got, 1+n)
		}
	})
}

// A submission larger than MaxEvents is written alone and whole.
func TestMaxEventsSplitsGroupsNotSubmissions(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) db.Store) {
		b := setup(t, open, Config{Linger: -1, MaxEvents: 3})
		b.store.hold = make(chan struct{})
		b.store.held = make(chan struct{})
		ctx := t.Context()
		errs := make(chan error, 4)
		go func() {
			_, err := b.in.AddEvents(ctx, SourceLibrary, []stream.Event{event("first", "compute.instance.update", "i-0")})
			errs <- err
		}()
		<-b.store.held
		joined := make(chan struct{}, 3)
		b.in.mu.Lock()
		b.in.onJoin = func() { joined <- struct{}{} }
		b.in.mu.Unlock()
		submit := func(ids ...string) {
			var evs []stream.Event
			for _, id := range ids {
				evs = append(evs, event(id, "compute.instance.update", "i-1"))
			}
			go func() {
				res, err := b.in.AddEvents(ctx, SourceLibrary, evs)
				if err == nil && len(res) != len(ids) {
					err = fmt.Errorf("%d results for %d events", len(res), len(ids))
				}
				errs <- err
			}()
			<-joined
		}
		submit("a1", "a2")
		submit("b1", "b2", "b3", "b4", "b5") // more than MaxEvents: its own group
		submit("c1")
		close(b.store.hold)
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		_, sizes := b.store.transactions()
		// b does not fit beside a: a's group closes; b is bigger than a
		// group: it is written alone; c starts the next group.
		if got := fmt.Sprint(sortedInts(sizes)); got != "[1 1 2 5]" {
			t.Errorf("SaveEvents batch sizes %v, want 1 (first), 2 (a), 5 (b alone) and 1 (c)", sizes)
		}
	})
}

func sortedInts(s []int) []int {
	out := append([]int(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// A submission that makes the group's transaction fail fails alone; the
// others of its group are stored.
func TestFailedSubmissionDoesNotFailItsGroup(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) db.Store) {
		b := setup(t, open, Config{Linger: -1})
		b.store.hold = make(chan struct{})
		b.store.held = make(chan struct{})
		b.store.poison = "poison"
		ctx := t.Context()
		errs := make(chan error, 1)
		go func() {
			_, err := b.in.AddEvents(ctx, SourceLibrary, []stream.Event{event("first", "compute.instance.update", "i-0")})
			errs <- err
		}()
		<-b.store.held
		joined := make(chan struct{}, 3)
		b.in.mu.Lock()
		b.in.onJoin = func() { joined <- struct{}{} }
		b.in.mu.Unlock()
		results := make(map[string]chan error)
		for _, id := range []string{"good1", "poison", "good2"} {
			ch := make(chan error, 1)
			results[id] = ch
			go func() {
				res, err := b.in.AddEvents(ctx, SourceLibrary, []stream.Event{event(id, "compute.instance.update", "i-1")})
				if err == nil && res[0].Outcome != trigger.Stored {
					err = fmt.Errorf("outcome %v", res[0].Outcome)
				}
				ch <- err
			}()
			<-joined
		}
		close(b.store.hold)
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		for id, ch := range results {
			err := <-ch
			if id == "poison" {
				if err == nil || !strings.Contains(err.Error(), "poisoned") {
					t.Errorf("poisoned submission: error %v, want the transaction's error", err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v, want stored despite the failing submission in its group", id, err)
			}
		}
		for id, want := range map[string]bool{"good1": true, "good2": true, "poison": false} {
			_, err := b.store.EventByMessageID(ctx, id)
			if got := err == nil; got != want {
				t.Errorf("event %s stored = %v, want %v (err %v)", id, got, want, err)
			}
		}
	})
}

// When the database is gone, every caller gets an error and no result.
func TestDatabaseDownFailsEveryCaller(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) db.Store) {
		b := setup(t, open, Config{})
		if err := b.store.Store.Close(); err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				res, err := b.in.AddNotifications(ctx, SourceAMQP, [][]byte{notification(fmt.Sprint("n", i), "compute.instance.update", "i-1")})
				if err == nil {
					err = fmt.Errorf("results %v, want an error", res)
				} else {
					err = nil
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

func TestNotifications(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) db.Store) {
		b := setup(t, open, Config{})
		ctx := t.Context()
		bodies := [][]byte{
			notification("n1", "compute.instance.update", "i-1"),
			[]byte(`{"not json`),
			notification("n2", "compute.instance.exists", "i-1"),
			notification("n1", "compute.instance.update", "i-1"),
		}
		res, err := b.in.AddNotifications(ctx, SourceHTTP, bodies)
		if err != nil {
			t.Fatal(err)
		}
		want := []trigger.Outcome{trigger.Stored, trigger.Rejected, trigger.Stored, trigger.Duplicate}
		for i, r := range res {
			if r.Outcome != want[i] {
				t.Errorf("notification %d: %v (%s), want %v", i, r.Outcome, r.Reason, want[i])
			}
		}
		if res[1].Reason == "" {
			t.Error("rejected notification without a reason")
		}
		streams, err := b.store.FindStreams(ctx, db.FindStreamsParams{Name: "per_instance"})
		if err != nil {
			t.Fatal(err)
		}
		if len(streams) != 1 || streams[0].Stream.FireTimestamp.IsZero() {
			t.Errorf("streams %+v, want one ready to fire", streams)
		}
		totals, _ := b.mgr.Stats().Totals()
		if totals["received_notifications"] != 4 {
			t.Errorf("manager counted %d received notifications, want 4", totals["received_notifications"])
		}
	})
}

// A big batch is distilled on several goroutines; results keep their
// order.
func TestBigNotificationBatchKeepsOrder(t *testing.T) {
	b := setup(t, openers()[0].open, Config{})
	var bodies [][]byte
	for i := range 500 {
		if i%7 == 3 {
			bodies = append(bodies, []byte(`[]`))
			continue
		}
		bodies = append(bodies, notification(fmt.Sprint("n", i), "compute.instance.update", fmt.Sprint("i-", i%10)))
	}
	res, err := b.in.AddNotifications(t.Context(), SourceHTTP, bodies)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if i%7 == 3 {
			if r.Outcome != trigger.Rejected {
				t.Errorf("result %d = %v, want rejected", i, r.Outcome)
			}
			continue
		}
		if r.Outcome != trigger.Stored || r.MessageID != fmt.Sprint("n", i) {
			t.Errorf("result %d = %+v, want n%d stored", i, r, i)
		}
	}
}

// A waiting caller whose context ends gets its context's error.
func TestCallerContextEnds(t *testing.T) {
	b := setup(t, openers()[0].open, Config{Linger: -1})
	b.store.hold = make(chan struct{})
	b.store.held = make(chan struct{})
	defer close(b.store.hold)
	go func() {
		_, _ = b.in.AddEvents(context.Background(), SourceLibrary, []stream.Event{event("first", "compute.instance.update", "i-0")})
	}()
	<-b.store.held
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := b.in.AddEvents(ctx, SourceLibrary, []stream.Event{event("second", "compute.instance.update", "i-0")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("AddEvents with a cancelled context = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = b.in.AddEvents(ctx, SourceLibrary, []stream.Event{event("third", "compute.instance.update", "i-0")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AddEvents waiting past its deadline = %v, want context.DeadlineExceeded", err)
	}
}

// The writer of a group waits (up to Linger) for as many submissions as
// were in flight when the previous group committed: the caller answered by
// that commit comes back and joins, and the two cohorts share one
// transaction instead of alternating.
func TestLingerWaitsForTheCallersOfThePreviousCommit(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) db.Store) {
		b := setup(t, open, Config{Linger: time.Minute})
		b.store.hold = make(chan struct{})
		b.store.held = make(chan struct{})
		ctx := t.Context()
		errs := make(chan error, 5)
		add := func(id string) {
			go func() {
				_, err := b.in.AddEvents(ctx, SourceHTTP, []stream.Event{event(id, "compute.instance.update", "i-"+id)})
				errs <- err
			}()
		}
		add("x")
		<-b.store.held // x's group (nothing to wait for yet) is being written
		joined := make(chan struct{}, 4)
		lingering := make(chan struct{}, 1)
		b.in.mu.Lock()
		b.in.onJoin = func() { joined <- struct{}{} }
		b.in.onLinger = func() { lingering <- struct{}{} }
		b.in.mu.Unlock()
		for _, id := range []string{"y1", "y2", "y3"} {
			add(id)
			<-joined
		}
		close(b.store.hold)
		if err := <-errs; err != nil { // x's, answered first
			t.Fatal(err)
		}
		// Four submissions were in flight at x's commit: the y group waits
		// for a fourth, x's caller coming back.
		select {
		case <-lingering:
		case <-time.After(20 * time.Second):
			t.Fatal("the writer of the y group did not wait for x's caller")
		}
		add("x2")
		for range 4 {
			select {
			case err := <-errs:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the lingering group was not written when its fourth submission joined")
			}
		}
		txs, sizes := b.store.transactions()
		if txs != 2 || fmt.Sprint(sizes) != "[1 4]" {
			t.Errorf("%d transactions of %v events, want 2 of [1 4]", txs, sizes)
		}
	})
}

// A caller submitting alone, one submission after the other, is never
// kept waiting for company, however long Linger is.
func TestLoneCallerDoesNotLinger(t *testing.T) {
	b := setup(t, openers()[0].open, Config{Linger: time.Hour})
	done := make(chan error, 1)
	go func() {
		for i := range 3 {
			if _, err := b.in.AddEvents(t.Context(), SourceLibrary, []stream.Event{event(fmt.Sprint("m", i), "compute.instance.update", "i-1")}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sequential submissions waited for the linger")
	}
	if txs, _ := b.store.transactions(); txs != 3 {
		t.Errorf("%d transactions, want 3", txs)
	}
}
