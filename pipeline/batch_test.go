package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// hold blocks HandleEvents of one stream until release is closed (or its
// context ends) and emits one new event per stream.
type hold struct {
	blocked int64
	started chan struct{}
	release chan struct{}
}

func (h hold) HandleEvents(ctx context.Context, evs []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	if env.StreamID == h.blocked {
		close(h.started)
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return append(evs, stream.Event{MessageID: fmt.Sprintf("out-%d", env.StreamID), Type: "x", Timestamp: t0}), nil
}

func (hold) Commit(context.Context) error   { return nil }
func (hold) Rollback(context.Context) error { return nil }

func (b *workerBundle) holdWorker(t *testing.T, h hold, cfg pipeline.WorkerConfig) *pipeline.Worker {
	t.Helper()
	reg := pipeline.NewRegistry()
	reg.Register("hold", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return h, nil }, nil
	})
	defs, err := pipeline.Parse("pipelines.yaml", []byte("p:\n  timeout: {handle: 1h}\n  handlers: [hold]\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clock = b.clock
	w, err := pipeline.NewWorker(b.store, defs, func(string) (string, string, bool) { return "p", "p", true },
		func(ctx context.Context, tx db.Ops, events []stream.Event) error {
			_, err := tx.SaveEvents(ctx, events)
			return err
		}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// waitFor polls the store until cond holds for the stream (10 s at most).
func (b *workerBundle) waitFor(t *testing.T, id int64, what string, cond func(stream.Stream) bool) stream.Stream {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := b.store.StreamByID(t.Context(), id)
		if err == nil && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %d: %s did not happen within 10s (state %s serial %d, %v)", id, what, s.State, s.SerialNo, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Streams claimed with the batch wait for a slot with their leases
// renewed together; one taken over by another worker meanwhile is dropped
// as a lost claim, and its pipeline never runs.
func TestWorkerRenewsLeasesOfWaitingClaims(t *testing.T) {
	b := setupWorker(t)
	waiting := b.addReadyStream(t, "i-2")
	taken := b.addReadyStream(t, "i-3")
	h := hold{blocked: b.streamID, started: make(chan struct{}), release: make(chan struct{})}
	w := b.holdWorker(t, h, pipeline.WorkerConfig{Concurrency: 1, Lease: 150 * time.Millisecond, Purge: false})
	ctx := t.Context()
	done := make(chan pipeline.PassResult, 1)
	go func() {
		res, _ := w.Pass(ctx, ctx)
		done <- res
	}()
	<-h.started // the first stream holds the only slot; the others wait
	cur, err := b.store.StreamByID(ctx, taken)
	if err != nil || cur.State != stream.StateFiring || cur.ClaimedBy != "pipeline_worker" {
		close(h.release)
		t.Fatalf("waiting stream: %v state %s owner %q, want claimed with the batch", err, cur.State, cur.ClaimedBy)
	}
	owner, until := "other", t0.Add(time.Hour)
	if _, err := b.store.SetStreamState(ctx, db.SetStateParams{ID: taken, SerialNo: cur.SerialNo, State: stream.StateFiring,
		ClaimedBy: &owner, LeaseUntil: &until}); err != nil {
		close(h.release)
		t.Fatal(err)
	}
	w0, err := b.store.StreamByID(ctx, waiting)
	if err != nil {
		close(h.release)
		t.Fatal(err)
	}
	b.waitFor(t, waiting, "a lease renewal while waiting", func(s stream.Stream) bool { return s.SerialNo > w0.SerialNo })
	close(h.release)
	var res pipeline.PassResult
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pass did not end")
	}
	byID := map[int64]pipeline.Attempt{}
	for _, a := range res.Attempts {
		byID[a.StreamID] = a
	}
	if a := byID[taken]; !a.LostClaim || a.OK || a.Pipeline != "" {
		t.Errorf("taken-over stream: attempt %+v, want a lost claim whose pipeline did not run", a)
	}
	for _, id := range []int64{b.streamID, waiting} {
		if a := byID[id]; !a.OK {
			t.Errorf("stream %d: attempt %+v, want completed", id, a)
		}
		if s, _ := b.store.StreamByID(ctx, id); s.State != stream.StateCompleted {
			t.Errorf("stream %d: state %s, want completed", id, s.State)
		}
	}
	if s := b.waitFor(t, taken, "nothing", func(stream.Stream) bool { return true }); s.ClaimedBy != "other" || s.State != stream.StateFiring {
		t.Errorf("taken-over stream: owner %q state %s, want the other worker's claim untouched", s.ClaimedBy, s.State)
	}
	if _, err := b.store.EventByMessageID(ctx, fmt.Sprintf("out-%d", taken)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("event of the taken-over stream: %v, want none stored", err)
	}
}

// On shutdown, streams claimed with the batch that have not started are
// handed back at once (ready, no attempt charged), and the running one
// after the grace period.
func TestWorkerShutdownHandsBackWaitingClaims(t *testing.T) {
	b := setupWorker(t)
	others := []int64{b.addReadyStream(t, "i-2"), b.addReadyStream(t, "i-3")}
	h := hold{blocked: b.streamID, started: make(chan struct{}), release: make(chan struct{})}
	w := b.holdWorker(t, h, pipeline.WorkerConfig{Concurrency: 1, Delay: time.Hour, ShutdownGrace: 50 * time.Millisecond, Purge: false})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-h.started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}
	for _, id := range append(others, b.streamID) {
		s, err := b.store.StreamByID(t.Context(), id)
		if err != nil || s.State != stream.StateRetryFire || s.Attempts != 0 || s.ClaimedBy != "" {
			t.Errorf("stream %d: %v state %s attempts %d owner %q, want retry_fire, 0, none (handed back)", id, err, s.State, s.Attempts, s.ClaimedBy)
		}
	}
}

// A stream taken over by another worker while its pipeline ran (no lease
// tick noticed it) is left out of the completion: the others complete
// with their new events, its new event is not stored.
func TestWorkerCompletionLeavesOutLostClaim(t *testing.T) {
	b := setupWorker(t)
	others := []int64{b.addReadyStream(t, "i-2"), b.addReadyStream(t, "i-3")}
	h := hold{blocked: b.streamID, started: make(chan struct{}), release: make(chan struct{})}
	w := b.holdWorker(t, h, pipeline.WorkerConfig{Concurrency: 3, Lease: time.Hour, Purge: false})
	ctx := t.Context()
	done := make(chan pipeline.PassResult, 1)
	go func() {
		res, _ := w.Pass(ctx, ctx)
		done <- res
	}()
	<-h.started
	cur := b.stream(t)
	owner, until := "other", t0.Add(time.Hour)
	_, err := b.store.SetStreamState(ctx, db.SetStateParams{ID: cur.ID, SerialNo: cur.SerialNo, State: stream.StateFiring, ClaimedBy: &owner, LeaseUntil: &until})
	close(h.release)
	if err != nil {
		t.Fatal(err)
	}
	res := <-done
	for _, a := range res.Attempts {
		want := a.StreamID != b.streamID
		if a.OK != want || a.LostClaim == want {
			t.Errorf("stream %d: OK %v lost %v, want OK %v", a.StreamID, a.OK, a.LostClaim, want)
		}
	}
	for _, id := range others {
		if s, _ := b.store.StreamByID(ctx, id); s.State != stream.StateCompleted {
			t.Errorf("stream %d: state %s, want completed", id, s.State)
		}
		if _, err := b.store.EventByMessageID(ctx, fmt.Sprintf("out-%d", id)); err != nil {
			t.Errorf("new event of stream %d: %v", id, err)
		}
	}
	if s := b.stream(t); s.ClaimedBy != "other" {
		t.Errorf("taken-over stream owned by %q, want other", s.ClaimedBy)
	}
	if _, err := b.store.EventByMessageID(ctx, fmt.Sprintf("out-%d", b.streamID)); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("new event of the taken-over stream: %v, want not stored", err)
	}
}

// Pass returns the attempts in claim (deadline) order even when the
// first stream finishes last.
func TestWorkerPassAttemptsInClaimOrder(t *testing.T) {
	b := setupWorker(t)
	others := []int64{b.addReadyStream(t, "i-2"), b.addReadyStream(t, "i-3")}
	h := hold{blocked: b.streamID, started: make(chan struct{}), release: make(chan struct{})}
	w := b.holdWorker(t, h, pipeline.WorkerConfig{Concurrency: 3, Purge: false})
	ctx := t.Context()
	done := make(chan pipeline.PassResult, 1)
	go func() {
		res, _ := w.Pass(ctx, ctx)
		done <- res
	}()
	<-h.started
	for _, id := range others {
		b.waitFor(t, id, "completion", func(s stream.Stream) bool { return s.State == stream.StateCompleted })
	}
	close(h.release)
	res := <-done
	var got []int64
	for _, a := range res.Attempts {
		got = append(got, a.StreamID)
	}
	if want := append([]int64{b.streamID}, others...); !slices.Equal(got, want) {
		t.Errorf("attempts of streams %v, want claim order %v", got, want)
	}
}
