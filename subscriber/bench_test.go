package subscriber_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/internal/workload"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/subscriber"
	"github.com/winchester-go/winchester/trigger"
)

// benchBatch is the number of events per ingest transaction.
const benchBatch = 500

// benchSubscribers is the number of no-op subscribers of the measured side.
const benchSubscribers = 4

// clockAt is the manager's clock: the first event of each batch.
type clockAt struct{ now time.Time }

func (c *clockAt) Now() time.Time { return c.now }

// BenchmarkIngestWithSubscribers ingests the distilled compute workload
// (etc/event_definitions.yaml, etc/triggers.yaml; 2,000 instances over two
// days, a new round with the next seed when one is used up) in batches of
// 500 into two stores of the same driver, batch by batch, alternating
// which goes first: one store has four subscribers that do nothing,
// delivered by a runner in this process, the other none. It reports the
// median rate of each side and their ratio (the target is at least 0.9),
// the largest lag of a subscriber seen after a batch (max_lag: events
// stored and not yet dealt with), and how long the subscribers took to
// catch up after the last batch (drain_ms).
func BenchmarkIngestWithSubscribers(b *testing.B) {
	d, err := distiller.Load("../etc/event_definitions.yaml", distiller.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defs, _, err := trigger.Load("../etc/triggers.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for _, drv := range []string{"sqlite", "postgres"} {
		b.Run("driver="+drv, func(b *testing.B) {
			with, without := openBenchStore(b, drv), openBenchStore(b, drv)
			clockWith, clockWithout := &clockAt{}, &clockAt{}
			mWith := benchManager(b, with, defs, clockWith)
			mWithout := benchManager(b, without, defs, clockWithout)
			var subs []subscriber.Definition
			for i := range benchSubscribers {
				subs = append(subs, subscriber.Definition{Name: fmt.Sprintf("noop%d", i),
					Deliver: func(context.Context, subscriber.Delivery) error { return nil }})
			}
			r, err := subscriber.NewRunner(with, subs, subscriber.RunnerConfig{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			defer func() { cancel(); <-done }()
			for _, s := range subs {
				waitState(with, s.Name)
			}

			src := &source{b: b, d: d, cfg: workload.Config{Instances: 2000, Days: 2}}
			var rWith, rWithout []float64 // events/s of each call
			var totalWith, totalWithout time.Duration
			events, maxLag := 0, int64(0)
			n := 0
			for b.Loop() {
				n++
				evs := src.next(benchBatch)
				order := []int{0, 1}
				if n%2 == 1 {
					order = []int{1, 0}
				}
				for _, side := range order {
					m, c := mWith, clockWith
					if side == 1 {
						m, c = mWithout, clockWithout
					}
					c.now = evs[0].Timestamp
					t0 := time.Now()
					if _, err := m.AddEvents(context.Background(), evs); err != nil {
						b.Fatal(err)
					}
					el := time.Since(t0)
					if side == 0 {
						rWith, totalWith = append(rWith, float64(len(evs))/el.Seconds()), totalWith+el
					} else {
						rWithout, totalWithout = append(rWithout, float64(len(evs))/el.Seconds()), totalWithout+el
					}
				}
				events += len(evs)
				b.StopTimer()
				maxLag = max(maxLag, lagOf(b, with, subs))
				b.StartTimer()
			}
			b.StopTimer()
			t0 := time.Now()
			for lagOf(b, with, subs) > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			drain := time.Since(t0)
			med := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
			mw, mwo := med(rWith), med(rWithout)
			b.ReportMetric(mw, "with_events/s")
			b.ReportMetric(mwo, "without_events/s")
			b.ReportMetric(mw/mwo, "ratio")
			b.ReportMetric(totalWithout.Seconds()/totalWith.Seconds(), "mean_ratio")
			b.ReportMetric(float64(maxLag), "max_lag")
			b.ReportMetric(float64(drain.Milliseconds()), "drain_ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// openBenchStore opens a fresh store of driver for a benchmark.
func openBenchStore(b *testing.B, driver string) store {
	b.Helper()
	var u string
	switch driver {
	case "sqlite":
		u = "sqlite://" + b.TempDir() + "/bench.db"
	default:
		u = dbtest.PostgresURL(b)
	}
	s, err := db.Open(context.Background(), u, db.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s.(store)
}

func benchManager(b *testing.B, s store, defs []*trigger.Definition, c stream.Clock) *trigger.Manager {
	m, err := trigger.NewManager(s, defs, trigger.ManagerConfig{Clock: c})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func waitState(s store, name string) {
	for {
		if _, err := s.SubscriberState(context.Background(), name); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lagOf is the largest lag of subs.
func lagOf(b *testing.B, s store, subs []subscriber.Definition) int64 {
	var worst int64
	for _, d := range subs {
		st, err := s.SubscriberState(context.Background(), d.Name)
		if err != nil {
			b.Fatal(err)
		}
		n, err := s.CountEventsAfter(context.Background(), st.Position, subscriber.LagCap)
		if err != nil {
			b.Fatal(err)
		}
		worst = max(worst, n)
	}
	return worst
}

// source hands out the generated workload in order, generating the next
// round (next seed: new instances and message ids) when one is used up.
type source struct {
	b      *testing.B
	d      *distiller.Distiller
	cfg    workload.Config
	events []stream.Event
	pos    int
}

func (s *source) next(n int) []stream.Event {
	if s.pos >= len(s.events) {
		s.b.StopTimer()
		s.cfg.Seed++
		evs, err := workload.Events(s.cfg, s.d)
		if err != nil {
			s.b.Fatal(err)
		}
		s.events, s.pos = evs, 0
		s.b.StartTimer()
	}
	end := min(s.pos+n, len(s.events))
	out := s.events[s.pos:end]
	s.pos = end
	return out
}
