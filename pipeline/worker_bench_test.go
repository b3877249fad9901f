package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	_ "github.com/winchester-go/winchester/db/postgres"
	_ "github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// Shape of the worker benchmark: every op processes benchStreams ready
// streams of benchEventsPerStream events each.
const (
	benchStreams         = 500
	benchEventsPerStream = 3
	benchTrigger         = "bench_trigger"
	benchPipeline        = "logger_pipeline"
)

// fixedClock is a clock that does not move.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// BenchmarkWorker measures streams processed per second by pipeline
// workers running the logger pipeline (logging to a discarded slog
// logger) over streams that are all ready to fire, with 1 and 4 workers
// sharing one store, on SQLite (with its default synchronous=FULL and with
// synchronous=NORMAL) and PostgreSQL (skipped without TEST_DATABASE_URL).
// Each worker is its own pipeline.Worker in its own goroutine and runs Pass
// until a pass loads nothing. Creating the streams is not timed.
//
// Metrics: streams/s; lost_claims/op, the claims lost to another worker (each
// one a wasted compare-and-set); and, on the 4-worker variant,
// speedup_vs_1: before each timed op, one worker alone processes an equal
// batch on the same store (not timed), and the metric is the 1-worker time
// divided by the 4-worker time over the whole run. Interleaving the two
// keeps the ratio meaningful on a machine whose load drifts.
//
//	go test ./pipeline -run='^$' -bench=BenchmarkWorker -benchtime=20x
func BenchmarkWorker(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) db.Store
	}{
		{"sqlite", func(b *testing.B) db.Store {
			return openBenchStore(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"))
		}},
		// Durable only up to the last checkpoint on power loss: one fsync
		// per checkpoint instead of one per commit.
		{"sqlite_sync_normal", func(b *testing.B) db.Store {
			return openBenchStore(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db")+"?_pragma=synchronous(NORMAL)")
		}},
		{"postgres", func(b *testing.B) db.Store {
			return openBenchStore(b, dbtest.PostgresURL(b))
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			for _, workers := range []int{1, 4} {
				b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
					benchWorkers(b, st.open(b), workers)
				})
			}
		})
	}
}

func openBenchStore(b *testing.B, url string) db.Store {
	b.Helper()
	s, err := db.Open(context.Background(), url, db.Options{Migrate: true})
	if err != nil {
		b.Fatalf("open %s: %v", db.Redact(url), err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// benchWorkers runs b.N ops of benchStreams streams each with the given
// number of workers.
func benchWorkers(b *testing.B, store db.Store, workers int) {
	now := time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)
	reg := builtinRegistry()
	defs, err := pipeline.Parse("pipelines.yaml", []byte(benchPipeline+": [logger]\n"), reg)
	if err != nil {
		b.Fatalf("pipelines: %v", err)
	}
	lookup := func(name string) (string, string, bool) {
		if name != benchTrigger {
			return "", "", false
		}
		return benchPipeline, benchPipeline, true
	}
	feed := func(ctx context.Context, tx db.Ops, events []stream.Event) error {
		_, err := tx.SaveEvents(ctx, events)
		return err
	}
	log := slog.New(slog.DiscardHandler)
	ws := make([]*pipeline.Worker, workers)
	for i := range ws {
		ws[i], err = pipeline.NewWorker(store, defs, lookup, feed, pipeline.WorkerConfig{
			Name:   fmt.Sprintf("bench-%d", i),
			Purge:  true, // purge_completed_streams defaults to true
			Clock:  fixedClock(now),
			Logger: log,
		})
		if err != nil {
			b.Fatalf("NewWorker: %v", err)
		}
	}

	var locked int
	var single, multi time.Duration
	b.ResetTimer()
	for op := range b.N {
		b.StopTimer()
		if workers > 1 {
			createReadyStreams(b, store, 2*op+1, now.Add(-time.Hour))
			start := time.Now()
			runWorkers(b, op, ws[:1])
			single += time.Since(start)
		}
		createReadyStreams(b, store, 2*op, now.Add(-time.Hour))
		b.StartTimer()
		start := time.Now()
		locked += runWorkers(b, op, ws)
		multi += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchStreams)/multi.Seconds(), "streams/s")
	b.ReportMetric(float64(locked)/float64(b.N), "lost_claims/op")
	if workers > 1 {
		b.ReportMetric(single.Seconds()/multi.Seconds(), "speedup_vs_1")
	}
}

// runWorkers runs the workers concurrently, each until a pass loads
// nothing, checks that they fired every stream, and returns the claims
// they lost to each other.
func runWorkers(b *testing.B, op int, ws []*pipeline.Worker) (locked int) {
	ctx := context.Background()
	results := make([]pipeline.WorkerStats, len(ws)) // one per goroutine
	var g errgroup.Group
	for i, w := range ws {
		g.Go(func() error {
			for {
				res, err := w.Pass(ctx, ctx)
				if err != nil {
					return err
				}
				results[i].Fired += res.Stats.Fired
				results[i].Errors += res.Stats.Errors
				results[i].LostClaims += res.Stats.LostClaims
				if res.LoadedFire+res.LoadedExpire == 0 {
					return nil
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("op %d: worker pass: %v", op, err)
	}
	var total pipeline.WorkerStats
	for _, r := range results {
		total.Fired += r.Fired
		total.Errors += r.Errors
		total.LostClaims += r.LostClaims
	}
	if total.Fired != benchStreams || total.Errors != 0 {
		b.Fatalf("op %d, %d workers: %d fired, %d errors; want %d fired", op, len(ws), total.Fired, total.Errors, benchStreams)
	}
	return total.LostClaims
}

// createReadyStreams stores benchStreams streams of benchEventsPerStream
// events each, all ready to fire since fired (the streams of op have their
// own message ids and instances).
func createReadyStreams(b *testing.B, store db.Store, op int, fired time.Time) {
	b.Helper()
	createStreams(b, store, op, fired, benchStreams)
}

// createStreams stores n streams as createReadyStreams does.
func createStreams(b *testing.B, store db.Store, op int, fired time.Time, n int) {
	b.Helper()
	ctx := context.Background()
	events := make([]stream.Event, 0, n*benchEventsPerStream)
	for s := range n {
		for e := range benchEventsPerStream {
			events = append(events, stream.Event{
				MessageID: fmt.Sprintf("op%d-s%d-e%d", op, s, e),
				Type:      "compute.instance.update",
				Timestamp: fired.Add(time.Duration(e-benchEventsPerStream) * time.Minute),
				Traits: map[string]stream.Value{
					"instance_id": stream.String(fmt.Sprintf("op%d-i%d", op, s)),
					"tenant_id":   stream.String("7d1c5e2b0a8f4c3e9b6a1d2f3e4c5b6a"),
					"memory_mb":   stream.Int(4096),
					"state":       stream.String("active"),
				},
			})
		}
	}
	ids, err := store.SaveEvents(ctx, events)
	if err != nil {
		b.Fatalf("SaveEvents: %v", err)
	}
	for s := range n {
		dist := map[string]stream.Value{"instance_id": events[s*benchEventsPerStream].Traits["instance_id"]}
		first := events[s*benchEventsPerStream].Timestamp
		last := events[(s+1)*benchEventsPerStream-1].Timestamp
		_, created, err := store.CreateStream(ctx, db.NewStream{
			Name: benchTrigger, Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: first, LastEvent: last,
			ExpireTimestamp: fired.Add(24 * time.Hour), FireTimestamp: fired,
			EventIDs: ids[s*benchEventsPerStream : (s+1)*benchEventsPerStream], Now: fired,
		})
		if err != nil || !created {
			b.Fatalf("CreateStream %d: created=%v %v", s, created, err)
		}
	}
}
