package main

import (
	"bytes"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/internal/workload"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name          string
		q             float64
		buckets       []bucket
		est, lo, hi   float64
		wantNaN       bool
		wantNaNBounds bool
	}{
		{name: "median within the second bucket", q: 0.5,
			buckets: []bucket{{0.5, 10}, {1, 90}, {2.5, 100}, {inf, 100}},
			est:     0.5 + 0.5*40.0/80, lo: 0.5, hi: 1},
		{name: "p99 interpolated", q: 0.99,
			buckets: []bucket{{0.5, 10}, {1, 90}, {2.5, 100}, {inf, 100}},
			est:     1 + 1.5*9.0/10, lo: 1, hi: 2.5},
		{name: "first bucket from zero", q: 0.5,
			buckets: []bucket{{0.1, 100}, {inf, 100}},
			est:     0.05, lo: 0, hi: 0.1},
		{name: "rank in +Inf gives the largest bound", q: 0.99,
			buckets: []bucket{{1, 50}, {2.5, 90}, {inf, 100}},
			est:     2.5, lo: 2.5, hi: inf},
		{name: "empty buckets are skipped", q: 0.5,
			buckets: []bucket{{0.1, 0}, {0.25, 0}, {0.5, 4}, {inf, 4}},
			est:     0.25 + 0.25*2.0/4, lo: 0.25, hi: 0.5},
		{name: "no observations", q: 0.99, buckets: []bucket{{1, 0}, {inf, 0}}, wantNaN: true},
		{name: "no buckets", q: 0.99, wantNaN: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			est, lo, hi := quantile(tc.q, tc.buckets)
			if tc.wantNaN {
				if !math.IsNaN(est) || !math.IsNaN(lo) || !math.IsNaN(hi) {
					t.Fatalf("quantile(%v, %v) = %v, %v, %v, want NaN", tc.q, tc.buckets, est, lo, hi)
				}
				return
			}
			if math.Abs(est-tc.est) > 1e-9 || lo != tc.lo || hi != tc.hi {
				t.Fatalf("quantile(%v, %v) = %v in (%v, %v], want %v in (%v, %v]", tc.q, tc.buckets, est, lo, hi, tc.est, tc.lo, tc.hi)
			}
		})
	}
}

func TestDeltaAndFraction(t *testing.T) {
	inf := math.Inf(1)
	earlier := []bucket{{1, 10}, {inf, 12}}
	later := []bucket{{0.5, 5}, {1, 30}, {inf, 40}}
	got := delta(earlier, later)
	want := []bucket{{0.5, 5}, {1, 20}, {inf, 28}}
	if len(got) != len(want) {
		t.Fatalf("delta = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delta = %v, want %v", got, want)
		}
	}
	if f := fraction(1, got); math.Abs(f-20.0/28) > 1e-9 {
		t.Errorf("fraction(1) = %v, want %v", f, 20.0/28)
	}
	if f := fraction(2, got); !math.IsNaN(f) {
		t.Errorf("fraction(2) (not a bound) = %v, want NaN", f)
	}
	if f := fraction(1, nil); !math.IsNaN(f) {
		t.Errorf("fraction of nothing = %v, want NaN", f)
	}
}

// TestScrapeRealHistogram observes fire lags into the engine's own metrics
// registry, serves it as winchester serve does, and reads the histogram
// back through the soak's scraper: the buckets are those of
// winchester_fire_lag_seconds, both actions are summed, and the quantiles
// come from them.
func TestScrapeRealHistogram(t *testing.T) {
	m := metrics.New(metrics.Config{Version: "test"})
	observe := func(action db.Action, lag time.Duration, n int) {
		for range n {
			s := stream.Stream{}
			if action == db.Fire {
				s.FireTimestamp = time.Now().Add(-lag)
			} else {
				s.ExpireTimestamp = time.Now().Add(-lag)
			}
			m.ObserveAttempt(pipeline.Attempt{Action: action, Trigger: "soak", OK: true, Stream: s})
		}
	}
	observe(db.Fire, 300*time.Millisecond, 60)
	observe(db.Expire, 300*time.Millisecond, 30)
	observe(db.Expire, 1500*time.Millisecond, 9)
	observe(db.Fire, 20*time.Second, 1)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	s, err := fetchMetrics(t.Context(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	bs := s.histogram(metricFireLag, nil)
	if n := observations(bs); n != 100 {
		t.Fatalf("observations = %v, want 100 (buckets %v)", n, bs)
	}
	if n := observations(s.histogram(metricFireLag, map[string]string{"action": "expire"})); n != 39 {
		t.Errorf("expire observations = %v, want 39", n)
	}
	if got := s.sum(metricFireLag+"_count", nil); got != 100 {
		t.Errorf("%s_count = %v, want 100", metricFireLag, got)
	}
	p50, lo, hi := quantile(0.5, bs)
	if lo != 0.25 || hi != 0.5 || math.Abs(p50-(0.25+0.25*50.0/90)) > 1e-9 {
		t.Errorf("p50 = %v in (%v, %v], want %v in (0.25, 0.5]", p50, lo, hi, 0.25+0.25*50.0/90)
	}
	p99, lo, hi := quantile(0.99, bs)
	if lo != 1 || hi != 2.5 || p99 != 2.5 {
		t.Errorf("p99 = %v in (%v, %v], want 2.5 in (1, 2.5]", p99, lo, hi)
	}
	if f := fraction(1, bs); f != 0.9 {
		t.Errorf("within 1 s = %v, want 0.9", f)
	}

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer bad.Close()
	if _, err := fetchMetrics(t.Context(), bad.Client(), bad.URL); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("fetchMetrics of a 503 = %v, want an error naming the status", err)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP x a help
# TYPE x counter
x 3
y{a="1",b="with \"quote\", comma and \\ backslash"} 4.5
z_bucket{le="+Inf"} 7 1700000000000
`
	s, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.sum("x", nil); got != 3 {
		t.Errorf("x = %v, want 3", got)
	}
	if got := s.sum("y", map[string]string{"b": `with "quote", comma and \ backslash`}); got != 4.5 {
		t.Errorf("y with escaped label = %v, want 4.5 (samples %v)", got, s.samples)
	}
	if bs := s.histogram("z", nil); len(bs) != 1 || !math.IsInf(bs[0].le, 1) || bs[0].count != 7 {
		t.Errorf("histogram z = %v, want [{+Inf 7}]", bs)
	}
	for _, bad := range []string{"novalue", "x{a=\"1\"}", `x{a="1} 2`, "x{a=1} 2", "x abc"} {
		if _, err := parseMetrics(strings.NewReader(bad + "\n")); err == nil {
			t.Errorf("parseMetrics(%q) = nil error, want one", bad)
		}
	}
}

// TestRestamp checks that a restamped workload notification distils into
// an event at the new time with everything else unchanged.
func TestRestamp(t *testing.T) {
	d, err := distiller.Load(filepath.Join("..", "..", "etc", "event_definitions.yaml"), distiller.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := workload.Notifications(workload.Config{Instances: 3, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 678901000, time.UTC)
	for _, n := range ns {
		b, err := restamp(n.Body, at)
		if err != nil {
			t.Fatalf("restamp %s: %v", n.MessageID, err)
		}
		before, _, err := d.Distill(n.Body)
		if err != nil {
			t.Fatal(err)
		}
		ev, _, err := d.Distill(b)
		if err != nil {
			t.Fatalf("distill restamped %s: %v\n%s", n.MessageID, err, b)
		}
		if !ev.Timestamp.Equal(at) {
			t.Errorf("%s: timestamp %v, want %v", n.MessageID, ev.Timestamp, at)
		}
		if ev.MessageID != before.MessageID || ev.Type != before.Type || len(ev.Traits) != len(before.Traits) {
			t.Errorf("%s: restamping changed the event: %+v, was %+v", n.MessageID, ev, before)
		}
	}
	for _, bad := range []string{`{"event_type":"x"}`, `{"timestamp":"2014-01-01`} {
		if _, err := restamp([]byte(bad), at); err == nil {
			t.Errorf("restamp(%s) = nil error, want one", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {0, 1}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func TestVerdict(t *testing.T) {
	o := options{goal: 2 * time.Second}
	tests := []struct {
		name   string
		r      result
		pass   bool
		reason string
	}{
		{name: "held and fast", r: result{lagCount: 10, lagP99: 1.9, planned: 100, sent: 100}, pass: true},
		{name: "slow", r: result{lagCount: 10, lagP99: 2.1, planned: 100, sent: 100}, reason: "fire lag p99"},
		{name: "at the goal is not below it", r: result{lagCount: 10, lagP99: 2, planned: 100, sent: 100}, reason: "fire lag p99"},
		{name: "nothing processed", r: result{lagP99: math.NaN(), planned: 100, sent: 100}, reason: "no stream"},
		{name: "late", r: result{lagCount: 10, lagP99: 0.5, planned: 100, sent: 100, late: 2}, reason: "load was not held"},
		{name: "unsent", r: result{lagCount: 10, lagP99: 0.5, planned: 100, sent: 98, unsent: 2}, reason: "load was not held"},
		{name: "one percent late is held", r: result{lagCount: 10, lagP99: 0.5, planned: 100, sent: 100, late: 1}, pass: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.verdict(o)
			if r.pass != tc.pass {
				t.Fatalf("pass = %v, want %v (reasons %q)", r.pass, tc.pass, r.reasons)
			}
			if tc.reason != "" && !strings.Contains(strings.Join(r.reasons, "; "), tc.reason) {
				t.Errorf("reasons %q, want one containing %q", r.reasons, tc.reason)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	env := func(string) string { return "" }
	o, err := parseFlags(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 10*time.Minute || o.rate != 2000 || o.workers != 2 || o.amqpURL != "" || o.goal != 2*time.Second || o.syncCommit != "on" {
		t.Errorf("defaults = %+v", o)
	}
	o, err = parseFlags([]string{"--duration", "15s", "--rate", "50", "--workers", "3", "--warmup", "5s",
		"--database-url", "postgres://x/y", "--amqp", "amqp://guest:guest@h:5672/", "--vacuum-every", "10s"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 15*time.Second || o.rate != 50 || o.workers != 3 || o.databaseURL != "postgres://x/y" || o.amqpURL != "amqp://guest:guest@h:5672/" || o.vacuumEvery != 10*time.Second {
		t.Errorf("parsed = %+v", o)
	}
	for _, bad := range [][]string{
		{"--rate", "0"}, {"--workers", "0"}, {"--duration", "10s", "--warmup", "10s"},
		{"--database-url", ""}, {"extra"}, {"--no-such-flag"}, {"--vacuum-every", "-1s"},
	} {
		if _, err := parseFlags(bad, env); err == nil {
			t.Errorf("parseFlags(%q) = nil error, want one", bad)
		}
	}
}

// TestSoak runs the whole command at a low rate for a few seconds, over
// HTTP and over RabbitMQ: it builds and starts winchester serve on a
// database of its own, sends, scrapes and reports. Whether the soak passes
// depends on the machine, so only the plumbing is checked: every
// notification sent was stored, streams were processed in the measured
// window, and the p99 came from their buckets.
func TestSoak(t *testing.T) {
	if os.Getenv("WINCHESTER_LONG_TESTS") != "1" {
		t.Skip("builds and runs winchester serve for about half a minute per variant; set WINCHESTER_LONG_TESTS=1")
	}
	dbURL := os.Getenv("TEST_DATABASE_URL")
	if dbURL == "" {
		t.Skip("TEST_DATABASE_URL is not set")
	}
	amqpURL := os.Getenv("TEST_AMQP_URL")
	if amqpURL == "" {
		amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
	}
	for _, tc := range []struct{ name, amqp string }{{"http", ""}, {"amqp", amqpURL}} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags([]string{"--duration", "12s", "--rate", "100", "--warmup", "3s", "--progress", "3s",
				"--drain", "30s", "--clients", "4", "--batch", "10", "--instances", "50", "--database-url", dbURL, "--amqp", tc.amqp, "--vacuum-every", "2s"}, os.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res, err := run(t.Context(), o, &out)
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			if res.planned != 1200 || res.sent+res.unsent+res.failed != res.planned {
				t.Errorf("planned %d, sent %d, unsent %d, failed %d: want 1200 planned, each sent, unsent or failed", res.planned, res.sent, res.unsent, res.failed)
			}
			if res.eventsStored != float64(res.sent) {
				t.Errorf("server stored %v events, sent %d", res.eventsStored, res.sent)
			}
			if tc.amqp == "" && res.stored != res.sent {
				t.Errorf("answered stored %d, sent %d", res.stored, res.sent)
			}
			if strings.Contains(out.String(), "soak: vacuum:") {
				t.Errorf("the --vacuum-every loop failed:\n%s", out.String())
			}
			if res.lagCount == 0 || res.fired+res.expired == 0 {
				t.Fatalf("no fire lag observed (%v) or no stream processed (%v fired, %v expired)", res.lagCount, res.fired, res.expired)
			}
			if math.IsNaN(res.lagP99) || res.lagP99 > res.lagP99Hi || (res.lagP99 < res.lagP99Lo && !math.IsInf(res.lagP99Hi, 1)) {
				t.Errorf("p99 %v not within its bucket (%v, %v]", res.lagP99, res.lagP99Lo, res.lagP99Hi)
			}
			if res.syncCommit != "on" {
				t.Errorf("synchronous_commit = %q, want on", res.syncCommit)
			}
			for _, want := range []string{"synchronous_commit=on", "fire lag:", "backlog:", "ingest p99"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if !strings.Contains(out.String(), "PASS") && !strings.Contains(out.String(), "FAIL") {
				t.Errorf("output has no verdict")
			}
		})
	}
}

func TestCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Errorf("procCPU(self): %v", err)
	}
	if _, err := procCPU(-1); err == nil {
		t.Errorf("procCPU(-1) = nil error, want one")
	}
	total, n := cpuDelta(map[int32]time.Duration{1: time.Second, 2: time.Second},
		map[int32]time.Duration{1: 3 * time.Second, 3: time.Second})
	if total != 3*time.Second || n != 2 {
		t.Errorf("cpuDelta = %v over %d, want 3s over 2 (backend 2 exited, 3 is new)", total, n)
	}
}
