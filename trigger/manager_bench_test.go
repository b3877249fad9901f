package trigger_test

// Ingest benchmarks of the trigger manager against real stores (SQLite in
// b.TempDir(), PostgreSQL through TEST_DATABASE_URL). They report rates as
// custom metrics (events/s, the rate of the median call); the comparisons
// that matter are measured in one benchmark function, alternating between
// the two sides, and reported as a ratio of medians (ratio) and of totals
// (mean_ratio), so that a busy machine slows both sides alike. Results and
// the commands are in docs/PERFORMANCE.md ("Ingest").

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/internal/workload"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

const (
	sampleTriggers    = "../etc/triggers.yaml"
	sampleDefinitions = "../etc/event_definitions.yaml"
	// ingestBatch is the number of events per AddEvents call (and per
	// transaction) in the batch benchmarks.
	ingestBatch = 500
)

// benchDB is a store under benchmark plus a side door to the same
// database for fixtures and the COPY baseline.
type benchDB struct {
	store db.Store
	pool  *pgxpool.Pool // PostgreSQL: a pool on the store's schema
	path  string        // SQLite: the database file
}

type benchDriver struct {
	name string
	open func(b testing.TB) *benchDB
}

func benchDrivers() []benchDriver {
	return []benchDriver{{"sqlite", openSQLiteBench}, {"postgres", openPostgresBench}}
}

func openSQLiteBench(b testing.TB) *benchDB {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	st, err := sqlite.Open(context.Background(), "sqlite://"+path, db.Options{Migrate: true})
	if err != nil {
		b.Fatalf("open SQLite store %s: %v", path, err)
	}
	b.Cleanup(func() { st.Close() })
	return &benchDB{store: st, path: path}
}

func openPostgresBench(b testing.TB) *benchDB {
	b.Helper()
	url := dbtest.PostgresURL(b)
	ctx := context.Background()
	st, err := postgres.Open(ctx, url, db.Options{Migrate: true})
	if err != nil {
		b.Fatalf("open PostgreSQL store: %v", err)
	}
	b.Cleanup(func() { st.Close() })
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatalf("connect to PostgreSQL: %v", err)
	}
	b.Cleanup(pool.Close)
	return &benchDB{store: st, pool: pool}
}

// benchClock is the manager's clock. The batch benchmarks set it to the
// timestamp of the first event of each batch, as if the batch were taken
// from the queue as soon as its first event arrived: the generated
// workload is sparse (a batch of 500 events of 2,000 instances spans
// hours), and a clock at the end of the batch would find most streams of
// the sample trigger (expiration $last + 1h) expired within the batch,
// measuring stream churn rather than ingest.
type benchClock struct{ now time.Time }

func (c *benchClock) Now() time.Time { return c.now }

func loadBenchDistiller(b testing.TB) *distiller.Distiller {
	b.Helper()
	d, err := distiller.Load(sampleDefinitions, distiller.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func loadBenchTriggers(b testing.TB) []*trigger.Definition {
	b.Helper()
	defs, _, err := trigger.Load(sampleTriggers)
	if err != nil {
		b.Fatal(err)
	}
	return defs
}

func parseBenchTriggers(b testing.TB, src string) []*trigger.Definition {
	b.Helper()
	defs, _, err := trigger.Parse("bench.yaml", []byte(src))
	if err != nil {
		b.Fatalf("parse triggers: %v\n%s", err, src)
	}
	return defs
}

func newBenchManager(b testing.TB, bd *benchDB, defs []*trigger.Definition, clock stream.Clock, d *distiller.Distiller) *trigger.Manager {
	b.Helper()
	cfg := trigger.ManagerConfig{Clock: clock}
	if d != nil {
		cfg.DistillFunc = d.Event
	}
	m, err := trigger.NewManager(bd.store, defs, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// workloadSource hands out the generated workload in order; when one
// round is used up it generates the next with the next seed (new
// instances, new message ids, the same days), so a benchmark never runs
// out of fresh events.
type workloadSource struct {
	b      testing.TB
	d      *distiller.Distiller
	cfg    workload.Config
	events []stream.Event
	bodies [][]byte
	pos    int
}

func newWorkloadSource(b testing.TB, d *distiller.Distiller, instances, days int) *workloadSource {
	return &workloadSource{b: b, d: d, cfg: workload.Config{Instances: instances, Days: days}}
}

func (s *workloadSource) fill() {
	s.b.Helper()
	s.cfg.Seed++
	s.events, s.bodies, s.pos = s.events[:0], s.bodies[:0], 0
	err := workload.Generate(s.cfg, func(n workload.Notification) error {
		ev, _, err := s.d.Distill(n.Body)
		if err != nil {
			return err
		}
		s.events = append(s.events, ev)
		s.bodies = append(s.bodies, n.Body)
		return nil
	})
	if err != nil {
		s.b.Fatalf("generate workload %+v: %v", s.cfg, err)
	}
}

// next returns up to n consecutive events and their notifications (fewer
// at the end of a round).
func (s *workloadSource) next(n int) ([]stream.Event, [][]byte) {
	if s.pos >= len(s.events) {
		if b, ok := s.b.(*testing.B); ok {
			b.StopTimer()
			defer b.StartTimer()
		}
		s.fill()
	}
	end := min(s.pos+n, len(s.events))
	evs, bodies := s.events[s.pos:end], s.bodies[s.pos:end]
	s.pos = end
	return evs, bodies
}

// rate is a count of events and the time spent on them, call by call.
type rate struct {
	events  int
	elapsed time.Duration
	perCall []time.Duration // time per event of each call
}

func (r *rate) add(events int, d time.Duration) {
	r.events += events
	r.elapsed += d
	r.perCall = append(r.perCall, d/time.Duration(events))
}

// perSecond is the rate of the median call: events per second of the
// median time per event. The median ignores the bursts of other work on
// a shared machine (checkpoints, autovacuum, other processes) that the
// mean would spread over every call.
func (r rate) perSecond() float64 {
	if len(r.perCall) == 0 {
		return 0
	}
	med := slices.Clone(r.perCall)
	slices.Sort(med)
	return 1 / med[len(med)/2].Seconds()
}

// meanPerSecond is events per second over the whole run.
func (r rate) meanPerSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.events) / r.elapsed.Seconds()
}

// sides returns the order in which the sides of a comparison run in
// iteration n: alternately forwards and backwards, so neither side always
// runs first (right after the other's garbage, or with colder caches).
func sides(n, count int) []int {
	order := make([]int, count)
	for i := range order {
		order[i] = i
		if n%2 == 1 {
			order[i] = count - 1 - i
		}
	}
	return order
}

func addEvents(b testing.TB, m *trigger.Manager, events []stream.Event) {
	b.Helper()
	res, err := m.AddEvents(context.Background(), events)
	if err != nil {
		b.Fatalf("AddEvents(%d events): %v", len(events), err)
	}
	for _, r := range res {
		if r.Outcome != trigger.Stored {
			b.Fatalf("AddEvents: event %s: %s %s", r.MessageID, r.Outcome, r.Reason)
		}
	}
}

// BenchmarkIngestBatch ingests the distilled workload (sample triggers) in
// batches of 500 events, one transaction each. On PostgreSQL every batch
// is followed by COPYing the same rows (events, one stream per trigger and
// distinguishing key of the batch, stream links) into the same tables of
// the same schema with pgx CopyFrom: the physical limit of the store.
// ratio = ingest rate / COPY rate.
func BenchmarkIngestBatch(b *testing.B) {
	d := loadBenchDistiller(b)
	defs := loadBenchTriggers(b)
	for _, drv := range benchDrivers() {
		b.Run("driver="+drv.name, func(b *testing.B) {
			bd := drv.open(b)
			clock := &benchClock{}
			m := newBenchManager(b, bd, defs, clock, nil)
			src := newWorkloadSource(b, d, 2000, 2)
			var cp *copier
			if bd.pool != nil {
				set, err := trigger.NewSet(defs)
				if err != nil {
					b.Fatal(err)
				}
				cp = &copier{pool: bd.pool, set: set, nextEvent: 1 << 40, nextStream: 1 << 40}
			}
			var ingest, baseline rate
			groups, n := 0, 0
			for b.Loop() {
				n++
				events, _ := src.next(ingestBatch)
				clock.now = events[0].Timestamp
				var rows copyRows
				if cp != nil {
					rows = cp.rows(events)
					groups += len(rows.streams)
				}
				for _, side := range sides(n, 2) {
					switch {
					case side == 0:
						t0 := time.Now()
						addEvents(b, m, events)
						ingest.add(len(events), time.Since(t0))
					case cp != nil:
						t0 := time.Now()
						cp.copy(b, rows)
						baseline.add(len(events), time.Since(t0))
					}
				}
			}
			b.ReportMetric(ingest.perSecond(), "events/s")
			if cp != nil {
				b.ReportMetric(baseline.perSecond(), "copy_events/s")
				b.ReportMetric(ingest.perSecond()/baseline.perSecond(), "ratio")
				b.ReportMetric(ingest.meanPerSecond()/baseline.meanPerSecond(), "mean_ratio")
				b.ReportMetric(ingest.meanPerSecond()/baseline.meanPerSecond(), "mean_ratio")
				// What the ingest path's cost is made of: the distinct
				// streams (trigger, key) a batch touches, each of which
				// costs the manager three statements, and the round trip
				// time of the connection.
				b.ReportMetric(float64(groups)/float64(n), "streams/batch")
				b.ReportMetric(roundTrip(b, bd.pool).Seconds()*1e6, "rtt_us")
			}
		})
	}
}

// roundTrip is the median time of a trivial query on pool.
func roundTrip(b *testing.B, pool *pgxpool.Pool) time.Duration {
	b.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	times := make([]time.Duration, 201)
	for i := range times {
		t0 := time.Now()
		if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
			b.Fatal(err)
		}
		times[i] = time.Since(t0)
	}
	slices.Sort(times)
	return times[len(times)/2]
}

// copier builds and COPYs the rows the ingest of a batch writes.
type copier struct {
	pool       *pgxpool.Pool
	set        *trigger.Set
	nextEvent  int64
	nextStream int64
	batches    int
}

type copyRows struct {
	events, streams, links [][]any
}

// rows are the event rows of events (message ids changed so they do not
// collide with the ingested ones), one open stream per trigger and
// distinguishing key of the batch (keys prefixed with the batch number for
// the same reason) and a link per match, with the values the ingest path
// computes.
func (c *copier) rows(events []stream.Event) copyRows {
	var r copyRows
	c.batches++
	prefix := fmt.Sprintf("copy%d:", c.batches)
	type group struct {
		id          int64
		first, last time.Time
	}
	groups := map[string]*group{}
	var order []string
	for _, ev := range events {
		c.nextEvent++
		eid := c.nextEvent
		r.events = append(r.events, []any{eid, "x" + ev.MessageID[1:], ev.Type, db.Micros(ev.Timestamp), json.RawMessage(db.EncodeTraits(ev.Traits))})
		for _, d := range c.set.Candidates(ev.Type) {
			ci, ok := d.Match(ev)
			if !ok {
				continue
			}
			dist, ok := d.Distinguish(ev, ci)
			if !ok {
				continue
			}
			key := d.Name + "\x00" + stream.Key(dist)
			g := groups[key]
			if g == nil {
				c.nextStream++
				g = &group{id: c.nextStream, first: ev.Timestamp, last: ev.Timestamp}
				groups[key] = g
				order = append(order, key)
				r.streams = append(r.streams, []any{g.id, d.Name, prefix + stream.Key(dist), json.RawMessage(db.EncodeTraits(dist))})
			}
			if ev.Timestamp.Before(g.first) {
				g.first = ev.Timestamp
			}
			if ev.Timestamp.After(g.last) {
				g.last = ev.Timestamp
			}
			r.links = append(r.links, []any{g.id, eid})
		}
	}
	for i, key := range order {
		g := groups[key]
		row := r.streams[i]
		r.streams[i] = []any{row[0], row[1], row[2], row[3], int32(1), int64(0), true,
			db.Micros(g.first), db.Micros(g.last), db.Micros(g.last.Add(time.Hour)), nil,
			json.RawMessage(`[0]`), db.Micros(g.last)}
	}
	return r
}

var (
	copyEventColumns  = []string{"id", "message_id", "event_type", "timestamp", "traits"}
	copyStreamColumns = []string{"id", "name", "stream_key", "dist_traits", "state", "state_serial_no", "open",
		"first_event", "last_event", "expire_timestamp", "fire_timestamp", "fire_counts", "created_at"}
	copyLinkColumns = []string{"stream_id", "event_id"}
)

// copy writes rows in one transaction with three COPY commands.
func (c *copier) copy(b *testing.B, rows copyRows) {
	b.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"event"}, copyEventColumns, pgx.CopyFromRows(rows.events)); err != nil {
			return fmt.Errorf("copy events: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stream"}, copyStreamColumns, pgx.CopyFromRows(rows.streams)); err != nil {
			return fmt.Errorf("copy streams: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stream_event"}, copyLinkColumns, pgx.CopyFromRows(rows.links)); err != nil {
			return fmt.Errorf("copy links: %w", err)
		}
		return nil
	})
	if err != nil {
		b.Fatalf("COPY baseline: %v", err)
	}
}

// BenchmarkAddEvent adds single distilled events of the workload, one
// transaction each.
func BenchmarkAddEvent(b *testing.B) {
	d := loadBenchDistiller(b)
	defs := loadBenchTriggers(b)
	for _, drv := range benchDrivers() {
		b.Run("driver="+drv.name, func(b *testing.B) {
			bd := drv.open(b)
			clock := &benchClock{}
			m := newBenchManager(b, bd, defs, clock, nil)
			src := newWorkloadSource(b, d, 500, 2)
			var r rate
			ctx := context.Background()
			for b.Loop() {
				events, _ := src.next(1)
				clock.now = events[0].Timestamp
				t0 := time.Now()
				res, err := m.AddEvent(ctx, events[0])
				r.add(1, time.Since(t0))
				if err != nil || res.Outcome != trigger.Stored {
					b.Fatalf("AddEvent(%s) = %+v, %v", events[0].MessageID, res, err)
				}
			}
			b.ReportMetric(r.perSecond(), "events/s")
		})
	}
}

// BenchmarkAddNotification adds single notifications of the workload
// (distilled by the manager with the sample definitions), one
// transaction each.
func BenchmarkAddNotification(b *testing.B) {
	d := loadBenchDistiller(b)
	defs := loadBenchTriggers(b)
	for _, drv := range benchDrivers() {
		b.Run("driver="+drv.name, func(b *testing.B) {
			bd := drv.open(b)
			clock := &benchClock{}
			m := newBenchManager(b, bd, defs, clock, d)
			src := newWorkloadSource(b, d, 500, 2)
			var r rate
			ctx := context.Background()
			for b.Loop() {
				events, bodies := src.next(1)
				clock.now = events[0].Timestamp
				t0 := time.Now()
				res, err := m.AddNotification(ctx, bodies[0])
				r.add(1, time.Since(t0))
				if err != nil || res.Outcome != trigger.Stored {
					b.Fatalf("AddNotification(%s) = %+v, %v", events[0].MessageID, res, err)
				}
			}
			b.ReportMetric(r.perSecond(), "notifications/s")
		})
	}
}

// perInstanceTriggers is one trigger with a stream per instance that
// never expires during a benchmark and whose fire criterion the appended
// update events never satisfy: every append re-evaluates it.
const perInstanceTriggers = `
- name: per_instance
  distinguished_by: [instance_id]
  expiration: $first + 30d
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
`

// benchBase is the time of the synthetic events.
var benchBase = time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)

// updateEvents makes update events for one instance, shaped like the
// workload's distilled update events (the same traits).
type updateEvents struct {
	template stream.Event
	n        int
}

func newUpdateEvents(b *testing.B, d *distiller.Distiller) *updateEvents {
	b.Helper()
	var tmpl stream.Event
	err := workload.Generate(workload.Config{Instances: 50, Days: 3, Seed: 1}, func(n workload.Notification) error {
		if n.EventType != "compute.instance.update" {
			return nil
		}
		ev, _, err := d.Distill(n.Body)
		if err != nil {
			return err
		}
		tmpl = ev
		return workload.ErrStop
	})
	if err != nil || tmpl.MessageID == "" {
		b.Fatalf("no update event in the workload: %v", err)
	}
	return &updateEvents{template: tmpl}
}

func (u *updateEvents) event(prefix, instance string) stream.Event {
	u.n++
	ev := u.template.Clone()
	ev.MessageID = fmt.Sprintf("%s-%d", prefix, u.n)
	ev.Timestamp = benchBase.Add(time.Duration(u.n) * time.Millisecond)
	ev.Traits["instance_id"] = stream.String(instance)
	return ev
}

// BenchmarkStreamLength compares appending one event (AddEvent, one
// transaction) to streams that already hold 10 events with streams that
// hold 10,000. Each side has 20 such streams, filled through the manager
// before the timer starts, and the appends go round-robin over them, so a
// stream grows by N/20 events during the run. ratio = rate at 10,000 /
// rate at 10 (1 means the cost does not depend on the stream's length).
func BenchmarkStreamLength(b *testing.B) {
	d := loadBenchDistiller(b)
	defs := parseBenchTriggers(b, perInstanceTriggers)
	const streams = 20
	lengths := []int{10, 10_000}
	for _, drv := range benchDrivers() {
		b.Run("driver="+drv.name, func(b *testing.B) {
			ev := newUpdateEvents(b, d)
			clock := &benchClock{now: benchBase.Add(24 * time.Hour)}
			mgrs := make([]*trigger.Manager, len(lengths))
			for i, length := range lengths {
				bd := drv.open(b)
				mgrs[i] = newBenchManager(b, bd, defs, clock, nil)
				for s := range streams {
					batch := make([]stream.Event, 0, length)
					for range length {
						batch = append(batch, ev.event(fmt.Sprintf("fill%d", i), fmt.Sprintf("inst-%d", s)))
					}
					addEvents(b, mgrs[i], batch)
				}
			}
			rates := make([]rate, len(lengths))
			ctx := context.Background()
			n := 0
			for b.Loop() {
				for _, i := range sides(n, len(mgrs)) {
					m := mgrs[i]
					e := ev.event(fmt.Sprintf("append%d", i), fmt.Sprintf("inst-%d", n%streams))
					t0 := time.Now()
					res, err := m.AddEvent(ctx, e)
					rates[i].add(1, time.Since(t0))
					if err != nil || res.Outcome != trigger.Stored || res.Matched != 1 {
						b.Fatalf("AddEvent(%s) = %+v, %v", e.MessageID, res, err)
					}
				}
				n++
			}
			b.ReportMetric(rates[0].perSecond(), "len10_events/s")
			b.ReportMetric(rates[1].perSecond(), "len10000_events/s")
			b.ReportMetric(rates[1].perSecond()/rates[0].perSecond(), "ratio")
			b.ReportMetric(rates[1].meanPerSecond()/rates[0].meanPerSecond(), "mean_ratio")
		})
	}
}

// activeStreams is the number of open streams of the many side of
// BenchmarkActiveStreams; 0: 1,000,000 on PostgreSQL, 100,000 on SQLite.
var activeStreams = flag.Int("active.streams", 0, "open streams of the many side of BenchmarkActiveStreams (0: 1,000,000 on PostgreSQL, 100,000 on SQLite)")

// BenchmarkActiveStreams compares ingest (AddEvents, batches of 100
// events, each for a random existing stream) into a database with 1,000
// open streams with one with 1,000,000 (100,000 on SQLite). The streams,
// one event each and their links are inserted with one SQL statement per
// table before the timer starts (-active.streams changes the many
// side). ratio = rate with many streams / rate with 1,000.
func BenchmarkActiveStreams(b *testing.B) {
	d := loadBenchDistiller(b)
	defs := parseBenchTriggers(b, perInstanceTriggers)
	const batch = 100
	for _, drv := range benchDrivers() {
		b.Run("driver="+drv.name, func(b *testing.B) {
			counts := []int{1_000, 1_000_000}
			if drv.name == "sqlite" {
				counts[1] = 100_000
			}
			if *activeStreams > 0 {
				counts[1] = *activeStreams
			}
			ev := newUpdateEvents(b, d)
			clock := &benchClock{now: benchBase.Add(24 * time.Hour)}
			mgrs := make([]*trigger.Manager, len(counts))
			bds := make([]*benchDB, len(counts))
			for i, count := range counts {
				bds[i] = drv.open(b)
				t0 := time.Now()
				prefillStreams(b, bds[i], count)
				b.Logf("%s: %d streams prefilled in %s", drv.name, count, time.Since(t0).Round(time.Millisecond))
				mgrs[i] = newBenchManager(b, bds[i], defs, clock, nil)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			rates := make([]rate, len(counts))
			commits := make([]time.Duration, len(counts))
			ctx := context.Background()
			n := 0
			for b.Loop() {
				n++
				for _, i := range sides(n, len(mgrs)) {
					events := make([]stream.Event, batch)
					for j := range events {
						events[j] = ev.event(fmt.Sprintf("active%d", i), fmt.Sprintf("inst-%d", 1+rng.IntN(counts[i])))
					}
					// AddEvents is InTx around AddEventsTx; calling them
					// here separates the time of the commit.
					var fnEnd time.Time
					t0 := time.Now()
					err := bds[i].store.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
						defer func() { fnEnd = time.Now() }()
						_, err := mgrs[i].AddEventsTx(ctx, tx, events)
						return err
					})
					end := time.Now()
					if err != nil {
						b.Fatal(err)
					}
					rates[i].add(len(events), end.Sub(t0))
					commits[i] += end.Sub(fnEnd)
				}
			}
			many := fmt.Sprintf("streams%dk", counts[1]/1000)
			b.ReportMetric(rates[0].perSecond(), "streams1k_events/s")
			b.ReportMetric(rates[1].perSecond(), many+"_events/s")
			b.ReportMetric(rates[1].perSecond()/rates[0].perSecond(), "ratio")
			b.ReportMetric(rates[1].meanPerSecond()/rates[0].meanPerSecond(), "mean_ratio")
			// The commit's share: it grows with the number of distinct
			// pages a batch dirties, which is larger when the same number
			// of events lands in streams spread over a bigger table.
			b.ReportMetric(commits[0].Seconds()*1000/float64(n), "streams1k_commit_ms")
			b.ReportMetric(commits[1].Seconds()*1000/float64(n), many+"_commit_ms")
		})
	}
}

// prefillStreams inserts n open, active per_instance streams for
// instances inst-1 … inst-n, each with one event, with ids 1 … n.
func prefillStreams(b *testing.B, bd *benchDB, n int) {
	b.Helper()
	ctx := context.Background()
	first := db.Micros(benchBase)
	expire := db.Micros(benchBase.Add(30 * 24 * time.Hour))
	if bd.pool != nil {
		stmts := []string{
			`INSERT INTO event (id, message_id, event_type, timestamp, traits)
			 SELECT g, 'pre-' || g, 'compute.instance.update', $2::bigint,
			        jsonb_build_object('instance_id', jsonb_build_object('s', 'inst-' || g))
			   FROM generate_series(1, $1::bigint) g`,
			`INSERT INTO stream (id, name, stream_key, dist_traits, state, state_serial_no, open,
			                     first_event, last_event, expire_timestamp, fire_counts, created_at)
			 SELECT g, 'per_instance', '11:instance_id' || length('s:inst-' || g) || ':s:inst-' || g,
			        jsonb_build_object('instance_id', jsonb_build_object('s', 'inst-' || g)), 1, 0, TRUE,
			        $2::bigint, $2::bigint, $3::bigint, '[0]', $2::bigint
			   FROM generate_series(1, $1::bigint) g`,
			`INSERT INTO stream_event (stream_id, event_id) SELECT g, g FROM generate_series(1, $1::bigint) g`,
		}
		args := [][]any{{n, first}, {n, first, expire}, {n}}
		for i, s := range stmts {
			if _, err := bd.pool.Exec(ctx, s, args[i]...); err != nil {
				b.Fatalf("prefill %d streams: %v\n%s", n, err, s)
			}
		}
		for _, s := range []string{
			`SELECT setval(pg_get_serial_sequence('event', 'id'), $1::bigint)`,
			`SELECT setval(pg_get_serial_sequence('stream', 'id'), $1::bigint)`,
		} {
			if _, err := bd.pool.Exec(ctx, s, n); err != nil {
				b.Fatalf("prefill: %v", err)
			}
		}
		if _, err := bd.pool.Exec(ctx, `VACUUM ANALYZE event, stream, stream_event`); err != nil {
			b.Fatalf("prefill: analyze: %v", err)
		}
		return
	}
	conn, err := sql.Open("sqlite", "file:"+bd.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	const series = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?1) `
	stmts := []string{
		series + `INSERT INTO event (id, message_id, event_type, timestamp, traits)
		 SELECT n, 'pre-' || n, 'compute.instance.update', ?2, '{"instance_id":{"s":"inst-' || n || '"}}' FROM g`,
		series + `INSERT INTO stream (id, name, stream_key, dist_traits, state, state_serial_no, open,
		                     first_event, last_event, expire_timestamp, fire_counts, created_at)
		 SELECT n, 'per_instance', '11:instance_id' || length('s:inst-' || n) || ':s:inst-' || n,
		        '{"instance_id":{"s":"inst-' || n || '"}}', 1, 0, 1, ?2, ?2, ?3, '[0]', ?2 FROM g`,
		series + `INSERT INTO stream_event (stream_id, event_id) SELECT n, n FROM g`,
		`ANALYZE`,
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s, n, first, expire); err != nil {
			b.Fatalf("prefill %d streams: %v\n%s", n, err, s)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTriggers compares batch ingest of the workload with the
// sample trigger alone and with 99 more triggers for other services'
// events (which the workload's events never match). ratio = rate with
// 100 triggers / rate with 1.
func BenchmarkTriggers(b *testing.B) {
	d := loadBenchDistiller(b)
	one := loadBenchTriggers(b)
	var src strings.Builder
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&src, `- name: trigger_%d
  distinguished_by: [instance_id, {timestamp: day}]
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria:
  - event_type: [service%d.instance.*, "!service%d.instance.exists"]
    traits: {memory_mb: {int: "> 1024"}, state: active}
  - event_type: service%d.instance.exists
    map_distinguished_by: {timestamp: audit_period_beginning}
  fire_criteria:
  - event_type: service%d.instance.exists
`, i, i, i, i, i)
	}
	hundred := append(append([]*trigger.Definition(nil), one...), parseBenchTriggers(b, src.String())...)
	sets := [][]*trigger.Definition{one, hundred}
	for _, drv := range benchDrivers() {
		b.Run("driver="+drv.name, func(b *testing.B) {
			clocks := make([]*benchClock, len(sets))
			mgrs := make([]*trigger.Manager, len(sets))
			srcs := make([]*workloadSource, len(sets))
			for i, defs := range sets {
				clocks[i] = &benchClock{}
				mgrs[i] = newBenchManager(b, drv.open(b), defs, clocks[i], nil)
				srcs[i] = newWorkloadSource(b, d, 2000, 2)
			}
			rates := make([]rate, len(sets))
			n := 0
			for b.Loop() {
				n++
				for _, i := range sides(n, len(mgrs)) {
					m := mgrs[i]
					events, _ := srcs[i].next(ingestBatch)
					clocks[i].now = events[0].Timestamp
					t0 := time.Now()
					addEvents(b, m, events)
					rates[i].add(len(events), time.Since(t0))
				}
			}
			b.ReportMetric(rates[0].perSecond(), "triggers1_events/s")
			b.ReportMetric(rates[1].perSecond(), "triggers100_events/s")
			b.ReportMetric(rates[1].perSecond()/rates[0].perSecond(), "ratio")
			b.ReportMetric(rates[1].meanPerSecond()/rates[0].meanPerSecond(), "mean_ratio")
		})
	}
}

// timedOps measures the time spent in each storage operation the manager
// calls inside its transaction.
type timedOps struct {
	db.Ops
	spent map[string]*rate
}

func (o timedOps) record(op string, t0 time.Time) {
	r := o.spent[op]
	if r == nil {
		r = &rate{}
		o.spent[op] = r
	}
	r.add(1, time.Since(t0))
}

func (o timedOps) SaveEvents(ctx context.Context, events []stream.Event) ([]int64, error) {
	defer o.record("save_events", time.Now())
	return o.Ops.SaveEvents(ctx, events)
}

func (o timedOps) OpenStream(ctx context.Context, name, key string) (stream.Stream, error) {
	defer o.record("open_stream", time.Now())
	return o.Ops.OpenStream(ctx, name, key)
}

func (o timedOps) CreateStream(ctx context.Context, p db.NewStream) (int64, bool, error) {
	defer o.record("create_stream", time.Now())
	return o.Ops.CreateStream(ctx, p)
}

func (o timedOps) AppendToStream(ctx context.Context, p db.AppendParams) error {
	defer o.record("append_to_stream", time.Now())
	return o.Ops.AppendToStream(ctx, p)
}

func (o timedOps) StreamEvents(ctx context.Context, streamID int64) ([]stream.Event, error) {
	defer o.record("stream_events", time.Now())
	return o.Ops.StreamEvents(ctx, streamID)
}

func (o timedOps) CloseStream(ctx context.Context, id int64) error {
	defer o.record("close_stream", time.Now())
	return o.Ops.CloseStream(ctx, id)
}

// timedBatchOps is timedOps over a transaction that is also a
// db.BatchIngester, so that the manager takes its batch path.
type timedBatchOps struct {
	timedOps
	bi db.BatchIngester
}

func (o timedBatchOps) OpenStreams(ctx context.Context, keys []db.StreamKey) (map[db.StreamKey]stream.Stream, error) {
	defer o.record("open_streams", time.Now())
	return o.bi.OpenStreams(ctx, keys)
}

func (o timedBatchOps) CloseStreams(ctx context.Context, ids []int64) error {
	defer o.record("close_streams", time.Now())
	return o.bi.CloseStreams(ctx, ids)
}

func (o timedBatchOps) CreateStreams(ctx context.Context, ps []db.BatchNewStream) ([]int64, []bool, error) {
	defer o.record("create_streams", time.Now())
	return o.bi.CreateStreams(ctx, ps)
}

func (o timedBatchOps) AppendToStreams(ctx context.Context, ps []db.AppendParams) ([]int64, error) {
	defer o.record("append_to_streams", time.Now())
	return o.bi.AppendToStreams(ctx, ps)
}

// timed wraps tx so that every storage call is timed into spent, keeping
// its BatchIngester capability.
func timed(tx db.Ops, spent map[string]*rate) db.Ops {
	o := timedOps{Ops: tx, spent: spent}
	if bi, ok := tx.(db.BatchIngester); ok {
		return timedBatchOps{timedOps: o, bi: bi}
	}
	return o
}

// BenchmarkIngestBreakdown runs the batch ingest of BenchmarkIngestBatch
// through Manager.AddEventsTx with every storage call timed, and reports
// per batch of 500 events how many calls of each kind the manager made
// and how long they took in total (ms; on PostgreSQL the batch path's
// operations, on SQLite the single-stream ones), the time of the manager's own work
// between the calls (manager_ms) and of the commit (commit_ms).
func BenchmarkIngestBreakdown(b *testing.B) {
	d := loadBenchDistiller(b)
	defs := loadBenchTriggers(b)
	ops := []string{"save_events", "open_stream", "create_stream", "append_to_stream", "close_stream",
		"open_streams", "close_streams", "create_streams", "append_to_streams"}
	for _, drv := range benchDrivers() {
		b.Run("driver="+drv.name, func(b *testing.B) {
			bd := drv.open(b)
			clock := &benchClock{}
			m := newBenchManager(b, bd, defs, clock, nil)
			src := newWorkloadSource(b, d, 2000, 2)
			spent := map[string]*rate{}
			var total, inFn time.Duration
			var probe rate
			batches := 0
			ctx := context.Background()
			for b.Loop() {
				batches++
				events, _ := src.next(ingestBatch)
				clock.now = events[0].Timestamp
				var fnEnd time.Time
				t0 := time.Now()
				err := bd.store.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
					defer func() { fnEnd = time.Now() }()
					for i := range 100 {
						t1 := time.Now()
						_, err := tx.OpenStream(ctx, "test_trigger", fmt.Sprintf("probe-%d", i))
						probe.add(1, time.Since(t1))
						if !errors.Is(err, db.ErrNotFound) {
							return err
						}
					}
					_, err := m.AddEventsTx(ctx, timed(tx, spent), events)
					return err
				})
				end := time.Now()
				if err != nil {
					b.Fatal(err)
				}
				total += end.Sub(t0)
				inFn += fnEnd.Sub(t0)
			}
			per := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(batches) }
			var storage time.Duration
			for _, op := range ops {
				r := spent[op]
				if r == nil {
					continue // not an operation of this driver's path
				}
				storage += r.elapsed
				b.ReportMetric(float64(r.events)/float64(batches), op+"_calls")
				b.ReportMetric(per(r.elapsed), op+"_ms")
			}
			b.ReportMetric(per(inFn-storage-probe.elapsed), "manager_ms")
			b.ReportMetric(probe.elapsed.Seconds()*1e6/float64(probe.events), "probe_open_us")
			b.ReportMetric(per(total-inFn), "commit_ms")
			b.ReportMetric(per(total), "batch_ms")
		})
	}
}

// TestIngestBatchMatchesSingle checks the batch path that
// BenchmarkIngestBatch measures on PostgreSQL against the single-stream
// path on the benchmark's workload: after the same batches, the tables
// written through a transaction that is a db.BatchIngester and through
// one whose capability is hidden hold the same streams (same
// distinguishing values, times, fire counts, open flags and states) and
// the same links.
func TestIngestBatchMatchesSingle(t *testing.T) {
	t.Parallel()
	d := loadBenchDistiller(t)
	defs := loadBenchTriggers(t)
	batch, single := openPostgresBench(t), openPostgresBench(t)
	clock := &benchClock{}
	mb := newBenchManager(t, batch, defs, clock, nil)
	ms := newBenchManager(t, &benchDB{store: singleStore{single.store}}, defs, clock, nil)
	src := newWorkloadSource(t, d, 1000, 2)
	for range 10 {
		events, _ := src.next(ingestBatch)
		clock.now = events[0].Timestamp
		addEvents(t, mb, events)
		addEvents(t, ms, events)
	}
	const summary = `
SELECT (SELECT count(*) FROM stream), (SELECT count(*) FROM stream WHERE open),
       (SELECT count(*) FROM stream WHERE fire_timestamp IS NOT NULL), (SELECT count(*) FROM stream_event),
       (SELECT md5(string_agg(concat_ws('/', s.name, s.dist_traits::text, s.first_event, s.last_event, s.expire_timestamp,
                                        s.fire_timestamp, s.fire_counts::text, s.open, s.state, s.created_at,
                                        (SELECT string_agg(e.message_id, ' ' ORDER BY e.id)
                                           FROM stream_event se JOIN event e ON e.id = se.event_id
                                          WHERE se.stream_id = s.id)),
                              ',' ORDER BY s.name, s.dist_traits::text, s.first_event, s.open))
          FROM stream s)`
	type tables struct {
		Streams, Open, Fired, Links int64
		Hash                        string
	}
	read := func(bd *benchDB) tables {
		var r tables
		if err := bd.pool.QueryRow(context.Background(), summary).Scan(&r.Streams, &r.Open, &r.Fired, &r.Links, &r.Hash); err != nil {
			t.Fatalf("read tables: %v", err)
		}
		return r
	}
	want := read(single)
	if want.Streams == 0 || want.Fired == 0 || want.Open == want.Streams {
		t.Fatalf("the single-stream path wrote %+v: want streams, some fired, some closed", want)
	}
	if diff := cmp.Diff(want, read(batch)); diff != "" {
		t.Errorf("the batch path differs from the single-stream path (-single +batch):\n%s", diff)
	}
}

// ingestChunk is the number of items per iteration of
// BenchmarkIngestVsCopy: several batches, so that a pipelined ingest has
// batches to overlap.
const ingestChunk = 8 * ingestBatch

// BenchmarkIngestVsCopy ingests the workload (sample definitions and
// triggers) in chunks of 4,000 notifications or their events, in batches
// of 500, one transaction per batch, and compares on PostgreSQL with
// COPYing the rows the ingest writes (as BenchmarkIngestBatch does), one
// transaction per batch too. The sides, alternated iteration by
// iteration, each ingesting into a store of its own:
//
//   - copy: the COPY baseline (PostgreSQL only);
//   - notifications_serial: Manager.AddNotifications called once per
//     batch, which distils the batch and then writes it;
//   - notifications_pipelined: Manager.IngestNotifications over the
//     chunk, which distils, checks, matches and encodes the next batch on
//     all cores while one is written;
//   - events_serial: Manager.AddEvents called once per batch of distilled
//     events (the path of BenchmarkIngestBatch);
//   - events_pipelined: Manager.IngestEvents over the chunk.
//
// ratio_X = rate of side X / rate of COPY, both the rates of the median
// call; mean_ratio_X the same with the totals.
func BenchmarkIngestVsCopy(b *testing.B) {
	d := loadBenchDistiller(b)
	defs := loadBenchTriggers(b)
	names := []string{"copy", "notifications_serial", "notifications_pipelined", "events_serial", "events_pipelined"}
	for _, drv := range benchDrivers() {
		b.Run("driver="+drv.name, func(b *testing.B) {
			clock := &benchClock{}
			bd := drv.open(b)
			mgrs := make([]*trigger.Manager, len(names))
			for i := 1; i < len(names); i++ {
				side := bd
				if i > 1 {
					side = drv.open(b)
				}
				mgrs[i] = newBenchManager(b, side, defs, clock, d)
			}
			src := newWorkloadSource(b, d, 2000, 2)
			var cp *copier
			if bd.pool != nil {
				set, err := trigger.NewSet(defs)
				if err != nil {
					b.Fatal(err)
				}
				cp = &copier{pool: bd.pool, set: set, nextEvent: 1 << 40, nextStream: 1 << 40}
			}
			ctx := context.Background()
			opts := trigger.IngestOptions{BatchSize: ingestBatch}
			rates := make([]rate, len(names))
			n := 0
			for b.Loop() {
				n++
				var batches [][]stream.Event
				var bodies [][][]byte
				count := 0
				for count < ingestChunk {
					evs, bs := src.next(min(ingestBatch, ingestChunk-count))
					// Copies: the next round reuses the source's arrays.
					batches, bodies = append(batches, slices.Clone(evs)), append(bodies, slices.Clone(bs))
					count += len(evs)
				}
				allEvents, allBodies := slices.Concat(batches...), slices.Concat(bodies...)
				// One clock for the chunk: every side writes the same
				// streams whatever its batches.
				clock.now = batches[0][0].Timestamp
				var rows []copyRows
				if cp != nil {
					for _, evs := range batches {
						rows = append(rows, cp.rows(evs))
					}
				}
				for _, side := range sides(n, len(names)) {
					if side == 0 && cp == nil {
						continue
					}
					m := mgrs[side]
					t0 := time.Now()
					switch names[side] {
					case "copy":
						for _, r := range rows {
							cp.copy(b, r)
						}
					case "notifications_serial":
						for i, bs := range bodies {
							res, err := m.AddNotifications(ctx, bs)
							if err != nil {
								b.Fatalf("AddNotifications(%d notifications): %v", len(bs), err)
							}
							checkAllStored(b, res, batches[i])
						}
					case "notifications_pipelined":
						res, err := m.IngestNotifications(ctx, allBodies, opts)
						if err != nil {
							b.Fatalf("IngestNotifications(%d notifications): %v", len(allBodies), err)
						}
						checkAllStored(b, res, allEvents)
					case "events_serial":
						for _, evs := range batches {
							res, err := m.AddEvents(ctx, evs)
							if err != nil {
								b.Fatalf("AddEvents(%d events): %v", len(evs), err)
							}
							checkAllStored(b, res, evs)
						}
					case "events_pipelined":
						res, err := m.IngestEvents(ctx, allEvents, opts)
						if err != nil {
							b.Fatalf("IngestEvents(%d events): %v", len(allEvents), err)
						}
						checkAllStored(b, res, allEvents)
					}
					rates[side].add(count, time.Since(t0))
				}
			}
			for i := 1; i < len(names); i++ {
				b.ReportMetric(rates[i].perSecond(), names[i]+"/s")
			}
			if cp == nil {
				return
			}
			b.ReportMetric(rates[0].perSecond(), "copy_events/s")
			summary := fmt.Sprintf("ingest vs COPY, %d iterations of %d items (ratio of the medians, of the totals):", n, ingestChunk)
			for i := 1; i < len(names); i++ {
				r, mr := rates[i].perSecond()/rates[0].perSecond(), rates[i].meanPerSecond()/rates[0].meanPerSecond()
				b.ReportMetric(r, "ratio_"+names[i])
				b.ReportMetric(mr, "mean_ratio_"+names[i])
				summary += fmt.Sprintf("\n  %-24s %.2f  %.2f", names[i], r, mr)
			}
			b.Log(summary)
		})
	}
}

// checkAllStored fails the benchmark unless every result says its event was
// stored.
func checkAllStored(b testing.TB, res []trigger.Result, events []stream.Event) {
	b.Helper()
	if len(res) != len(events) {
		b.Fatalf("%d results for %d events", len(res), len(events))
	}
	for i, r := range res {
		if r.Outcome != trigger.Stored || r.MessageID != events[i].MessageID {
			b.Fatalf("event %d (%s): %+v", i, events[i].MessageID, r)
		}
	}
}
