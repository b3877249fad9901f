package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// signalHandler is a slog handler that sends every record whose message
// contains substr on c (without blocking) and drops all records.
type signalHandler struct {
	substr string
	c      chan<- string
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h signalHandler) WithGroup(string) slog.Handler            { return h }

func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		select {
		case h.c <- r.Message:
		default:
		}
	}
	return nil
}

// A lease renewal that fails because another process holds the database
// (SQLite's busy timeout: db.ErrAborted) is not a lost lease: the pipeline
// goes on, and the stream completes once the database is free again.
func TestWorkerLeaseRenewalSurvivesBusyDatabase(t *testing.T) {
	ctx := t.Context()
	raw := "sqlite://" + filepath.Join(t.TempDir(), "w.db") + "?_pragma=busy_timeout(50)"
	open := func() db.Store {
		s, err := db.Open(ctx, raw, db.Options{Migrate: true})
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	s, other := open(), open()
	ids, err := s.SaveEvents(ctx, []stream.Event{{MessageID: "m-1", Type: "compute.instance.exists", Timestamp: t0, Traits: map[string]stream.Value{}}})
	if err != nil {
		t.Fatalf("SaveEvents: %v", err)
	}
	id, _, err := s.CreateStream(ctx, db.NewStream{Name: "t", Key: stream.Key(nil), DistinguishedBy: map[string]stream.Value{},
		FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), FireTimestamp: t0, EventIDs: ids, Now: t0})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	b := &workerBundle{store: s, clock: &testClock{now: t0.Add(time.Second)}, streamID: id,
		block: make(chan struct{}), started: make(chan struct{})}
	renewFailed := make(chan string, 1)
	w := b.worker(t, pipeline.WorkerConfig{Lease: 150 * time.Millisecond, Purge: false,
		Logger: slog.New(signalHandler{substr: "could not renew", c: renewFailed})}, nil)
	done := make(chan pipeline.PassResult, 1)
	go func() {
		res, _ := w.Pass(ctx, ctx)
		done <- res
	}()
	<-b.started
	// Another process holds the write lock until a renewal has failed.
	err = other.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		if _, err := tx.SaveEvents(ctx, []stream.Event{{MessageID: "other", Type: "x", Timestamp: t0, Traits: map[string]stream.Value{}}}); err != nil {
			return err
		}
		select {
		case <-renewFailed:
			return nil
		case res := <-done:
			return fmt.Errorf("the pass ended while the database was busy: %+v", res.Attempts)
		case <-time.After(10 * time.Second):
			return fmt.Errorf("no lease renewal failed within 10s while the database was busy")
		}
	})
	close(b.block)
	if err != nil {
		t.Fatal(err)
	}
	var res pipeline.PassResult
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pass did not end after the handler was released")
	}
	if len(res.Attempts) != 1 || !res.Attempts[0].OK || res.Attempts[0].LostClaim {
		t.Fatalf("attempts %+v, want the stream completed (a busy database is not a lost lease)", res.Attempts)
	}
	if got := b.stream(t); got.State != stream.StateCompleted || b.committed != 1 {
		t.Errorf("state %s commits %d, want completed after one committed run", got.State, b.committed)
	}
}

// A completion transaction the database aborted (db.ErrAborted) is run
// again at once; a lost claim (db.ErrConflict) is not retried.
func TestWorkerCompletionRetriesOnlyAborted(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantCalls int
		wantState stream.State
		wantOK    bool
	}{
		{name: "aborted", err: db.ErrAborted, wantCalls: 3, wantState: stream.StateCompleted, wantOK: true},
		{name: "conflict", err: db.ErrConflict, wantCalls: 1, wantState: stream.StateFiring},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setupWorker(t)
			calls := 0
			feed := func(ctx context.Context, tx db.Ops, events []stream.Event) error {
				calls++
				if calls <= 2 {
					return fmt.Errorf("store new events: %w", tc.err)
				}
				_, err := tx.SaveEvents(ctx, events)
				return err
			}
			b.emit = []stream.Event{{MessageID: "new-1", Type: "x", Timestamp: t0}}
			slept := 0
			w := b.workerWith(t, pipeline.WorkerConfig{SleepFunc: func(context.Context, time.Duration) error {
				slept++
				return nil
			}}, "p: [probe]\n", feed, slowCommit{})
			res, err := w.Pass(t.Context(), t.Context())
			if err != nil || len(res.Attempts) != 1 || res.Attempts[0].OK != tc.wantOK {
				t.Fatalf("pass: %v %+v, want OK %v", err, res.Attempts, tc.wantOK)
			}
			if calls != tc.wantCalls || slept != 0 {
				t.Errorf("completion ran %d times with %d sleeps, want %d without sleeping", calls, slept, tc.wantCalls)
			}
			if s := b.stream(t); s.State != tc.wantState || b.committed != 1 {
				t.Errorf("state %s commits %d, want %s after one run", s.State, b.committed, tc.wantState)
			}
		})
	}
}
