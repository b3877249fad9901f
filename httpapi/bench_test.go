package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
	db    benchDB
	run   func(b *testing.B, bodies [][]byte)
	total time.Duration
	times []time.Duration
	// CPU time of the whole test process and of the side's PostgreSQL
	// sessions while the side ran (cpuOK: both could be measured).
	goCPU, pgCPU time.Duration
	cpuOK        bool
}

// benchDB is the database of one side: its URL (a schema of its own,
// durable commits) and the application_name of its sessions.
type benchDB struct {
	url, app string
}

// newBenchDB returns a fresh schema whose sessions commit durably
// (synchronous_commit on, checked with fsync), whatever the test URL says.
func newBenchDB(b *testing.B, name string) benchDB {
	b.Helper()
	u, err := url.Parse(dbtest.PostgresURL(b))
	if err != nil {
		b.Fatal(err)
	}
	app := fmt.Sprintf("bench_%s_%d", name, os.Getpid())
	q := u.Query()
	q.Set("synchronous_commit", "on")
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	d := benchDB{url: u.String(), app: app}
	var sc, fsync string
	d.exec(b, func(conn *pgx.Conn) error {
		return conn.QueryRow(b.Context(), `SELECT current_setting('synchronous_commit'), current_setting('fsync')`).Scan(&sc, &fsync)
	})
	if sc != "on" || fsync != "on" {
		b.Fatalf("synchronous_commit=%s fsync=%s, want both on", sc, fsync)
	}
	return d
}

// exec runs fn on a connection of its own to the side's schema.
func (d benchDB) exec(b *testing.B, fn func(conn *pgx.Conn) error) {
	b.Helper()
	conn, err := pgx.Connect(b.Context(), d.url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := fn(conn); err != nil {
		b.Fatal(err)
	}
}

// analyze gathers the planner's statistics of the ingest tables, as
// autovacuum does on a live database once a tenth of a table changed.
func (d benchDB) analyze(b *testing.B) {
	b.Helper()
	d.exec(b, func(conn *pgx.Conn) error {
		_, err := conn.Exec(b.Context(), `ANALYZE event, stream, stream_event`)
		return err
	})
}

func newBenchManager(b *testing.B, clock *roundClock, d benchDB) (*trigger.Manager, db.Store) {
	b.Helper()
	store, err := postgres.Open(b.Context(), d.url, db.Options{Migrate: true})
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

func newBenchServer(b *testing.B, clock *roundClock, d benchDB, met *metrics.Metrics) string {
	b.Helper()
	mgr, store := newBenchManager(b, clock, d)
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

// benchRound returns the bodies of round i's notifications (a new seed
// and a later start each round) and the time of the first.
func benchRound(b *testing.B, seed uint64, start time.Time) ([][]byte, time.Time) {
	b.Helper()
	ns, err := workload.Notifications(workload.Config{Instances: 2000, Days: 2, Seed: seed, Start: start})
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, len(ns))
	for j, n := range ns {
		bodies[j] = n.Body
	}
	return bodies, ns[0].Timestamp
}

// BenchmarkHTTPIngest compares, on PostgreSQL with durable commits
// (synchronous_commit on, checked), three ways of storing the same
// notifications (internal/workload, 2,000 instances over two days, about
// 7,800 notifications per round):
//
//   - library: trigger.Manager.AddNotifications in batches of 500, the
//     library's batch path;
//   - http64: 64 concurrent clients each POSTing one notification at a
//     time to /v1/notifications (group commit merges them);
//   - http_batch: one client POSTing JSON arrays of 500.
//
// Each side has its own schema. Before timing, every side ingests a
// warm-up round and its tables are analyzed, as autovacuum would have on
// a live database: the planner then knows that nearly every stream is
// active and open, instead of guessing from a table a few seconds old.
// Every iteration then ingests one round (a new seed) through each side,
// in an order that rotates, so load bursts hit all sides. Reported: the
// rate of each side over all rounds, the ratios http64/library and
// http_batch/library, the CPU time per notification of the test process
// (server and clients) and of each side's PostgreSQL sessions when they
// can be measured (a local server), and a summary line with the load
// average before and after.
func BenchmarkHTTPIngest(b *testing.B) {
	dbtest.PostgresURL(b) // skips without TEST_DATABASE_URL
	load0 := loadAverage()
	clock := &roundClock{}
	zero := time.Time{}
	clock.now.Store(&zero)
	libDB, db64, dbBatch := newBenchDB(b, "library"), newBenchDB(b, "http64"), newBenchDB(b, "http_batch")
	lib, _ := newBenchManager(b, clock, libDB)
	met64 := metrics.New(metrics.Config{})
	url64 := newBenchServer(b, clock, db64, met64) + "/v1/notifications"
	urlBatch := newBenchServer(b, clock, dbBatch, nil) + "/v1/notifications"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

	sides := []*benchSide{
		{name: "library", db: libDB, run: func(b *testing.B, bodies [][]byte) {
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
		{name: "http64", db: db64, run: func(b *testing.B, bodies [][]byte) {
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
		{name: "http_batch", db: dbBatch, run: func(b *testing.B, bodies [][]byte) {
			for chunk := range slices.Chunk(bodies, benchBatch) {
				body := "[" + string(bytes.Join(chunk, []byte(","))) + "]"
				post(b, client, urlBatch, []byte(body), len(chunk))
			}
		}},
	}
	first := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	warm, start := benchRound(b, 1_000_000, first.AddDate(0, 0, -3))
	clock.now.Store(&start)
	for _, s := range sides {
		s.run(b, warm)
		s.db.analyze(b)
	}
	groups0, groupEvents0 := histogram(b, met64, "winchester_ingest_group_events")
	commits0, commitTime0 := histogram(b, met64, "winchester_ingest_commit_duration_seconds")

	for _, s := range sides {
		s.cpuOK = true
	}
	events := 0
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		bodies, start := benchRound(b, uint64(i+1), first.AddDate(0, 0, 3*i))
		clock.now.Store(&start)
		events += len(bodies)
		b.StartTimer()
		for k := range sides {
			s := sides[(i+k)%len(sides)]
			go0, pg0 := processCPU(), sessionsCPU(b, s.db)
			t0 := time.Now()
			s.run(b, bodies)
			d := time.Since(t0)
			go1, pg1 := processCPU(), sessionsCPU(b, s.db)
			s.total += d
			s.times = append(s.times, d)
			s.cpuOK = s.cpuOK && go0 >= 0 && go1 >= 0 && pg0 >= 0 && pg1 >= 0
			s.goCPU += go1 - go0
			s.pgCPU += pg1 - pg0
		}
	}
	b.StopTimer()
	load1 := loadAverage()
	rate := func(s *benchSide) float64 { return float64(events) / s.total.Seconds() }
	for _, s := range sides {
		b.ReportMetric(rate(s), s.name+"_notifications/s")
		if s.cpuOK {
			b.ReportMetric(float64(s.goCPU.Microseconds())/float64(events), s.name+"_go_cpu_µs/notification")
			b.ReportMetric(float64(s.pgCPU.Microseconds())/float64(events), s.name+"_pg_cpu_µs/notification")
		}
	}
	ratio64, ratioBatch := rate(sides[1])/rate(sides[0]), rate(sides[2])/rate(sides[0])
	b.ReportMetric(ratio64, "http64/library")
	b.ReportMetric(ratioBatch, "http_batch/library")
	groups, groupEvents := histogram(b, met64, "winchester_ingest_group_events")
	commits, commitTime := histogram(b, met64, "winchester_ingest_commit_duration_seconds")
	groups, groupEvents, commits, commitTime = groups-groups0, groupEvents-groupEvents0, commits-commits0, commitTime-commitTime0
	if groups > 0 && commits > 0 {
		b.ReportMetric(groupEvents/float64(groups), "http64_events/group")
		b.ReportMetric(1000*commitTime/float64(commits), "http64_ms/commit")
	}
	var parts []string
	for _, s := range sides {
		parts = append(parts, fmt.Sprintf("%s %v", s.name, s.times))
	}
	b.Logf("%d notifications per side; round times: %s", events, strings.Join(parts, "; "))
	b.Logf("RATIOS http64/library = %.2f (target ≥ 0.50), http_batch/library = %.2f (target ≥ 0.90); library %.0f, http64 %.0f, http_batch %.0f notifications/s; load average %s → %s",
		ratio64, ratioBatch, rate(sides[0]), rate(sides[1]), rate(sides[2]), load0, load1)
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

// loadAverage returns the one-minute load average ("?" where unknown).
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(data))[0]
}
