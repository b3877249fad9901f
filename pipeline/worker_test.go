package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	_ "github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var t0 = time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)

// workerBundle is a store with one ready stream and a registry of test
// handlers whose behaviour the test sets.
type workerBundle struct {
	store    db.Store
	clock    *testClock
	streamID int64
	// behaviour of the "probe" handler
	mu         sync.Mutex
	failNext   int           // HandleEvents fails this many more times
	block      chan struct{} // HandleEvents waits on it (or ctx) when set
	started    chan struct{} // closed when HandleEvents starts blocking
	emit       []stream.Event
	handled    int
	committed  int
	failCommit bool
}

func setupWorker(t *testing.T) *workerBundle {
	t.Helper()
	ctx := t.Context()
	s, err := db.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	b := &workerBundle{store: s, clock: &testClock{now: t0}}
	ev := stream.Event{MessageID: "m-1", Type: "compute.instance.exists", Timestamp: t0, Traits: map[string]stream.Value{"instance_id": stream.String("i-1")}}
	ids, err := s.SaveEvents(ctx, []stream.Event{ev})
	if err != nil {
		t.Fatalf("SaveEvents: %v", err)
	}
	dist := map[string]stream.Value{"instance_id": stream.String("i-1")}
	id, created, err := s.CreateStream(ctx, db.NewStream{
		Name: "t", Key: stream.Key(dist), DistinguishedBy: dist,
		FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), FireTimestamp: t0,
		EventIDs: ids, Now: t0,
	})
	if err != nil || !created {
		t.Fatalf("CreateStream: %v created=%v", err, created)
	}
	b.streamID = id
	b.clock.set(t0.Add(time.Second)) // the stream is ready to fire
	return b
}

type probe struct{ b *workerBundle }

func (p probe) HandleEvents(ctx context.Context, events []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	b := p.b
	b.mu.Lock()
	b.handled++
	block, started := b.block, b.started
	fail := b.failNext > 0
	if fail {
		b.failNext--
	}
	emit := b.emit
	b.mu.Unlock()
	if block != nil {
		close(started)
		select {
		case <-block:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	if fail {
		return nil, errors.New("probe failure")
	}
	return append(events, emit...), nil
}

func (p probe) Commit(context.Context) error {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	p.b.committed++
	if p.b.failCommit {
		return errors.New("probe commit failure")
	}
	return nil
}

func (p probe) Rollback(context.Context) error { return nil }

func (b *workerBundle) worker(t *testing.T, cfg pipeline.WorkerConfig, feed pipeline.FeedFunc) *pipeline.Worker {
	t.Helper()
	reg := pipeline.NewRegistry()
	reg.Register("probe", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return probe{b}, nil }, nil
	})
	defs, err := pipeline.Parse("pipelines.yaml", []byte("p: [probe]\n"), reg)
	if err != nil {
		t.Fatalf("pipelines: %v", err)
	}
	lookup := func(name string) (string, string, bool) {
		if name != "t" {
			return "", "", false
		}
		return "p", "p", true
	}
	if feed == nil {
		feed = func(ctx context.Context, tx db.Ops, events []stream.Event) error {
			_, err := tx.SaveEvents(ctx, events)
			return err
		}
	}
	cfg.Clock = b.clock
	w, err := pipeline.NewWorker(b.store, defs, lookup, feed, cfg)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	return w
}

func (b *workerBundle) stream(t *testing.T) stream.Stream {
	t.Helper()
	s, err := b.store.StreamByID(t.Context(), b.streamID)
	if err != nil {
		t.Fatalf("StreamByID: %v", err)
	}
	return s
}

func TestWorkerRetriesWithBackoffThenErrors(t *testing.T) {
	b := setupWorker(t)
	b.failNext = 3
	w := b.worker(t, pipeline.WorkerConfig{MaxRetries: 2, RetryBackoff: time.Minute, Purge: true}, nil)
	ctx := t.Context()

	wantFire := []time.Duration{time.Minute, 2 * time.Minute}
	for i, backoff := range wantFire {
		now := b.clock.Now()
		res, err := w.Pass(ctx, ctx)
		if err != nil {
			t.Fatalf("pass %d: %v", i+1, err)
		}
		if len(res.Attempts) != 1 || res.Attempts[0].OK {
			t.Fatalf("pass %d: attempts = %+v, want one failure", i+1, res.Attempts)
		}
		s := b.stream(t)
		if s.State != stream.StateRetryFire || s.Attempts != i+1 || s.LastError == "" {
			t.Fatalf("pass %d: state %s attempts %d error %q, want retry_fire, %d, an error", i+1, s.State, s.Attempts, s.LastError, i+1)
		}
		if want := now.Add(backoff); !s.FireTimestamp.Equal(want) {
			t.Errorf("pass %d: fire_timestamp = %s, want %s (backoff %s)", i+1, s.FireTimestamp, want, backoff)
		}
		// Not ready before the backoff has passed.
		res, err = w.Pass(ctx, ctx)
		if err != nil || len(res.Attempts) != 0 {
			t.Fatalf("pass %d again: %v, attempts %d, want none before the backoff", i+1, err, len(res.Attempts))
		}
		b.clock.set(s.FireTimestamp.Add(time.Second))
	}
	if _, err := w.Pass(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	s := b.stream(t)
	if s.State != stream.StateError || s.Attempts != 3 {
		t.Fatalf("after retries: state %s attempts %d, want error, 3", s.State, s.Attempts)
	}
	// The operator resets it; the next pass fires it.
	if _, err := b.store.ResetStream(ctx, b.streamID); err != nil {
		t.Fatal(err)
	}
	res, err := w.Pass(ctx, ctx)
	if err != nil || len(res.Attempts) != 1 || !res.Attempts[0].OK {
		t.Fatalf("after reset: %v %+v, want the stream fired", err, res.Attempts)
	}
	if _, err := b.store.StreamByID(ctx, b.streamID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("completed stream still there (err %v), want purged", err)
	}
}

func TestWorkerRescuesStaleClaim(t *testing.T) {
	b := setupWorker(t)
	ctx := t.Context()
	// A worker that died holding the stream.
	owner := "dead-worker"
	until := b.clock.Now().Add(time.Minute)
	s := b.stream(t)
	if _, err := b.store.SetStreamState(ctx, db.SetStateParams{ID: s.ID, SerialNo: s.SerialNo, State: stream.StateFiring, ClaimedBy: &owner, LeaseUntil: &until}); err != nil {
		t.Fatal(err)
	}
	w := b.worker(t, pipeline.WorkerConfig{MaxRetries: 1}, nil)
	res, err := w.Pass(ctx, ctx)
	if err != nil || res.Stats.Rescued != 0 {
		t.Fatalf("before the lease ends: %v, rescued %d, want nothing", err, res.Stats.Rescued)
	}
	b.clock.set(until.Add(time.Second))
	res, err = w.Pass(ctx, ctx)
	if err != nil || res.Stats.Rescued != 1 {
		t.Fatalf("after the lease: %v, rescued %d, want 1", err, res.Stats.Rescued)
	}
	got := b.stream(t)
	if got.State != stream.StateRetryFire || got.ClaimedBy != "" {
		t.Fatalf("rescued stream: state %s claimed_by %q, want retry_fire and no owner", got.State, got.ClaimedBy)
	}
	b.clock.set(got.FireTimestamp.Add(time.Second))
	res, err = w.Pass(ctx, ctx)
	if err != nil || len(res.Attempts) != 1 || !res.Attempts[0].OK {
		t.Fatalf("after rescue: %v %+v, want fired", err, res.Attempts)
	}
}

func TestWorkerStoresNewEventsWithCompletion(t *testing.T) {
	b := setupWorker(t)
	ctx := t.Context()
	b.emit = []stream.Event{{MessageID: "new-1", Type: "compute.instance.exists.verified", Timestamp: t0}}

	// A feed that fails: the stream must not complete and the new event
	// must not be stored.
	failing := func(ctx context.Context, tx db.Ops, events []stream.Event) error {
		if _, err := tx.SaveEvents(ctx, events); err != nil {
			return err
		}
		return errors.New("feed failed")
	}
	w := b.worker(t, pipeline.WorkerConfig{MaxRetries: 3}, failing)
	res, err := w.Pass(ctx, ctx)
	if err != nil || len(res.Attempts) != 1 || res.Attempts[0].OK || res.Attempts[0].Err == nil {
		t.Fatalf("pass with a failing feed: %v %+v, want one failed attempt and the pass going on", err, res.Attempts)
	}
	if _, err := b.store.EventByMessageID(ctx, "new-1"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("new event stored although the completion failed (err %v)", err)
	}
	// The handlers committed: the stream is not run again automatically
	// but waits in error with the reason.
	if s := b.stream(t); s.State != stream.StateError || s.LastError == "" {
		t.Fatalf("state %s error %q, want error with the completion failure", s.State, s.LastError)
	}

	b2 := setupWorker(t)
	b2.emit = b.emit
	w2 := b2.worker(t, pipeline.WorkerConfig{Purge: false}, nil)
	res, err = w2.Pass(ctx, ctx)
	if err != nil || len(res.Attempts) != 1 || !res.Attempts[0].OK || res.Stats.NewEvents != 1 {
		t.Fatalf("pass: %v %+v new %d, want one completed stream with one new event", err, res.Attempts, res.Stats.NewEvents)
	}
	if _, err := b2.store.EventByMessageID(ctx, "new-1"); err != nil {
		t.Fatalf("new event not stored: %v", err)
	}
	if s := b2.stream(t); s.State != stream.StateCompleted || s.SerialNo != 2 {
		t.Fatalf("state %s serial %d, want completed, 2", s.State, s.SerialNo)
	}
}

func TestWorkerUnknownTriggerGoesToErrorAndGoesOn(t *testing.T) {
	b := setupWorker(t)
	ctx := t.Context()
	dist := map[string]stream.Value{"x": stream.Int(1)}
	if _, _, err := b.store.CreateStream(ctx, db.NewStream{
		Name: "gone", Key: stream.Key(dist), DistinguishedBy: dist,
		FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), FireTimestamp: t0.Add(-time.Second), Now: t0,
	}); err != nil {
		t.Fatal(err)
	}
	w := b.worker(t, pipeline.WorkerConfig{MaxRetries: 3}, nil)
	res, err := w.Pass(ctx, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Attempts) != 2 || res.Attempts[0].OK || !res.Attempts[1].OK {
		t.Fatalf("attempts %+v, want the unknown trigger's stream failed first, then ours fired", res.Attempts)
	}
	all, err := b.store.FindStreams(ctx, db.FindStreamsParams{Name: "gone"})
	if err != nil || len(all) != 1 || all[0].Stream.State != stream.StateError {
		t.Fatalf("unknown trigger stream: %v %+v, want state error (no retries for a config problem)", err, all)
	}
}

func TestWorkerShutdownReleasesRunningStream(t *testing.T) {
	b := setupWorker(t)
	b.block = make(chan struct{})
	b.started = make(chan struct{})
	w := b.worker(t, pipeline.WorkerConfig{ShutdownGrace: 50 * time.Millisecond, Delay: time.Hour}, nil)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-b.started:
	case <-time.After(10 * time.Second):
		t.Fatal("pipeline did not start")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil on shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}
	s := b.stream(t)
	if s.State != stream.StateRetryFire || s.Attempts != 0 || s.ClaimedBy != "" {
		t.Fatalf("after shutdown: state %s attempts %d owner %q, want retry_fire, 0, none", s.State, s.Attempts, s.ClaimedBy)
	}
	if b.committed != 0 {
		t.Errorf("committed %d times, want 0", b.committed)
	}
}

func TestWorkerRunFinishesWithinGrace(t *testing.T) {
	b := setupWorker(t)
	b.block = make(chan struct{})
	b.started = make(chan struct{})
	w := b.worker(t, pipeline.WorkerConfig{ShutdownGrace: time.Minute, Delay: time.Hour, Purge: true}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-b.started
	cancel()
	close(b.block) // the pipeline finishes within the grace period
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := b.store.StreamByID(t.Context(), b.streamID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("stream not completed and purged after a graceful stop (err %v)", err)
	}
	if b.committed != 1 {
		t.Errorf("committed %d times, want 1", b.committed)
	}
}

func TestWorkerCommitFailureIsNotRetried(t *testing.T) {
	b := setupWorker(t)
	b.failCommit = true
	w := b.worker(t, pipeline.WorkerConfig{MaxRetries: 5}, nil)
	res, err := w.Pass(t.Context(), t.Context())
	if err != nil || len(res.Attempts) != 1 || res.Attempts[0].OK || !errors.Is(res.Attempts[0].Err, pipeline.ErrCommit) {
		t.Fatalf("pass: %v %+v, want one failed attempt with a commit error", err, res.Attempts)
	}
	s := b.stream(t)
	if s.State != stream.StateError || s.Attempts != 1 || s.LastError == "" {
		t.Fatalf("state %s attempts %d error %q, want error (no automatic retry), 1, the commit error", s.State, s.Attempts, s.LastError)
	}
}

func ExampleWorker() {
	fmt.Println(pipeline.DefaultBatchSize, pipeline.DefaultDelay)
	// Output: 1000 10s
}

// slowCommit blocks in Commit until its context ends (or until release is
// closed), after announcing that it started.
type slowCommit struct {
	started chan struct{}
	release chan struct{}
}

func (slowCommit) HandleEvents(_ context.Context, evs []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	return evs, nil
}

func (h slowCommit) Commit(ctx context.Context) error {
	select {
	case h.started <- struct{}{}:
	default:
	}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-h.release:
		return nil
	}
}

func (slowCommit) Rollback(context.Context) error { return nil }

// workerWith builds a worker over pipeline "p" defined by yaml, with the
// probe and slow handlers.
func (b *workerBundle) workerWith(t *testing.T, cfg pipeline.WorkerConfig, yaml string, feed pipeline.FeedFunc, slow slowCommit) *pipeline.Worker {
	t.Helper()
	reg := pipeline.NewRegistry()
	reg.Register("probe", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return probe{b}, nil }, nil
	})
	reg.Register("slow", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return slow, nil }, nil
	})
	defs, err := pipeline.Parse("pipelines.yaml", []byte(yaml), reg)
	if err != nil {
		t.Fatalf("pipelines: %v", err)
	}
	lookup := func(name string) (string, string, bool) { return "p", "p", name == "t" }
	if feed == nil {
		feed = func(ctx context.Context, tx db.Ops, events []stream.Event) error {
			_, err := tx.SaveEvents(ctx, events)
			return err
		}
	}
	cfg.Clock = b.clock
	w, err := pipeline.NewWorker(b.store, defs, lookup, feed, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// The shutdown grace bounds commits too: a commit still running when it
// ends is cancelled and the stream is handed back (no attempt charged), to
// be run again by another worker; handler side effects are at least once,
// which the idempotency key of the built-in handlers lets receivers see.
func TestWorkerShutdownDuringCommitHandsBack(t *testing.T) {
	b := setupWorker(t)
	slow := slowCommit{started: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(slow.release)
	w := b.workerWith(t, pipeline.WorkerConfig{ShutdownGrace: 50 * time.Millisecond, Delay: time.Hour, Purge: false},
		"p: [probe, slow]\n", nil, slow)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-slow.started // probe has committed; slow is committing
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run returned %s after the signal, want about the 50ms grace", d)
	}
	if s := b.stream(t); s.State != stream.StateRetryFire || s.Attempts != 0 || s.ClaimedBy != "" {
		t.Fatalf("state %s attempts %d owner %q, want retry_fire, 0, none (handed back)", s.State, s.Attempts, s.ClaimedBy)
	}
}

// When another worker takes the stream over while the pipeline runs, the
// lease renewal notices, the run is rolled back, and nothing commits.
func TestWorkerLostLeaseRollsBack(t *testing.T) {
	b := setupWorker(t)
	b.block = make(chan struct{})
	b.started = make(chan struct{})
	w := b.worker(t, pipeline.WorkerConfig{Lease: 90 * time.Millisecond, MaxRetries: 3, Purge: true}, nil)
	ctx := t.Context()
	done := make(chan pipeline.PassResult, 1)
	go func() {
		res, _ := w.Pass(ctx, ctx)
		done <- res
	}()
	<-b.started
	owner := "rescuer"
	until := b.clock.Now().Add(time.Hour)
	for {
		// The running worker renews its lease meanwhile: take the stream
		// over from whatever serial number it has now.
		s := b.stream(t)
		_, err := b.store.SetStreamState(ctx, db.SetStateParams{ID: s.ID, SerialNo: s.SerialNo, State: stream.StateFiring, ClaimedBy: &owner, LeaseUntil: &until})
		if err == nil {
			break
		}
		if !errors.Is(err, db.ErrConflict) {
			t.Fatal(err)
		}
	}
	var res pipeline.PassResult
	select {
	case res = <-done: // the renewal cancelled the blocked handler
	case <-time.After(10 * time.Second):
		close(b.block)
		t.Fatal("the run was not cancelled after the claim was lost")
	}
	if len(res.Attempts) != 1 || !res.Attempts[0].LostClaim || res.Attempts[0].OK {
		t.Fatalf("attempts %+v, want one locked attempt", res.Attempts)
	}
	if b.committed != 0 {
		t.Errorf("committed %d times after the claim was lost, want 0", b.committed)
	}
	if got := b.stream(t); got.ClaimedBy != "rescuer" {
		t.Errorf("claimed_by %q, want the rescuer's claim untouched", got.ClaimedBy)
	}
}

// A completion that fails because the database is unavailable is retried
// (the handlers have committed): the stream completes with its new events
// and its pipeline does not run again.
func TestWorkerRetriesCompletionThroughOutage(t *testing.T) {
	b := setupWorker(t)
	calls := 0
	feed := func(ctx context.Context, tx db.Ops, events []stream.Event) error {
		calls++
		if calls <= 2 {
			return fmt.Errorf("store new events: %w", db.ErrUnavailable)
		}
		_, err := tx.SaveEvents(ctx, events)
		return err
	}
	b.emit = []stream.Event{{MessageID: "new-1", Type: "x", Timestamp: t0}}
	var slept []time.Duration
	w := b.workerWith(t, pipeline.WorkerConfig{Purge: false, SleepFunc: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}}, "p: [probe]\n", feed, slowCommit{})
	res, err := w.Pass(t.Context(), t.Context())
	if err != nil || len(res.Attempts) != 1 || !res.Attempts[0].OK {
		t.Fatalf("pass: %v %+v, want the stream completed", err, res.Attempts)
	}
	if s := b.stream(t); s.State != stream.StateCompleted || b.committed != 1 {
		t.Fatalf("state %s commits %d, want completed after one run", s.State, b.committed)
	}
	if _, err := b.store.EventByMessageID(t.Context(), "new-1"); err != nil {
		t.Errorf("new event not stored: %v", err)
	}
	if len(slept) != 2 || slept[1] <= slept[0] {
		t.Errorf("backoffs %v, want two growing waits", slept)
	}
}

// failingEvents is a store whose StreamEvents always fails for one stream.
type failingEvents struct {
	db.Store
	bad int64
}

func (f failingEvents) StreamEvents(ctx context.Context, id int64) ([]stream.Event, error) {
	if id == f.bad {
		return nil, errors.New("stored traits do not decode")
	}
	return f.Store.StreamEvents(ctx, id)
}

func (f failingEvents) StreamsEvents(ctx context.Context, ids []int64) (map[int64][]stream.Event, error) {
	if slices.Contains(ids, f.bad) {
		return nil, errors.New("stored traits do not decode")
	}
	return f.Store.StreamsEvents(ctx, ids)
}

// A stream whose events cannot be read fails (counting attempts) without
// stopping the pass: other streams still expire.
func TestWorkerUnreadableStreamDoesNotStarveOthers(t *testing.T) {
	b := setupWorker(t)
	ctx := t.Context()
	dist := map[string]stream.Value{"instance_id": stream.String("i-2")}
	other, _, err := b.store.CreateStream(ctx, db.NewStream{Name: "t", Key: stream.Key(dist), DistinguishedBy: dist,
		FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	reg := pipeline.NewRegistry()
	reg.Register("probe", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return probe{b}, nil }, nil
	})
	defs, err := pipeline.Parse("pipelines.yaml", []byte("p: [probe]\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pipeline.NewWorker(failingEvents{Store: b.store, bad: b.streamID}, defs,
		func(string) (string, string, bool) { return "p", "p", true },
		func(context.Context, db.Ops, []stream.Event) error { return nil },
		pipeline.WorkerConfig{Clock: b.clock, MaxRetries: 1, RetryBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pass(ctx, ctx); err != nil {
		t.Fatalf("pass: %v", err)
	}
	if s := b.stream(t); s.State != stream.StateRetryFire || s.Attempts != 1 {
		t.Errorf("unreadable stream: state %s attempts %d, want retry_fire, 1", s.State, s.Attempts)
	}
	if o, err := b.store.StreamByID(ctx, other); err != nil || o.State != stream.StateCompleted {
		t.Errorf("other stream: %v state %s, want expired (completed)", err, o.State)
	}
}
