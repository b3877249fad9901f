package pipeline_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// benchSlowStreams is the number of streams per op of
// BenchmarkWorkerConcurrency, benchSlowHandler how long its handler takes.
const (
	benchSlowStreams = 64
	benchSlowHandler = 50 * time.Millisecond
)

// sleeper is a handler that takes benchSlowHandler (a remote call, say).
type sleeper struct{}

func (sleeper) HandleEvents(ctx context.Context, evs []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	t := time.NewTimer(benchSlowHandler)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	return evs, nil
}

func (sleeper) Commit(context.Context) error   { return nil }
func (sleeper) Rollback(context.Context) error { return nil }

// BenchmarkWorkerConcurrency measures the streams per second of one worker
// whose pipeline is a handler sleeping 50 ms, with worker_concurrency 1, 2,
// 4 and 8, on SQLite. Each op is one Pass over 64 ready streams (created
// untimed).
//
//	go test ./pipeline -run='^$' -bench=BenchmarkWorkerConcurrency -benchtime=3x
func BenchmarkWorkerConcurrency(b *testing.B) {
	for _, conc := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			store := openBenchStore(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"))
			reg := pipeline.NewRegistry()
			reg.Register("sleeper", func(pipeline.Params) (pipeline.Builder, error) {
				return func() (pipeline.Handler, error) { return sleeper{}, nil }, nil
			})
			defs, err := pipeline.Parse("pipelines.yaml", []byte(benchPipeline+": [sleeper]\n"), reg)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)
			w, err := pipeline.NewWorker(store, defs,
				func(string) (string, string, bool) { return benchPipeline, "", true },
				func(context.Context, db.Ops, []stream.Event) error { return nil },
				pipeline.WorkerConfig{Name: "bench", Clock: fixedClock(now), Concurrency: conc, Purge: true})
			if err != nil {
				b.Fatal(err)
			}
			var elapsed time.Duration
			for op := 0; b.Loop(); op++ {
				b.StopTimer()
				createStreams(b, store, op, now.Add(-time.Minute), benchSlowStreams)
				b.StartTimer()
				start := time.Now()
				res, err := w.Pass(context.Background(), context.Background())
				elapsed += time.Since(start)
				if err != nil || res.Stats.Fired != benchSlowStreams {
					b.Fatalf("pass: fired %d of %d: %v", res.Stats.Fired, benchSlowStreams, err)
				}
			}
			b.ReportMetric(float64(b.N*benchSlowStreams)/elapsed.Seconds(), "streams/s")
		})
	}
}
