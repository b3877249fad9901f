package pipeline_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	_ "github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

type noop struct{}

func (noop) HandleEvents(_ context.Context, evs []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	return evs, nil
}
func (noop) Commit(context.Context) error   { return nil }
func (noop) Rollback(context.Context) error { return nil }

// A backlog of streams whose fire criteria are met and whose expiry time
// has passed as well (the workers fell behind) is fired, never expired,
// by several workers whose small batches interleave fire and expire
// passes; a stream without a fire time in the same backlog expires.
func TestWorkersFireBacklogNeverExpireIt(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "w.db") },
		"postgres": func(t *testing.T) string { return dbtest.PostgresURL(t) },
	}
	for name, url := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, err := db.Open(ctx, url(t), db.Options{Migrate: true})
			if err != nil {
				t.Fatalf("open store: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
			const n = 60
			want := map[int64]db.Action{}
			for i := range n + 1 {
				dist := map[string]stream.Value{"instance_id": stream.String(fmt.Sprint(i))}
				ns := db.NewStream{Name: "t", Key: stream.Key(dist), DistinguishedBy: dist,
					FirstEvent: t0, LastEvent: t0, ExpireTimestamp: h(2), FireTimestamp: h(1 + i%3), Now: t0}
				action := db.Fire
				if i == n {
					ns.FireTimestamp, action = time.Time{}, db.Expire // no fire criteria met
				}
				id, _, err := s.CreateStream(ctx, ns)
				if err != nil {
					t.Fatalf("CreateStream: %v", err)
				}
				want[id] = action
			}
			reg := pipeline.NewRegistry()
			reg.Register("noop", func(pipeline.Params) (pipeline.Builder, error) {
				return func() (pipeline.Handler, error) { return noop{}, nil }, nil
			})
			defs, err := pipeline.Parse("pipelines.yaml", []byte("p: [noop]\n"), reg)
			if err != nil {
				t.Fatalf("pipelines: %v", err)
			}
			lookup := func(string) (string, string, bool) { return "p", "p", true }
			feed := func(context.Context, db.Ops, []stream.Event) error { return nil }
			clock := &testClock{now: h(10)}
			var (
				mu  sync.Mutex
				got = map[int64]db.Action{}
				wg  sync.WaitGroup
			)
			errs := make(chan error, 4)
			for i := range 4 {
				w, err := pipeline.NewWorker(s, defs, lookup, feed, pipeline.WorkerConfig{
					Name: fmt.Sprintf("worker-%d", i), BatchSize: 4, Clock: clock})
				if err != nil {
					t.Fatalf("NewWorker: %v", err)
				}
				wg.Go(func() {
					for {
						res, err := w.Pass(ctx, ctx)
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						for _, a := range res.Attempts {
							if a.OK {
								got[a.StreamID] = a.Action
							}
						}
						mu.Unlock()
						if res.LoadedFire == 0 && res.LoadedExpire == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("pass: %v", err)
			}
			for id, action := range want {
				if got[id] != action {
					t.Errorf("stream %d: completed by %v, want %s", id, got[id], action)
				}
				st, err := s.StreamByID(ctx, id)
				if err != nil || st.State != stream.StateCompleted {
					t.Errorf("stream %d: state %s (%v), want completed", id, st.State, err)
				}
			}
		})
	}
}
