package dbtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// BenchOpenFunc returns a fresh, empty, migrated store for one benchmark
// run and arranges its cleanup.
type BenchOpenFunc func(tb testing.TB) db.Store

// openStreamsForLookup is how many open streams the lookup benchmark
// searches among.
const openStreamsForLookup = 10000

// Benchmark runs the storage benchmarks every driver reports: events
// stored per second (one per call and in batches), open-stream lookups
// per second among many open streams, and claims per second (ready query
// plus compare-and-set, the worker's path). Run with
//
//	go test -run='^$' -bench=. -benchmem ./db/<driver>
func Benchmark(b *testing.B, open BenchOpenFunc) {
	b.Run("SaveEvents/single", func(b *testing.B) { benchSave(b, open, 1) })
	b.Run("SaveEvents/batch100", func(b *testing.B) { benchSave(b, open, 100) })
	b.Run("OpenStream/10k_open", func(b *testing.B) { benchLookup(b, open) })
	b.Run("Claim", func(b *testing.B) { benchClaim(b, open) })
}

func benchEvent(i int) stream.Event {
	return stream.Event{
		MessageID: fmt.Sprintf("bench-%09d", i),
		Type:      "compute.instance.exists",
		Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		Traits: map[string]stream.Value{
			"instance_id": stream.String(fmt.Sprintf("inst-%06d", i%5000)),
			"tenant_id":   stream.String("7d1c5e2b0a8f4c3e9b6a1d2f3e4c5b6a"),
			"memory_mb":   stream.Int(4096),
			"disk_gb":     stream.Float(40),
			"launched_at": stream.Datetime(base),
			"state":       stream.String("active"),
		},
	}
}

func benchSave(b *testing.B, open BenchOpenFunc, batch int) {
	s := open(b)
	ctx := context.Background()
	events := make([]stream.Event, batch)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		for j := range events {
			events[j] = benchEvent(n)
			n++
		}
		if _, err := s.SaveEvents(ctx, events); err != nil {
			b.Fatalf("SaveEvents: %v", err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func benchKey(i int) map[string]stream.Value {
	return map[string]stream.Value{
		"instance_id": stream.String(fmt.Sprintf("inst-%06d", i)),
		"timestamp":   stream.TimeRange(base.Truncate(24*time.Hour), base.Truncate(24*time.Hour).Add(24*time.Hour)),
	}
}

func benchLookup(b *testing.B, open BenchOpenFunc) {
	s := open(b)
	ctx := context.Background()
	err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		for i := range openStreamsForLookup {
			dist := benchKey(i)
			_, _, err := tx.CreateStream(ctx, db.NewStream{
				Name: "bench", Key: stream.Key(dist), DistinguishedBy: dist,
				FirstEvent: base, LastEvent: base, ExpireTimestamp: base.Add(time.Hour), FireCounts: []int{0}, Now: base,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("create streams: %v", err)
	}
	keys := make([]string, openStreamsForLookup)
	for i := range keys {
		keys[i] = stream.Key(benchKey(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if _, err := s.OpenStream(ctx, "bench", keys[(n*7919)%len(keys)]); err != nil {
			b.Fatalf("OpenStream: %v", err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
}

func benchClaim(b *testing.B, open BenchOpenFunc) {
	s := open(b)
	ctx := context.Background()
	// b.N streams ready to fire, made before the timer starts.
	const chunk = 1000
	for start := 0; start < b.N; start += chunk {
		err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			for i := start; i < min(start+chunk, b.N); i++ {
				dist := benchKey(i)
				_, _, err := tx.CreateStream(ctx, db.NewStream{
					Name: "bench", Key: stream.Key(dist), DistinguishedBy: dist, FirstEvent: base, LastEvent: base,
					ExpireTimestamp: base.Add(time.Hour), FireTimestamp: base.Add(time.Duration(i) * time.Microsecond), Now: base,
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("create streams: %v", err)
		}
	}
	now := base.Add(2 * time.Hour)
	lease := now.Add(5 * time.Minute)
	owner := "bench-worker"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ready, err := s.ReadyStreams(ctx, db.ReadyParams{Action: db.Fire, Now: now, Limit: 1})
		if err != nil || len(ready) != 1 {
			b.Fatalf("ReadyStreams = %d streams, %v", len(ready), err)
		}
		_, err = s.SetStreamState(ctx, db.SetStateParams{ID: ready[0].ID, SerialNo: ready[0].SerialNo, State: stream.StateFiring, ClaimedBy: &owner, LeaseUntil: &lease})
		if err != nil {
			b.Fatalf("SetStreamState: %v", err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}
