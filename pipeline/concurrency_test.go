package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// gate blocks HandleEvents of one stream until its context ends; the
// other streams pass.
type gate struct {
	blocked int64
	started chan struct{}
}

func (g gate) HandleEvents(ctx context.Context, evs []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	if env.StreamID == g.blocked {
		close(g.started)
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
	return evs, nil
}

func (g gate) Commit(context.Context) error   { return nil }
func (g gate) Rollback(context.Context) error { return nil }

// addReadyStream adds a stream of trigger "t" ready to fire at t0.
func (b *workerBundle) addReadyStream(t *testing.T, key string) int64 {
	t.Helper()
	dist := map[string]stream.Value{"instance_id": stream.String(key)}
	id, _, err := b.store.CreateStream(t.Context(), db.NewStream{Name: "t", Key: stream.Key(dist), DistinguishedBy: dist,
		FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), FireTimestamp: t0.Add(time.Millisecond), Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A stream whose handler never returns holds one of the worker's slots:
// the worker's other streams still run, and the shutdown grace hands the
// stuck one back.
func TestWorkerSlowStreamDoesNotStallOthers(t *testing.T) {
	b := setupWorker(t)
	other := b.addReadyStream(t, "i-2")
	g := gate{blocked: b.streamID, started: make(chan struct{})}
	reg := pipeline.NewRegistry()
	reg.Register("gate", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return g, nil }, nil
	})
	defs, err := pipeline.Parse("pipelines.yaml", []byte("p:\n  timeout: {handle: 1h}\n  handlers: [gate]\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pipeline.NewWorker(b.store, defs, func(string) (string, string, bool) { return "p", "p", true },
		func(context.Context, db.Ops, []stream.Event) error { return nil },
		pipeline.WorkerConfig{Clock: b.clock, Concurrency: 2, Delay: 10 * time.Millisecond, ShutdownGrace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-g.started
	deadline := time.After(10 * time.Second)
	for {
		s, err := b.store.StreamByID(t.Context(), other)
		if err == nil && s.State == stream.StateCompleted {
			break
		}
		select {
		case <-deadline:
			cancel()
			t.Fatalf("the other stream is %s (%v) while the first one hangs, want completed", s.State, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}
	if s := b.stream(t); s.State != stream.StateRetryFire || s.Attempts != 0 {
		t.Errorf("hung stream: state %s attempts %d, want retry_fire, 0 (handed back by the shutdown)", s.State, s.Attempts)
	}
}

// Pass runs up to Concurrency streams at once and returns when all are
// done.
func TestWorkerPassRunsStreamsConcurrently(t *testing.T) {
	b := setupWorker(t)
	for _, k := range []string{"i-2", "i-3", "i-4"} {
		b.addReadyStream(t, k)
	}
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	reg := pipeline.NewRegistry()
	reg.Register("meet", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return meet{arrived, release}, nil }, nil
	})
	defs, err := pipeline.Parse("pipelines.yaml", []byte("p: [meet]\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pipeline.NewWorker(b.store, defs, func(string) (string, string, bool) { return "p", "p", true },
		func(context.Context, db.Ops, []stream.Event) error { return nil },
		pipeline.WorkerConfig{Clock: b.clock, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	together := make(chan bool, 1)
	go func() {
		// All four pipelines must be running at the same time before any
		// of them may finish.
		defer close(release)
		for range 4 {
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				together <- false
				return
			}
		}
		together <- true
	}()
	res, err := w.Pass(t.Context(), t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !<-together {
		t.Error("the four pipelines did not run at the same time")
	}
	if res.Stats.Fired != 4 || len(res.Attempts) != 4 {
		t.Fatalf("pass fired %d (%d attempts), want 4 streams run together", res.Stats.Fired, len(res.Attempts))
	}
}

type meet struct {
	arrived chan<- struct{}
	release <-chan struct{}
}

func (m meet) HandleEvents(ctx context.Context, evs []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	m.arrived <- struct{}{}
	select {
	case <-m.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return evs, nil
}

func (meet) Commit(ctx context.Context) error   { return nil }
func (meet) Rollback(ctx context.Context) error { return nil }

// Under on_error: continue a failing handler is skipped and counted; the
// stream completes and the other handlers commit.
func TestWorkerOnErrorContinueCountsAndCompletes(t *testing.T) {
	b := setupWorker(t)
	b.failNext = 1
	w := b.workerWith(t, pipeline.WorkerConfig{}, "p:\n  on_error: continue\n  handlers: [probe, slow]\n", nil,
		slowCommit{started: make(chan struct{}, 1), release: closedChan()})
	res, err := w.Pass(t.Context(), t.Context())
	if err != nil || len(res.Attempts) != 1 || !res.Attempts[0].OK {
		t.Fatalf("pass: %v %+v, want the stream completed", err, res.Attempts)
	}
	if res.Stats.HandlerErrors != 1 || len(res.Attempts[0].Skipped) != 1 || res.Attempts[0].Skipped[0].Handler != "probe" {
		t.Errorf("handler errors %d, skipped %v; want the probe's failure counted once", res.Stats.HandlerErrors, res.Attempts[0].Skipped)
	}
	if s := b.stream(t); s.State != stream.StateCompleted || s.Attempts != 0 {
		t.Errorf("state %s attempts %d, want completed without an attempt", s.State, s.Attempts)
	}
	if b.committed != 0 {
		t.Errorf("the skipped handler committed %d times, want 0", b.committed)
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
