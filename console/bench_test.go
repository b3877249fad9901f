package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/console"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// benchStreams is the default number of streams BenchmarkPages loads
// (WINCHESTER_BENCH_STREAMS overrides it).
const benchStreams = 1_000_000

// loadStreams fills the store's schema with n streams, one event each,
// in a few set-based statements (generate_series): per_instance streams
// of instance i-<id>, every tenth a per_tenant one; two thirds active
// (one in seven of those ready to fire), a third completed, one in a
// thousand in error, with the same ids for events (m-<id>) and streams.
// Then it analyses the tables, as autovacuum does after a bulk load.
func loadStreams(b *testing.B, url string, n int) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	base := time.Now().Add(-2 * time.Hour).UnixMicro()
	steps := []struct{ what, sql string }{
		{"events", `INSERT INTO event (id, message_id, event_type, timestamp, traits)
SELECT g, 'm-' || g,
       (ARRAY['compute.instance.create.start', 'compute.instance.exists', 'compute.instance.delete.end'])[1 + g % 3],
       $1::bigint + g,
       jsonb_build_object('instance_id', jsonb_build_object('s', 'i-' || g), 'tenant_id', jsonb_build_object('s', 't-' || g % 1000),
                          'memory_mb', jsonb_build_object('i', 512 * (1 + g % 8)))
  FROM generate_series(1, $2::bigint) g`},
		{"streams", `INSERT INTO stream (id, name, stream_key, dist_traits, state, state_serial_no, open,
                    first_event, last_event, expire_timestamp, fire_timestamp, fire_counts, attempts, last_error, created_at)
SELECT g, CASE WHEN g % 10 = 0 THEN 'per_tenant' ELSE 'per_instance' END,
       '11:instance_id' || length('s:i-' || g) || ':s:i-' || g,
       jsonb_build_object('instance_id', jsonb_build_object('s', 'i-' || g)),
       st, CASE st WHEN 1 THEN 0 ELSE 2 END, st = 1,
       $1::bigint + g, $1::bigint + g, $1::bigint + g + 3600000000,
       CASE WHEN st = 1 AND g % 7 = 0 THEN $1::bigint + g END,
       CASE WHEN st = 1 AND g % 7 <> 0 THEN '[0]'::jsonb END,
       CASE st WHEN 4 THEN 1 ELSE 0 END,
       CASE st WHEN 4 THEN 'webhook: 503 Service Unavailable' END,
       $1::bigint + g
  FROM generate_series(1, $2::bigint) g,
       LATERAL (SELECT CASE WHEN g % 1000 = 0 THEN 4 WHEN g % 3 = 0 THEN 6 ELSE 1 END AS st) s`},
		{"links", `INSERT INTO stream_event (stream_id, event_id) SELECT g, g FROM generate_series(1, $2::bigint) g WHERE $1::bigint IS NOT NULL`},
	}
	for _, s := range steps {
		start := time.Now()
		if _, err := conn.Exec(ctx, s.sql, base, n); err != nil {
			b.Fatalf("load %s: %v", s.what, err)
		}
		b.Logf("loaded %d %s in %s", n, s.what, time.Since(start).Round(time.Millisecond))
	}
	for _, q := range []string{
		`SELECT setval(pg_get_serial_sequence('event', 'id'), $1)`,
		`SELECT setval(pg_get_serial_sequence('stream', 'id'), $1)`,
	} {
		if _, err := conn.Exec(ctx, q, n); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, `ANALYZE event, stream, stream_event`); err != nil {
		b.Fatal(err)
	}
	b.Logf("analysed in %s", time.Since(start).Round(time.Millisecond))
}

// BenchmarkPages times the server side of every console page over a
// PostgreSQL database of a million streams (WINCHESTER_BENCH_STREAMS).
// It loads for a minute or two, so it runs only with
// WINCHESTER_LONG_TESTS set (and TEST_DATABASE_URL):
//
//	WINCHESTER_LONG_TESTS=1 go test ./console -run='^$' -bench=Pages -benchtime=20x
func BenchmarkPages(b *testing.B) {
	if os.Getenv("WINCHESTER_LONG_TESTS") == "" {
		b.Skip("loads a million streams: set WINCHESTER_LONG_TESTS=1")
	}
	n := benchStreams
	if v := os.Getenv("WINCHESTER_BENCH_STREAMS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("WINCHESTER_BENCH_STREAMS=%q: want a number of at least 1000", v)
		}
	}
	// WINCHESTER_BENCH_DATABASE_URL names a database loaded before (by
	// this benchmark's statements, with as many streams), to measure again
	// without loading.
	url := os.Getenv("WINCHESTER_BENCH_DATABASE_URL")
	if url == "" {
		url = dbtest.PostgresURL(b)
	}
	store, err := postgres.Open(b.Context(), url, db.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	if os.Getenv("WINCHESTER_BENCH_DATABASE_URL") == "" {
		loadStreams(b, url, n)
	}
	defs, _, err := trigger.Parse("triggers.yaml", []byte(testTriggers))
	if err != nil {
		b.Fatal(err)
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := console.New(mgr, store, console.Options{Metrics: metrics.New(metrics.Config{}), Clock: stream.SystemClock{}})
	if err != nil {
		b.Fatal(err)
	}
	h := c.Handler()
	mid := strconv.Itoa(n / 2)
	for _, p := range []struct{ name, path string }{
		{"overview", "/ui/"},
		{"streams", "/ui/streams"},
		{"streams_state_error", "/ui/streams?state=error"},
		{"streams_trigger", "/ui/streams?trigger=per_tenant"},
		{"streams_trait", "/ui/streams?trait=instance_id%3Di-" + mid},
		{"streams_page_100", "/ui/streams?mark=" + strconv.FormatInt(int64(n/100), 16)},
		{"stream", "/ui/streams/" + mid},
		{"events", "/ui/events"},
		{"events_type", "/ui/events?type=compute.instance.exists"},
		{"events_trait", "/ui/events?trait=tenant_id%3Dt-7"},
		{"events_time", "/ui/events?from=" + stream.FormatTime(time.Now().Add(-2*time.Hour))},
		{"event", "/ui/events/m-" + mid},
		{"triggers", "/ui/triggers"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s = %d: %s", p.path, rec.Code, rec.Body)
				}
			}
		})
	}
}
