package subscriber_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/subscriber"
	"github.com/winchester-go/winchester/trigger"
)

// store is the store the tests use.
type store interface {
	db.Store
	db.SubscriberStore
}

// forEachStore runs fn against a fresh SQLite file store and, when
// TEST_DATABASE_URL is set, a fresh PostgreSQL schema.
func forEachStore(t *testing.T, fn func(t *testing.T, s store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, openSQLite(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, openPostgres(t))
	})
}

func openSQLite(t *testing.T) store {
	s, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) store {
	s, err := postgres.Open(t.Context(), dbtest.PostgresURL(t), db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ingester stores events through the trigger manager (the ingest path),
// one transaction per call.
type ingester struct {
	t   *testing.T
	s   store
	m   *trigger.Manager
	seq int
}

func newIngester(t *testing.T, s store) *ingester {
	m, err := trigger.NewManager(s, nil, trigger.ManagerConfig{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return &ingester{t: t, s: s, m: m}
}

// events returns n new events of type typ.
func (in *ingester) events(typ string, n int) []stream.Event {
	var out []stream.Event
	for range n {
		in.seq++
		out = append(out, stream.Event{MessageID: fmt.Sprintf("m-%05d", in.seq), Type: typ,
			Timestamp: time.Date(2026, 12, 1, 0, 0, in.seq, 0, time.UTC), Traits: map[string]stream.Value{}})
	}
	return out
}

// add stores events in one ingest transaction and returns their message ids.
func (in *ingester) add(evs []stream.Event) []string {
	in.t.Helper()
	err := in.s.InTx(in.t.Context(), func(ctx context.Context, tx db.Ops) error {
		_, err := in.m.AddEventsTx(ctx, tx, evs)
		return err
	})
	if err != nil {
		in.t.Fatalf("ingest: %v", err)
	}
	return messageIDs(evs)
}

func messageIDs(evs []stream.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.MessageID)
	}
	return out
}

// recorder is a subscriber that records what it receives.
type recorder struct {
	mu       sync.Mutex
	got      []string // message ids, in order of delivery
	inFlight atomic.Int32
	maxIn    atomic.Int32
	fail     func(d subscriber.Delivery) error
	changed  chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) deliver(ctx context.Context, d subscriber.Delivery) error {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for {
		m := r.maxIn.Load()
		if n <= m || r.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	if r.fail != nil {
		if err := r.fail(d); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.got = append(r.got, d.Event.MessageID)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor waits until the recorder has received n deliveries.
func (r *recorder) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		if got := r.received(); len(got) >= n {
			return got
		}
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond): // the recorder's signal may be taken by an earlier wait
		case <-deadline:
			t.Fatalf("received %d deliveries in %s, want %d", len(r.received()), waitLimit, n)
		}
	}
}

// run starts a runner of defs and returns a function that stops it and
// waits for it.
func run(t *testing.T, s subscriber.Store, name string, defs ...subscriber.Definition) func() {
	t.Helper()
	r, err := subscriber.NewRunner(s, defs, subscriber.RunnerConfig{Name: name, PollInterval: 10 * time.Millisecond,
		Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// created waits until subscriber name has a state (a runner created it at
// the head of the log), so that the events stored next are delivered.
// waitLimit bounds the tests' waits. On PostgreSQL an event reaches
// subscribers once every transaction older than it ended on the whole
// server, so a transaction another test holds open holds the delivery:
// the limit is generous.
const waitLimit = 3 * time.Minute

// eventually polls check until it reports done, failing the test with
// its last description after waitLimit.
func eventually(t *testing.T, check func() (done bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		done, state := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", waitLimit, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// created waits until subscriber name has a state (a runner created it at
// the head of the log), so that the events stored next are delivered.
func created(t *testing.T, s db.SubscriberStore, name string) {
	t.Helper()
	eventually(t, func() (bool, string) {
		_, err := s.SubscriberState(t.Context(), name)
		return err == nil, fmt.Sprintf("subscriber %s has no state: %v", name, err)
	})
}

func TestOrderedDeliveryExactlyOnceWithFilter(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store) {
		in := newIngester(t, s)
		rec := newRecorder()
		run(t, s, "w1", subscriber.Definition{Name: "audit", Deliver: rec.deliver, BatchSize: 7,
			Match: func(ev stream.Event) bool { return ev.Type != "skip.me" }})
		created(t, s, "audit")
		var want []string
		for range 5 {
			want = append(want, in.add(in.events("compute.instance.create", 6))...)
			in.add(in.events("skip.me", 2))
		}
		got := rec.waitFor(t, len(want))
		if !slices.Equal(got, want) {
			t.Fatalf("delivered %v\nwant %v (every matching event once, in order)", got, want)
		}
		if m := rec.maxIn.Load(); m != 1 {
			t.Errorf("ordered subscriber had %d deliveries in flight at once, want 1", m)
		}
		st := waitPosition(t, s, "audit")
		if st.Delivered != int64(len(want)) {
			t.Errorf("stored delivered count %d, want %d", st.Delivered, len(want))
		}
	})
}

// waitPosition waits until subscriber name's position is the head of the
// log (everything dealt with and stored) and returns its state.
func waitPosition(t *testing.T, s store, name string) db.SubscriberState {
	t.Helper()
	var st db.SubscriberState
	eventually(t, func() (bool, string) {
		var err error
		if st, err = s.SubscriberState(t.Context(), name); err != nil {
			t.Fatalf("SubscriberState: %v", err)
		}
		h, err := s.HeadPosition(t.Context())
		if err != nil {
			t.Fatalf("HeadPosition: %v", err)
		}
		return st.Position == h, fmt.Sprintf("subscriber %s at %v, head %v", name, st.Position, h)
	})
	return st
}

func TestFailingSubscriberDeadLettersWhileOthersAndIngestGoOn(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store) {
		in := newIngester(t, s)
		good, bad := newRecorder(), newRecorder()
		var broken atomic.Bool
		broken.Store(true)
		var badAttempts atomic.Int32
		bad.fail = func(d subscriber.Delivery) error {
			badAttempts.Add(1)
			if broken.Load() && d.Event.Type == "poison" {
				return errors.New("receiver says no")
			}
			return nil
		}
		stop := run(t, s, "w1",
			subscriber.Definition{Name: "good", Deliver: good.deliver},
			subscriber.Definition{Name: "bad", Deliver: bad.deliver, Attempts: 3, Backoff: time.Millisecond})
		created(t, s, "good")
		created(t, s, "bad")
		var want []string
		want = append(want, in.add(in.events("fine", 3))...)
		poison := in.add(in.events("poison", 2))
		want = append(want, poison...)
		want = append(want, in.add(in.events("fine", 3))...)
		if got := good.waitFor(t, len(want)); !slices.Equal(got, want) {
			t.Fatalf("the healthy subscriber got %v, want %v", got, want)
		}
		wantBad := slices.Concat(want[:3], want[5:])
		if got := bad.waitFor(t, len(wantBad)); !slices.Equal(got, wantBad) {
			t.Fatalf("the failing subscriber got %v, want %v (the poison events dead-lettered, delivery went on)", got, wantBad)
		}
		st := waitPosition(t, s, "bad")
		if st.Failures != 6 || st.LastError != "receiver says no" {
			t.Errorf("failing subscriber state: failures %d, last error %q; want 6 and the receiver's error", st.Failures, st.LastError)
		}
		dls, err := s.DeadLetters(t.Context(), "bad", false, 10)
		if err != nil || len(dls) != 2 {
			t.Fatalf("dead letters = %+v, %v; want 2", dls, err)
		}
		for i, dl := range dls {
			if dl.MessageID != poison[i] || dl.Attempts != 3 || dl.Error != "receiver says no" || dl.EventType != "poison" {
				t.Errorf("dead letter %d = %+v", i, dl)
			}
		}
		if n, _ := s.CountDeadLetters(t.Context(), "good"); n != 0 {
			t.Errorf("the healthy subscriber has %d dead letters", n)
		}

		// The receiver is fixed; an operator retries one dead letter, then
		// all of them.
		broken.Store(false)
		if n, err := subscriber.Retry(t.Context(), s, "bad", dls[1].ID, time.Now()); err != nil || n != 1 {
			t.Fatalf("Retry(one) = %d, %v", n, err)
		}
		if got := bad.waitFor(t, len(wantBad)+1); got[len(got)-1] != poison[1] {
			t.Fatalf("after retrying one: %v, want %s last", got, poison[1])
		}
		if _, err := subscriber.Retry(t.Context(), s, "bad", 0, time.Now()); err != nil {
			t.Fatalf("Retry(all): %v", err)
		}
		if got := bad.waitFor(t, len(wantBad)+2); got[len(got)-1] != poison[0] {
			t.Fatalf("after retrying all: %v, want %s last", got, poison[0])
		}
		waitDeadLetters(t, s, "bad", 0)
		stop()
		if _, err := subscriber.Retry(t.Context(), s, "nobody", 0, time.Now()); !errors.Is(err, subscriber.ErrUnknown) {
			t.Errorf("Retry(unknown subscriber) = %v, want ErrUnknown", err)
		}
		if _, err := subscriber.Retry(t.Context(), s, "bad", 999999, time.Now()); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("Retry(unknown dead letter) = %v, want ErrNotFound", err)
		}
	})
}

func waitDeadLetters(t *testing.T, s store, name string, want int64) {
	t.Helper()
	eventually(t, func() (bool, string) {
		n, err := s.CountDeadLetters(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		return n == want, fmt.Sprintf("%s has %d dead letters, want %d", name, n, want)
	})
}

func TestDisabledSubscriberReceivesNothingAndKeepsNoBacklog(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store) {
		in := newIngester(t, s)
		on, off := newRecorder(), newRecorder()
		// It ran once before: it has a position and a dead letter.
		if _, err := s.CreateSubscriber(t.Context(), "off", time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateSubscriber(t.Context(), db.UpdateSubscriberParams{Name: "off", Now: time.Now(),
			DeadLetters: []db.DeadLetter{{EventID: 1, MessageID: "x", Attempts: 1, Error: "old"}}}); err != nil {
			t.Fatal(err)
		}
		stop := run(t, s, "w1",
			subscriber.Definition{Name: "on", Deliver: on.deliver},
			subscriber.Definition{Name: "off", Deliver: off.deliver, Disabled: true})
		created(t, s, "on")
		want := in.add(in.events("e", 5))
		on.waitFor(t, len(want))
		waitPosition(t, s, "on")
		stop()
		if got := off.received(); len(got) != 0 {
			t.Errorf("disabled subscriber received %v", got)
		}
		if _, err := s.SubscriberState(t.Context(), "off"); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("disabled subscriber's state: %v, want none (no position, no backlog)", err)
		}
		if n, _ := s.CountDeadLetters(t.Context(), "off"); n != 0 {
			t.Errorf("disabled subscriber keeps %d dead letters", n)
		}
		// Enabled again it starts at the head: the events stored while it
		// was off are not a backlog.
		run(t, s, "w1", subscriber.Definition{Name: "off", Deliver: off.deliver})
		created(t, s, "off")
		later := in.add(in.events("e", 2))
		if got := off.waitFor(t, 2); !slices.Equal(got, later) {
			t.Errorf("re-enabled subscriber got %v, want only %v", got, later)
		}
	})
}

func TestParallelDeliveryRespectsTheConcurrencyLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store) {
		in := newIngester(t, s)
		rec := newRecorder()
		release := make(chan struct{})
		var once sync.Once
		rec.fail = func(subscriber.Delivery) error {
			if rec.inFlight.Load() == 3 {
				once.Do(func() { close(release) })
			}
			<-release // hold every delivery until three are in flight together
			return nil
		}
		run(t, s, "w1", subscriber.Definition{Name: "fast", Deliver: rec.deliver, Parallel: true, Concurrency: 3, BatchSize: 20})
		created(t, s, "fast")
		want := in.add(in.events("e", 20))
		got := rec.waitFor(t, len(want))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("delivered %v, want each of %v once", got, want)
		}
		if m := rec.maxIn.Load(); m != 3 {
			t.Errorf("at most %d deliveries in flight, want exactly the limit 3", m)
		}
	})
}

func TestRunnersShareASubscriberWithoutOverlap(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store) {
		in := newIngester(t, s)
		rec := newRecorder()
		def := subscriber.Definition{Name: "audit", Deliver: rec.deliver, BatchSize: 3}
		stop1 := run(t, s, "w1", def)
		run(t, s, "w2", def)
		created(t, s, "audit")
		want := in.add(in.events("e", 10))
		rec.waitFor(t, len(want))
		waitPosition(t, s, "audit")
		stop1() // hands its claim back, if it held it: the other goes on at once
		want = append(want, in.add(in.events("e", 10))...)
		got := rec.waitFor(t, len(want))
		if !slices.Equal(got, want) {
			t.Fatalf("delivered %v\nwant %v", got, want)
		}
		if m := rec.maxIn.Load(); m != 1 {
			t.Errorf("%d deliveries of one subscriber in flight at once across runners, want 1", m)
		}
	})
}

func TestSkipMovesThePosition(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store) {
		in := newIngester(t, s)
		if _, err := subscriber.Skip(t.Context(), s, "audit", subscriber.Target{End: true}, time.Now()); !errors.Is(err, subscriber.ErrUnknown) {
			t.Fatalf("Skip(no state) = %v, want ErrUnknown", err)
		}
		if _, err := s.CreateSubscriber(t.Context(), "audit", time.Now()); err != nil {
			t.Fatal(err)
		}
		first := in.add(in.events("e", 4))
		stored, err := s.EventByMessageID(t.Context(), first[1])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := subscriber.Skip(t.Context(), s, "audit", subscriber.Target{AfterEvent: stored.ID}, time.Now()); err != nil {
			t.Fatalf("Skip(after event): %v", err)
		}
		rec := newRecorder()
		run(t, s, "w1", subscriber.Definition{Name: "audit", Deliver: rec.deliver})
		if got := rec.waitFor(t, 2); !slices.Equal(got, first[2:]) {
			t.Fatalf("after skipping past %s: got %v, want %v", first[1], got, first[2:])
		}
		st, err := subscriber.ReadStatus(t.Context(), s, "audit")
		if err != nil || !st.HasState {
			t.Fatalf("ReadStatus = %+v, %v", st, err)
		}
		if _, err := subscriber.Skip(t.Context(), s, "audit", subscriber.Target{}, time.Now()); err != nil {
			t.Fatalf("Skip(to the start): %v", err)
		}
		// From the start: every stored event again, after those delivered.
		if got := rec.waitFor(t, 6); !slices.Equal(got[2:], first) {
			t.Fatalf("after moving to the start: %v, want %v again", got, first)
		}
		if _, err := subscriber.Skip(t.Context(), s, "audit", subscriber.Target{AfterEvent: 1 << 40}, time.Now()); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("Skip(unknown event) = %v, want ErrNotFound", err)
		}
	})
}
