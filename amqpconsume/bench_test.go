package amqpconsume_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/winchester-go/winchester/amqpconsume"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/internal/workload"
)

// benchRound is the number of notifications per round of
// BenchmarkConsumeVsLibrary.
const benchRound = 5000

// durableURL returns a fresh schema's URL with durable commits
// (synchronous_commit on: every commit waits for its WAL flush).
func durableURL(b *testing.B) string {
	b.Helper()
	u, err := url.Parse(dbtest.PostgresURL(b))
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "on")
	u.RawQuery = q.Encode()
	return u.String()
}

// BenchmarkConsumeVsLibrary compares, round by round, the rate of a
// consumer draining a pre-filled queue into PostgreSQL with the rate of
// the library's batch ingest (trigger.Manager.AddNotifications, batches of
// the consumer's batch size) of the same notifications into a schema of
// its own. Each round is 5,000 new workload notifications; the side that
// goes first alternates. The consumer is timed from its first delivery to
// its last acknowledgement (a new consumer each round, connecting and
// declaring untimed); the library from its first call to its last commit. Reported: the median rate of each side and their
// ratio (consume/library); mean_ratio is the ratio of the totals.
func BenchmarkConsumeVsLibrary(b *testing.B) {
	brokerURL := brokerURL(b)
	consumed := newEnv(b, durableURL(b))
	library := newEnv(b, durableURL(b))
	tp := newTopology(b, brokerURL)
	cfg := tp.config(b, func(c *amqpconsume.Config) {
		c.BatchSize = amqpconsume.DefaultBatchSize
		c.Prefetch = 0 // the default
		c.BatchLinger = amqpconsume.Duration(amqpconsume.DefaultBatchLinger)
		c.LagInterval = -1
	})
	tp.declare(b, cfg)
	ctx := context.Background()

	var consumeRates, libraryRates []float64
	var consumeTotal, libraryTotal time.Duration
	b.ResetTimer()
	for round := range b.N {
		b.StopTimer()
		bodies := benchNotifications(b, uint64(round+1))
		tp.publish(b, "notifications.info", bodies...)
		b.StartTimer()

		consume := func() {
			reg := prometheus.NewRegistry()
			opts := consumed.options(b, reg)
			opts.Logger = nil
			c, err := amqpconsume.New(cfg, opts)
			if err != nil {
				b.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- c.Run(runCtx) }()
			// Timed from the first delivery: connecting and declaring are
			// not part of the consuming rate.
			tick := time.NewTicker(time.Millisecond)
			for metric(b, reg, "winchester_amqp_deliveries_total") == 0 {
				<-tick.C
			}
			began := time.Now()
			for metric(b, reg, "winchester_amqp_acks_total") < float64(len(bodies)) {
				<-tick.C
			}
			tick.Stop()
			elapsed := time.Since(began)
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			consumeTotal += elapsed
			consumeRates = append(consumeRates, float64(len(bodies))/elapsed.Seconds())
		}
		lib := func() {
			began := time.Now()
			for chunk := range slices.Chunk(bodies, cfg.BatchSize) {
				if _, err := library.manager.AddNotifications(ctx, chunk); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(began)
			libraryTotal += elapsed
			libraryRates = append(libraryRates, float64(len(bodies))/elapsed.Seconds())
		}
		if round%2 == 0 {
			consume()
			lib()
		} else {
			lib()
			consume()
		}
	}
	b.StopTimer()
	if n, want := consumed.eventCount(b), library.eventCount(b); n != want {
		b.Fatalf("consumer stored %d events, library %d", n, want)
	}
	cm, lm := median(consumeRates), median(libraryRates)
	b.ReportMetric(cm, "consume_events/s")
	b.ReportMetric(lm, "library_events/s")
	b.ReportMetric(cm/lm, "ratio")
	b.ReportMetric(libraryTotal.Seconds()/consumeTotal.Seconds(), "mean_ratio")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchNotifications returns benchRound workload notifications of the
// given seed (new message ids in every round).
func benchNotifications(b *testing.B, seed uint64) [][]byte {
	b.Helper()
	var out [][]byte
	err := workload.Generate(workload.Config{Instances: 2000, Days: 2, Seed: seed, Start: workloadStart}, func(w workload.Notification) error {
		out = append(out, w.Body)
		if len(out) == benchRound {
			return workload.ErrStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, workload.ErrStop) {
		b.Fatal(err)
	}
	return out
}
