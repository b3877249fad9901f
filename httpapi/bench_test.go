package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/httpapi"
	"github.com/winchester-go/winchester/ingest"
	"github.com/winchester-go/winchester/internal/workload"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/trigger"
)

// roundClock is the managers' clock: the first notification's time of the
// round being ingested, so that streams behave as they would live.
type roundClock struct{ now atomic.Pointer[time.Time] }

func (c *roundClock) Now() time.Time { return *c.now.Load() }

// benchSide is one way of ingesting a round of notifications, over its
// own PostgreSQL schema.
type benchSide struct {
	name  string
	run   func(b *testing.B, bodies [][]byte)
	total time.Duration
	times []time.Duration
}

func newBenchManager(b *testing.B, clock *roundClock) (*trigger.Manager, db.Store) {
	b.Helper()
	store, err := postgres.Open(b.Context(), dbtest.PostgresURL(b), db.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	defs, _, err := trigger.Load("../etc/triggers.yaml")
	if err != nil {
		b.Fatal(err)
	}
	edefs, err := distiller.LoadDefinitions("../etc/event_definitions.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{
		Clock: clock, DistillFunc: distiller.New(edefs, distiller.Config{}).Event,
	})
	if err != nil {
		b.Fatal(err)
	}
	return mgr, store
}

func newBenchServer(b *testing.B, clock *roundClock, met *metrics.Metrics) string {
	b.Helper()
	mgr, store := newBenchManager(b, clock)
	in := ingest.New(mgr, ingest.Config{Metrics: met})
	srv, err := httpapi.New(mgr, store, in, httpapi.Config{}, httpapi.Options{Metrics: met})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	return ts.URL
}

const benchBatch = 500

func post(b *testing.B, client *http.Client, url string, body []byte, want int) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(data, fmt.Appendf(nil, `"stored":%d`, want)) {
		b.Errorf("POST %s = %d %.200s, want %d stored", url, resp.StatusCode, data, want)
	}
}

// BenchmarkHTTPIngest compares, on PostgreSQL with durable commits, three
// ways of storing the same notifications (internal/workload, 2,000 instances
// over two days, about 7,800 notifications per round):
//
//   - library: trigger.Manager.AddNotifications in batches of 500, the
//     library's batch path;
//   - http64: 64 concurrent clients each POSTing one notification at a
//     time to /v1/notifications (group commit merges them);
//   - http_batch: one client POSTing JSON arrays of 500.
//
// Every iteration ingests one round (a new seed) through each side, in an
// order that rotates, so load bursts hit all sides. Reported: the rate of
// each side over all rounds, and the ratios http64/library and
// http_batch/library.
func BenchmarkHTTPIngest(b *testing.B) {
	dbtest.PostgresURL(b) // skips without TEST_DATABASE_URL
	clock := &roundClock{}
	zero := time.Time{}
	clock.now.Store(&zero)
	lib, _ := newBenchManager(b, clock)
	met64 := metrics.New(metrics.Config{})
	url64 := newBenchServer(b, clock, met64) + "/v1/notifications"
	urlBatch := newBenchServer(b, clock, nil) + "/v1/notifications"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

	sides := []*benchSide{
		{name: "library", run: func(b *testing.B, bodies [][]byte) {
			for chunk := range slices.Chunk(bodies, benchBatch) {
				res, err := lib.AddNotifications(context.Background(), chunk)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res {
					if r.Outcome != trigger.Stored {
						b.Fatalf("library: %v %s", r.Outcome, r.Reason)
					}
				}
			}
		}},
		{name: "http64", run: func(b *testing.B, bodies [][]byte) {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= len(bodies) {
							return
						}
						post(b, client, url64, bodies[i], 1)
					}
				})
			}
			wg.Wait()
		}},
		{name: "http_batch", run: func(b *testing.B, bodies [][]byte) {
			for chunk := range slices.Chunk(bodies, benchBatch) {
				body := "[" + string(bytes.Join(chunk, []byte(","))) + "]"
				post(b, client, urlBatch, []byte(body), len(chunk))
			}
		}},
	}
	events := 0
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		ns, err := workload.Notifications(workload.Config{Instances: 2000, Days: 2, Seed: uint64(i + 1), Start: time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 3*i)})
		if err != nil {
			b.Fatal(err)
		}
		bodies := make([][]byte, len(ns))
		for j, n := range ns {
			bodies[j] = n.Body
		}
		start := ns[0].Timestamp
		clock.now.Store(&start)
		events += len(bodies)
		b.StartTimer()
		for k := range sides {
			s := sides[(i+k)%len(sides)]
			t0 := time.Now()
			s.run(b, bodies)
			d := time.Since(t0)
			s.total += d
			s.times = append(s.times, d)
		}
	}
	b.StopTimer()
	rate := func(s *benchSide) float64 { return float64(events) / s.total.Seconds() }
	for _, s := range sides {
		b.ReportMetric(rate(s), s.name+"_notifications/s")
	}
	b.ReportMetric(rate(sides[1])/rate(sides[0]), "http64/library")
	b.ReportMetric(rate(sides[2])/rate(sides[0]), "http_batch/library")
	groups, groupEvents := histogram(b, met64, "winchester_ingest_group_events")
	commits, commitTime := histogram(b, met64, "winchester_ingest_commit_duration_seconds")
	if groups > 0 && commits > 0 {
		b.ReportMetric(groupEvents/float64(groups), "http64_events/group")
		b.ReportMetric(1000*commitTime/float64(commits), "http64_ms/commit")
	}
	var parts []string
	for _, s := range sides {
		parts = append(parts, fmt.Sprintf("%s %v", s.name, s.times))
	}
	b.Logf("%d notifications per side; round times: %s", events, strings.Join(parts, "; "))
}

// histogram returns the count and sum of the histogram name of met (all
// label values together).
func histogram(b *testing.B, met *metrics.Metrics, name string) (count uint64, sum float64) {
	b.Helper()
	families, err := met.Registry().Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			count += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return count, sum
}
