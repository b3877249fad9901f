// Command soak runs winchester serve, built from this checkout, on a
// PostgreSQL database of its own under a steady, paced load of
// notifications and reads the fire lag from the server's own /metrics.
//
// It creates a database on the server of --database-url (dropped at the
// end unless --keep-database), sets synchronous_commit for it (--sync-commit,
// default on: durable commits) and checks what a session sees, migrates it
// with winchester_db, and starts winchester serve with --workers pipeline
// workers and a trigger whose streams fire one second after their second
// compute.instance.exists event or expire five seconds after their last
// event. It then sends the notifications of internal/workload (timestamps
// set to the sending time, so deadlines are wall-clock times) at --rate per
// second for --duration, over HTTP (POST /v1/notifications, --batch per
// request, from --clients senders) or, with --amqp URL, to a RabbitMQ
// exchange the server consumes.
//
// Pacing is open loop: request k is due at start + k×batch/rate whatever
// happened to the earlier ones; a request waits in a queue for a free
// sender, counts as late when it starts more than --late after its due
// time, and is not sent at all (unsent) when the queue (5 s of requests)
// is full. Ingest latency is measured from the due time to the answer, so
// it includes the queueing a slow server causes.
//
// Every --progress it scrapes /metrics and prints a progress line. After
// the load it waits (up to --drain) until no stream is ready and the last
// deadlines have passed, scrapes once more and prints the report. The fire
// lag (winchester_fire_lag_seconds, fire and expire together) is the
// difference between that last scrape and the first scrape at least
// --warmup after the start: only streams processed after the warm-up
// count. Its quantiles are estimated from the histogram buckets as
// PromQL's histogram_quantile does (linear within the bucket); the bucket
// holding the p99 is printed too. The soak passes when that p99 is below
// --goal (2 s) and at least 99 % of the planned notifications were sent
// on time; otherwise it exits 1.
//
//	go run ./bench/soak --database-url postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//	go run ./bench/soak --duration 10m --rate 2000 --workers 2 --amqp amqp://guest:guest@127.0.0.1:5672/
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if !res.pass {
		os.Exit(1)
	}
}

// options are the soak's flags.
type options struct {
	duration, warmup, progress, drain, late, goal time.Duration

	rate                 float64
	workers              int
	batch, clients       int
	instances, days      int
	databaseURL, amqpURL string
	syncCommit           string
	keepDatabase         bool
	vacuumEvery          time.Duration
}

func parseFlags(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the load runs")
	fs.Float64Var(&o.rate, "rate", 2000, "notifications per second")
	fs.IntVar(&o.workers, "workers", 2, "pipeline workers of winchester serve (serve.workers)")
	defURL := getenv("TEST_DATABASE_URL")
	if defURL == "" {
		defURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	fs.StringVar(&o.databaseURL, "database-url", defURL, "PostgreSQL server (a database of its own is created there; default $TEST_DATABASE_URL)")
	fs.StringVar(&o.amqpURL, "amqp", "", "send through RabbitMQ at this URL (amqp://guest:guest@127.0.0.1:5672/) instead of HTTP")
	fs.DurationVar(&o.warmup, "warmup", time.Minute, "start of the measured window: streams processed before are not counted")
	fs.DurationVar(&o.progress, "progress", 10*time.Second, "interval of progress lines and scrapes")
	fs.DurationVar(&o.drain, "drain", time.Minute, "longest wait after the load for the backlog to empty")
	fs.DurationVar(&o.late, "late", time.Second, "a request starting later than this after its due time is late")
	fs.DurationVar(&o.goal, "goal", 2*time.Second, "the fire lag p99 must be below this")
	fs.IntVar(&o.batch, "batch", 20, "notifications per request (per HTTP POST or per confirmed AMQP batch)")
	fs.IntVar(&o.clients, "clients", 32, "concurrent senders")
	fs.IntVar(&o.instances, "instances", 1000, "compute instances of each round of the workload")
	fs.IntVar(&o.days, "days", 4, "days of each round of the workload")
	fs.StringVar(&o.syncCommit, "sync-commit", "on", "synchronous_commit of the soak database")
	fs.BoolVar(&o.keepDatabase, "keep-database", false, "do not drop the soak database at the end")
	fs.DurationVar(&o.vacuumEvery, "vacuum-every", 0, "run VACUUM ANALYZE on the stream tables at this interval (0: never), standing in for autovacuum on a server that has it off")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.duration <= 0 || o.rate <= 0 || o.workers < 1 || o.batch < 1 || o.clients < 1 || o.progress <= 0:
		return options{}, errors.New("--duration, --rate, --workers, --batch, --clients and --progress must be positive")
	case o.warmup < 0 || o.warmup >= o.duration:
		return options{}, fmt.Errorf("--warmup %s must be shorter than --duration %s", o.warmup, o.duration)
	case o.vacuumEvery < 0:
		return options{}, errors.New("--vacuum-every must not be negative")
	case o.databaseURL == "":
		return options{}, errors.New("no --database-url")
	}
	return o, nil
}

// result is what the report says; pass is the verdict.
type result struct {
	planned, sent, late, unsent, failed    int64
	stored, rejected, duplicates           int64
	eventsStored                           float64
	achieved                               float64 // notifications sent per second of the load
	ingestP50, ingestP99, ingestMax        time.Duration
	fired, expired, errored                float64
	lagCount                               float64
	lagP50, lagP99, lagP99Lo, lagP99Hi     float64
	lagUnder1s                             float64
	maxBacklog, finalBacklog               float64
	syncCommit, fsync                      string
	window                                 time.Duration
	pass                                   bool
	reasons                                []string
	scrapes                                int
	sendErrors                             []string
	cpuWall, cpuSelf, cpuServe, cpuDB      time.Duration
	backends                               int
	loadStart, loadEnd, loadAvg0, loadAvg1 string
}

// run runs the soak and prints progress and the report to w. An error
// means the soak could not run; a soak that ran and missed its goal
// returns a result whose pass is false.
func run(ctx context.Context, o options, w io.Writer) (*result, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "winchester-soak-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(w, "building winchester from %s\n", root)
	if err := build(ctx, root, dir); err != nil {
		return nil, err
	}
	db, err := createDatabase(ctx, o.databaseURL, o.syncCommit)
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.keepDatabase {
			fmt.Fprintf(w, "kept database %s\n", redact(db.url))
			return
		}
		if err := db.drop(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintln(w, "soak:", err)
		}
	}()
	fmt.Fprintf(w, "database %s: synchronous_commit=%s fsync=%s autovacuum=%s\n", db.name, db.synchronousCommit, db.fsync, db.autovacuum)
	if db.autovacuum != "on" && o.vacuumEvery == 0 {
		fmt.Fprintln(w, "warning: autovacuum is off on this server: dead stream rows pile up and the planner never gets statistics; pass --vacuum-every 10s to stand in for it")
	}
	if o.vacuumEvery > 0 {
		vctx, stop := context.WithCancel(ctx)
		defer stop()
		go db.vacuumLoop(vctx, o.vacuumEvery, w)
	}

	listen, err := freeListen()
	if err != nil {
		return nil, err
	}
	sc := serverConfig{databaseURL: db.url, listen: listen, workers: o.workers}
	var conn *amqp.Connection
	if o.amqpURL != "" {
		t := amqpTarget{url: o.amqpURL, exchange: db.name, queue: db.name}
		conn, err = amqp.Dial(o.amqpURL)
		if err != nil {
			return nil, fmt.Errorf("connect to RabbitMQ %s: %w", redact(o.amqpURL), err)
		}
		defer conn.Close()
		if err := prepareAMQP(conn, t); err != nil {
			return nil, err
		}
		defer func() {
			if err := cleanAMQP(conn, t); err != nil {
				fmt.Fprintln(w, "soak:", err)
			}
		}()
		sc.amqp = &t
	}
	cfgPath, err := writeConfig(root, dir, sc)
	if err != nil {
		return nil, err
	}
	srv, err := startServer(ctx, dir, cfgPath, listen)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.stop()
		}
	}()
	if sc.amqp != nil {
		if err := waitQueue(ctx, conn, *sc.amqp); err != nil {
			return nil, err
		}
	}
	via := "HTTP POST /v1/notifications"
	if sc.amqp != nil {
		via = "RabbitMQ exchange " + sc.amqp.exchange
	}
	fmt.Fprintf(w, "winchester serve on %s, %d workers; %g notifications/s for %s over %s, %d per request, %d senders; warm-up %s\n",
		listen, o.workers, o.rate, o.duration, via, o.batch, o.clients, o.warmup)

	res, err := soak(ctx, o, db, srv, conn, sc.amqp, w)
	if err != nil {
		return nil, err
	}
	res.syncCommit, res.fsync = db.synchronousCommit, db.fsync
	stopped = true
	if err := srv.stop(); err != nil {
		return nil, err
	}
	report(w, o, res)
	return res, nil
}

// The metrics the soak reads.
const (
	metricFireLag   = "winchester_fire_lag_seconds"
	metricReady     = "winchester_streams_ready"
	metricStored    = "winchester_events_stored_total"
	metricProcessed = "winchester_streams_processed_total"
	metricDuplicate = "winchester_events_duplicate_total"
	metricRejected  = "winchester_events_rejected_total"
)

func soak(ctx context.Context, o options, db *database, srv *server, conn *amqp.Connection, target *amqpTarget, w io.Writer) (*result, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.clients}}
	scrapeClient := &http.Client{Timeout: 30 * time.Second}
	metricsURL := srv.base + "/metrics"
	first, err := fetchMetrics(ctx, scrapeClient, metricsURL)
	if err != nil {
		return nil, err
	}
	res := &result{loadAvg0: loadAverage()}
	cpu0 := readCPU(ctx, db, srv)

	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	src := make(chan []byte, 4*o.batch)
	reqs := make(chan request, max(1, int(5*o.rate)/o.batch))
	st := &loadStats{late: o.late}
	var wg sync.WaitGroup
	var feedErr error
	wg.Go(func() { feedErr = feed(loadCtx, o.instances, o.days, src) })
	start := time.Now().Add(50 * time.Millisecond)
	var senders sync.WaitGroup
	senders.Go(func() { pace(loadCtx, start, o.rate, o.batch, o.duration, src, reqs, st) })
	var sendErrs = make([]error, o.clients)
	for i := range o.clients {
		senders.Go(func() {
			if target != nil {
				sendErrs[i] = sendAMQP(loadCtx, conn, *target, reqs, st)
				return
			}
			sendHTTP(loadCtx, client, srv.base, reqs, st)
		})
	}
	loadDone := make(chan struct{})
	go func() { senders.Wait(); close(loadDone) }()

	scrapes := []scrape{first}
	prev, prevLoad := first, st.snapshot(0)
	tick := time.NewTicker(o.progress)
	defer tick.Stop()
	progress := func(now scrape, final bool) {
		ls := st.snapshot(prevLoad.next)
		secs := now.at.Sub(prev.at).Seconds()
		lag := delta(prev.histogram(metricFireLag, nil), now.histogram(metricFireLag, nil))
		p99, _, _ := quantile(0.99, lag)
		var lat []time.Duration
		for _, l := range ls.latencies {
			lat = append(lat, l.total)
		}
		label := fmt.Sprintf("%5.0fs", now.at.Sub(start).Seconds())
		if final {
			label = "drain"
		}
		fmt.Fprintf(w, "%s sent %6.0f/s late %d unsent %d failed %d | stored %6.0f/s | streams %5.0f/s, ready %4.0f | lag p99 %s (%0.f) | ingest p99 %s\n",
			label, float64(ls.sent-prevLoad.sent)/secs, ls.late, ls.unsent, ls.failed,
			(now.sum(metricStored, nil)-prev.sum(metricStored, nil))/secs,
			(now.sum(metricProcessed, map[string]string{"result": "ok"})-prev.sum(metricProcessed, map[string]string{"result": "ok"}))/secs,
			now.sum(metricReady, nil), seconds(p99), observations(lag), percentile(lat, 99).Round(time.Millisecond))
		prev, prevLoad = now, ls
	}
	var loadEnd time.Time
loop:
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-loadDone:
			loadEnd = time.Now()
			break loop
		case <-tick.C:
			if err := srv.running(); err != nil {
				return nil, err
			}
			s, err := fetchMetrics(ctx, scrapeClient, metricsURL)
			if err != nil {
				return nil, err
			}
			scrapes = append(scrapes, s)
			progress(s, false)
		}
	}
	cancel()
	wg.Wait()
	if feedErr != nil {
		return nil, feedErr
	}
	if err := errors.Join(sendErrs...); err != nil {
		return nil, err
	}

	// Drain: wait until the server has dealt with every notification sent
	// (the RabbitMQ queue may still hold some), the last streams' deadlines
	// (up to the expiration, 5 s, after the last events) have passed and
	// the ready backlog is empty.
	drainEnd := loadEnd.Add(o.drain)
	var last scrape
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
		if err := srv.running(); err != nil {
			return nil, err
		}
		last, err = fetchMetrics(ctx, scrapeClient, metricsURL)
		if err != nil {
			return nil, err
		}
		accounted := last.sum(metricStored, nil) + last.sum(metricDuplicate, nil) + last.sum(metricRejected, nil) -
			first.sum(metricStored, nil) - first.sum(metricDuplicate, nil) - first.sum(metricRejected, nil)
		done := accounted >= float64(st.snapshot(0).sent) && time.Since(loadEnd) > 7*time.Second && last.sum(metricReady, nil) == 0
		if done || time.Now().After(drainEnd) {
			break
		}
	}
	scrapes = append(scrapes, last)
	progress(last, true)
	res.loadAvg1 = loadAverage()
	cpu1 := readCPU(ctx, db, srv)
	res.cpuWall = last.at.Sub(first.at)
	res.cpuSelf = cpu1.self - cpu0.self
	res.cpuServe = cpu1.serve - cpu0.serve
	if cpu0.backends != nil && cpu1.backends != nil {
		res.cpuDB, res.backends = cpuDelta(cpu0.backends, cpu1.backends)
	}

	// The window: from the first scrape at least warm-up after the start.
	from := scrapes[len(scrapes)-1]
	for _, s := range scrapes {
		if !s.at.Before(start.Add(o.warmup)) {
			from = s
			break
		}
	}
	res.window = last.at.Sub(from.at)
	res.scrapes = len(scrapes)
	lag := delta(from.histogram(metricFireLag, nil), last.histogram(metricFireLag, nil))
	res.lagCount = observations(lag)
	res.lagP50, _, _ = quantile(0.5, lag)
	res.lagP99, res.lagP99Lo, res.lagP99Hi = quantile(0.99, lag)
	res.lagUnder1s = fraction(1, lag)
	for _, s := range scrapes {
		res.maxBacklog = max(res.maxBacklog, s.sum(metricReady, nil))
	}
	res.finalBacklog = last.sum(metricReady, nil)
	res.fired = last.sum(metricProcessed, map[string]string{"action": "fire", "result": "ok"}) - first.sum(metricProcessed, map[string]string{"action": "fire", "result": "ok"})
	res.expired = last.sum(metricProcessed, map[string]string{"action": "expire", "result": "ok"}) - first.sum(metricProcessed, map[string]string{"action": "expire", "result": "ok"})
	res.errored = last.sum(metricProcessed, map[string]string{"result": "error"}) - first.sum(metricProcessed, map[string]string{"result": "error"})
	res.eventsStored = last.sum(metricStored, nil) - first.sum(metricStored, nil)

	ls := st.snapshot(0)
	res.planned, res.sent, res.late, res.unsent, res.failed = ls.plan, ls.sent, ls.late, ls.unsent, ls.failed
	res.stored, res.duplicates, res.rejected = ls.stored, ls.dup, ls.rejected
	res.achieved = float64(ls.sent) / loadEnd.Sub(start).Seconds()
	var lat []time.Duration
	for _, l := range ls.latencies {
		lat = append(lat, l.total)
	}
	res.ingestP50, res.ingestP99 = percentile(lat, 50), percentile(lat, 99)
	res.ingestMax = percentile(lat, 100)
	res.sendErrors = ls.errs
	res.verdict(o)
	return res, nil
}

// cpuReading is the CPU time used so far by the soak, the server and the
// database's backends (nil when they cannot be read).
type cpuReading struct {
	self, serve time.Duration
	backends    map[int32]time.Duration
}

func readCPU(ctx context.Context, db *database, srv *server) cpuReading {
	r := cpuReading{self: selfCPU()}
	r.serve, _ = procCPU(srv.cmd.Process.Pid)
	r.backends, _ = backendCPU(ctx, db.adminURL, db.name)
	return r
}

// verdict decides pass or fail: a fire lag p99 below the goal, measured
// on observations, under the load asked for.
func (r *result) verdict(o options) {
	r.pass = true
	switch {
	case r.lagCount == 0:
		r.pass = false
		r.reasons = append(r.reasons, "no stream was fired or expired in the measured window")
	case !(r.lagP99 < o.goal.Seconds()):
		r.pass = false
		r.reasons = append(r.reasons, fmt.Sprintf("fire lag p99 %s is not below %s", seconds(r.lagP99), o.goal))
	}
	onTime := r.sent - r.late
	if r.planned == 0 || float64(onTime) < 0.99*float64(r.planned) {
		r.pass = false
		r.reasons = append(r.reasons, fmt.Sprintf("the load was not held: %d of %d notifications sent on time (%d late, %d unsent, %d failed)",
			onTime, r.planned, r.late, r.unsent, r.failed))
	}
}

func report(w io.Writer, o options, r *result) {
	fmt.Fprintf(w, "\nsoak: %s at %g notifications/s, %d workers, synchronous_commit=%s, fsync=%s; load average %s → %s\n",
		o.duration, o.rate, o.workers, r.syncCommit, r.fsync, r.loadAvg0, r.loadAvg1)
	fmt.Fprintf(w, "sent:       %d of %d planned (%.0f/s achieved), %d late (started > %s after their time), %d unsent (queue full), %d failed\n",
		r.sent, r.planned, r.achieved, r.late, o.late, r.unsent, r.failed)
	if o.amqpURL == "" {
		fmt.Fprintf(w, "answered:   %d stored, %d duplicate, %d rejected; server stored %.0f events\n", r.stored, r.duplicates, r.rejected, r.eventsStored)
		fmt.Fprintf(w, "ingest:     due time → answer p50 %s, p99 %s, max %s\n", r.ingestP50.Round(time.Millisecond), r.ingestP99.Round(time.Millisecond), r.ingestMax.Round(time.Millisecond))
	} else {
		fmt.Fprintf(w, "stored:     the server stored %.0f events\n", r.eventsStored)
		fmt.Fprintf(w, "publish:    due time → broker confirm p50 %s, p99 %s, max %s\n", r.ingestP50.Round(time.Millisecond), r.ingestP99.Round(time.Millisecond), r.ingestMax.Round(time.Millisecond))
	}
	if len(r.sendErrors) > 0 {
		fmt.Fprintf(w, "errors:     %s\n", strings.Join(r.sendErrors, "; "))
	}
	fmt.Fprintf(w, "streams:    %.0f fired, %.0f expired, %.0f errors\n", r.fired, r.expired, r.errored)
	fmt.Fprintf(w, "backlog:    winchester_streams_ready max %.0f, at the end %.0f (%d scrapes)\n", r.maxBacklog, r.finalBacklog, r.scrapes)
	fmt.Fprintf(w, "fire lag:   %.0f streams over the last %s (after a %s warm-up): p50 %s, p99 %s (in bucket (%s, %s]), %.2f%% within 1 s\n",
		r.lagCount, r.window.Round(time.Second), o.warmup, seconds(r.lagP50), seconds(r.lagP99), seconds(r.lagP99Lo), seconds(r.lagP99Hi), 100*r.lagUnder1s)
	if r.cpuWall > 0 {
		cores := func(d time.Duration) float64 { return d.Seconds() / r.cpuWall.Seconds() }
		db := "n/a (the server is not on this machine)"
		if r.backends > 0 {
			db = fmt.Sprintf("%s (%.2f cores, %d backends)", r.cpuDB.Round(time.Second), cores(r.cpuDB), r.backends)
		}
		fmt.Fprintf(w, "cpu:        over %s: PostgreSQL backends of the soak database %s, winchester serve %s (%.2f cores), this client %s (%.2f cores)\n",
			r.cpuWall.Round(time.Second), db, r.cpuServe.Round(time.Second), cores(r.cpuServe), r.cpuSelf.Round(time.Second), cores(r.cpuSelf))
	}
	if r.pass {
		fmt.Fprintf(w, "PASS: fire lag p99 below %s under the load\n", o.goal)
		return
	}
	fmt.Fprintf(w, "FAIL: %s\n", strings.Join(r.reasons, "; "))
}

// seconds formats seconds as a duration; NaN as "n/a".
func seconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "n/a"
	case math.IsInf(s, 1):
		return "+Inf"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// loadAverage returns the 1-minute load average, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
