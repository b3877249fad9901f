package postgres_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/stream"
)

// benchStreams is the number of open streams BenchmarkOpenStream looks
// streams up among.
var benchStreams = flag.Int("pg.streams", 1_000_000, "open streams created for BenchmarkOpenStream")

var benchBase = time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)

func benchEvent(i int) stream.Event {
	return stream.Event{
		MessageID: fmt.Sprintf("bench-%09d", i),
		Type:      "compute.instance.exists",
		Timestamp: benchBase.Add(time.Duration(i) * time.Millisecond),
		Traits: map[string]stream.Value{
			"instance_id":            stream.String(fmt.Sprintf("inst-%07d", i%100000)),
			"tenant_id":              stream.String("7c150a59fe714e6f9263774af9688f0e"),
			"memory_mb":              stream.Int(4096),
			"launched_at":            stream.Datetime(benchBase),
			"audit_period_beginning": stream.Datetime(benchBase.Truncate(24 * time.Hour)),
			"state":                  stream.String("active"),
		},
	}
}

// BenchmarkStore runs the storage benchmarks every driver reports, for
// comparison with the SQLite driver.
func BenchmarkStore(b *testing.B) {
	dbtest.Benchmark(b, func(tb testing.TB) db.Store {
		s, err := postgres.Open(tb.Context(), dbtest.PostgresURL(tb), db.Options{Migrate: true})
		if err != nil {
			tb.Fatalf("postgres.Open: %v", err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	})
}

// BenchmarkSaveEvents measures events stored per second, one per call and
// in batches.
func BenchmarkSaveEvents(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, _ := benchSetup(b)
			ctx := b.Context()
			next := 0
			events := make([]stream.Event, batch)
			for b.Loop() {
				for i := range events {
					events[i] = benchEvent(next)
					next++
				}
				if _, err := s.SaveEvents(ctx, events); err != nil {
					b.Fatalf("SaveEvents: %v", err)
				}
			}
			b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// fillOpenStreams inserts n open streams of trigger "bench" distinguished
// by an int instance_id 1..n in one statement.
const fillOpenStreams = `
INSERT INTO stream (name, stream_key, dist_traits, state, state_serial_no, open,
                    first_event, last_event, expire_timestamp, fire_counts, created_at)
SELECT 'bench', '11:instance_id' || length('i:' || g) || ':i:' || g,
       jsonb_build_object('instance_id', jsonb_build_object('i', g)),
       1, 0, TRUE, $1, $1, $2, '[0]', $1
  FROM generate_series(1, $3::bigint) g`

// BenchmarkOpenStream measures stream lookups per second by trigger and
// distinguishing key among -pg.streams open streams.
func BenchmarkOpenStream(b *testing.B) {
	s, conn := benchSetup(b)
	ctx := b.Context()
	n := *benchStreams
	start := time.Now()
	if _, err := conn.Exec(ctx, fillOpenStreams, db.Micros(benchBase), db.Micros(benchBase.Add(time.Hour)), n); err != nil {
		b.Fatalf("fill %d streams: %v", n, err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE stream`); err != nil {
		b.Fatal(err)
	}
	b.Logf("created %d open streams in %s", n, time.Since(start).Round(time.Millisecond))
	key := func() string {
		return stream.Key(map[string]stream.Value{"instance_id": stream.Int(rand.Int64N(int64(n)) + 1)})
	}
	if _, err := s.OpenStream(ctx, "bench", key()); err != nil {
		b.Fatalf("OpenStream of a generated stream: %v (the generated keys do not match stream.Key)", err)
	}

	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.OpenStream(ctx, "bench", key()); err != nil {
				b.Fatalf("OpenStream: %v", err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	b.Run("in_tx_for_update", func(b *testing.B) {
		for b.Loop() {
			err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
				_, err := tx.OpenStream(ctx, "bench", key())
				return err
			})
			if err != nil {
				b.Fatalf("OpenStream in a transaction: %v", err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.OpenStream(ctx, "bench", key()); err != nil {
					b.Errorf("OpenStream: %v", err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
}

// fillReadyStreams inserts n streams ready to fire.
const fillReadyStreams = `
INSERT INTO stream (name, stream_key, dist_traits, state, state_serial_no, open,
                    first_event, last_event, expire_timestamp, fire_timestamp, created_at)
SELECT 'bench', 'k' || g, '{}', 1, 0, FALSE, $1, $1, $2, $1 + g, $1
  FROM generate_series(1, $3::bigint) g`

// BenchmarkClaim measures claims per second the way a worker makes them:
// load a batch of ready streams (in deadline order), then move each to
// firing with the compare-and-set.
func BenchmarkClaim(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("ready_batch=%d", batch), func(b *testing.B) {
			s, conn := benchSetup(b)
			ctx := b.Context()
			if _, err := conn.Exec(ctx, fillReadyStreams, db.Micros(benchBase), db.Micros(benchBase.Add(time.Hour)), b.N+batch); err != nil {
				b.Fatalf("fill streams: %v", err)
			}
			if _, err := conn.Exec(ctx, `ANALYZE stream`); err != nil {
				b.Fatal(err)
			}
			now := benchBase.Add(time.Hour)
			worker, lease := "bench-worker", now.Add(5*time.Minute)
			claimed := 0
			b.ResetTimer()
			for claimed < b.N {
				ready, err := s.ReadyStreams(ctx, db.ReadyParams{Action: db.Fire, Now: now, Limit: batch})
				if err != nil || len(ready) == 0 {
					b.Fatalf("ReadyStreams = %d streams, %v", len(ready), err)
				}
				for _, st := range ready {
					_, err := s.SetStreamState(ctx, db.SetStateParams{ID: st.ID, SerialNo: st.SerialNo, State: stream.StateFiring,
						ClaimedBy: &worker, LeaseUntil: &lease})
					if err != nil {
						b.Fatalf("claim stream %d: %v", st.ID, err)
					}
					claimed++
				}
			}
			b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "claims/s")
		})
	}
}

// benchSetup returns a migrated store in a fresh schema and a plain
// connection to that schema for bulk setup statements.
func benchSetup(b *testing.B) (db.Store, *pgx.Conn) {
	b.Helper()
	url := dbtest.PostgresURL(b)
	s, err := postgres.Open(b.Context(), url, db.Options{Migrate: true})
	if err != nil {
		b.Fatalf("postgres.Open: %v", err)
	}
	b.Cleanup(func() { s.Close() })
	conn, err := pgx.Connect(b.Context(), url)
	if err != nil {
		b.Fatalf("connect: %v", err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	return s, conn
}
