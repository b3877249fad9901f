package amqpconsume_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/winchester-go/winchester/amqpconsume"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/ingest"
	"github.com/winchester-go/winchester/internal/workload"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// amqpURLEnv names the variable with the broker tests use.
const amqpURLEnv = "TEST_AMQP_URL"

const defaultAMQPURL = "amqp://guest:guest@127.0.0.1:5672/"

// brokerURL returns the URL of the local RabbitMQ, or skips the test when
// it cannot be reached (fails in CI).
func brokerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(amqpURLEnv)
	if u == "" {
		u = defaultAMQPURL
	}
	conn, err := amqp.Dial(u)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("RabbitMQ at %s: %v (CI must run the broker tests)", amqpconsume.RedactURL(u), err)
		}
		t.Skipf("RabbitMQ tests skipped: %v (set %s)", err, amqpURLEnv)
	}
	_ = conn.Close()
	return u
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// uniqueName is a broker object name that tells which test made it.
func uniqueName(t testing.TB, what string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	return "test." + n + "." + what + "." + hex.EncodeToString(b[:])
}

// topology is the broker objects of one test, deleted in t.Cleanup.
type topology struct {
	url        string
	exchange   string
	queue      string
	dlx        string
	deadQueue  string
	connection *amqp.Connection
	ch         *amqp.Channel
}

func newTopology(t testing.TB, url string) *topology {
	t.Helper()
	tp := &topology{
		url:      url,
		exchange: uniqueName(t, "x"),
		queue:    uniqueName(t, "q"),
		dlx:      uniqueName(t, "dlx"),
	}
	tp.deadQueue = tp.queue + amqpconsume.DeadQueueSuffix
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	tp.connection, tp.ch = conn, ch
	t.Cleanup(func() {
		c, err := conn.Channel()
		if err == nil {
			_, _ = c.QueueDelete(tp.queue, false, false, false)
			_, _ = c.QueueDelete(tp.deadQueue, false, false, false)
			_ = c.ExchangeDelete(tp.exchange, false, false)
			_ = c.ExchangeDelete(tp.dlx, false, false)
		}
		_ = conn.Close()
	})
	return tp
}

// config returns a validated consumer configuration of the topology.
func (tp *topology) config(t testing.TB, edit func(*amqpconsume.Config)) amqpconsume.Config {
	t.Helper()
	cfg := amqpconsume.Config{
		Name:               "test",
		URL:                tp.url,
		Exchange:           tp.exchange,
		Queue:              tp.queue,
		BindingKeys:        []string{"notifications.info", "notifications.error"},
		DeadLetterExchange: tp.dlx,
		BatchSize:          50,
		BatchLinger:        amqpconsume.Duration(20 * time.Millisecond),
		ReconnectDelay:     amqpconsume.Duration(50 * time.Millisecond),
		MaxReconnectDelay:  amqpconsume.Duration(500 * time.Millisecond),
		LagInterval:        amqpconsume.Duration(100 * time.Millisecond),
	}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	return cfg
}

// declare declares the topology the way the consumer does, so messages
// published before the consumer starts are kept.
func (tp *topology) declare(t testing.TB, cfg amqpconsume.Config) {
	t.Helper()
	if err := tp.ch.ExchangeDeclare(cfg.Exchange, cfg.ExchangeType, true, false, false, false, nil); err != nil {
		t.Fatalf("declare exchange: %v", err)
	}
	if _, err := tp.ch.QueueDeclare(cfg.Queue, true, false, false, false, nil); err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	for _, k := range cfg.BindingKeys {
		if err := tp.ch.QueueBind(cfg.Queue, k, cfg.Exchange, false, nil); err != nil {
			t.Fatalf("bind: %v", err)
		}
	}
}

// publish publishes bodies to the exchange with the routing key and waits
// for the broker's confirmations.
func (tp *topology) publish(t testing.TB, key string, bodies ...[]byte) {
	t.Helper()
	ctx := context.Background()
	var dcs []*amqp.DeferredConfirmation
	for _, b := range bodies {
		dc, err := tp.ch.PublishWithDeferredConfirmWithContext(ctx, tp.exchange, key, true, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: b,
		})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		dcs = append(dcs, dc)
	}
	for _, dc := range dcs {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("publish not confirmed: ok=%t err=%v", ok, err)
		}
	}
}

// depth returns the messages ready in a queue and the consumers on it.
func (tp *topology) depth(t testing.TB, queue string) (ready int) {
	t.Helper()
	c, err := tp.connection.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	defer c.Close()
	q, err := c.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect queue %s: %v", queue, err)
	}
	return q.Messages
}

// drain takes every message of a queue (acknowledging it).
func (tp *topology) drain(t testing.TB, queue string) []amqp.Delivery {
	t.Helper()
	c, err := tp.connection.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	defer c.Close()
	var out []amqp.Delivery
	for {
		d, ok, err := c.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

// testEnv is a PostgreSQL store with the sample definitions and a manager.
type testEnv struct {
	url     string
	store   *postgres.Store
	manager *trigger.Manager
}

// workloadStart is the first day of the test workloads: today, so that no
// stream expires while a test runs on the wall clock, whatever the order
// in which messages arrive.
var workloadStart = time.Now().UTC().Truncate(24 * time.Hour)

// fixedClock is the manager's clock in tests: the workload's start, before
// every event, so streams never expire and grouping does not depend on
// delivery order.
type fixedClock struct{}

func (fixedClock) Now() time.Time { return workloadStart }

func newEnv(t testing.TB, rawURL string) *testEnv {
	t.Helper()
	if rawURL == "" {
		rawURL = dbtest.PostgresURL(t)
	}
	store, err := postgres.Open(context.Background(), rawURL, db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return &testEnv{url: rawURL, store: store, manager: newManager(t, store)}
}

func newManager(t testing.TB, store trigger.Store) *trigger.Manager {
	t.Helper()
	return newManagerWith(t, store, distiller.Config{Clock: fixedClock{}})
}

// newManagerWith is newManager with a distiller configured by dc.
func newManagerWith(t testing.TB, store trigger.Store, dc distiller.Config) *trigger.Manager {
	t.Helper()
	d, err := distiller.Load("../etc/event_definitions.yaml", dc)
	if err != nil {
		t.Fatalf("load event definitions: %v", err)
	}
	defs, _, err := trigger.Load("../etc/triggers.yaml")
	if err != nil {
		t.Fatalf("load triggers: %v", err)
	}
	m, err := trigger.NewManager(store, defs, trigger.ManagerConfig{Clock: fixedClock{}, DistillFunc: d.Event})
	if err != nil {
		t.Fatalf("manager: %v", err)
	}
	return m
}

// options returns consumer options ingesting into env.
func (env *testEnv) options(t testing.TB, reg *prometheus.Registry) amqpconsume.Options {
	var m *amqpconsume.Metrics
	if reg != nil {
		var err error
		m, err = amqpconsume.NewMetrics(reg)
		if err != nil {
			panic(err)
		}
	}
	in := ingest.New(env.manager, ingest.Config{})
	return amqpconsume.Options{
		Ingest: func(ctx context.Context, bodies [][]byte) ([]trigger.Result, error) {
			return in.AddNotifications(ctx, ingest.SourceAMQP, bodies)
		},
		IngestEvents: func(ctx context.Context, events []stream.Event) ([]trigger.Result, error) {
			return in.AddEvents(ctx, ingest.SourceAMQP, events)
		},
		Ping: func(ctx context.Context) error {
			return env.store.InTx(ctx, func(context.Context, db.Ops) error { return nil })
		},
		Metrics:       m,
		ShutdownGrace: 10 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// running is a consumer running in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

// start runs a consumer until the test ends (or stop is called).
func start(t testing.TB, cfg amqpconsume.Config, opts amqpconsume.Options) *running {
	t.Helper()
	c, err := amqpconsume.New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the consumer and waits for Run to return; it returns Run's
// error.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("consumer did not stop within 30s")
		return nil
	}
}

// eventCount returns the number of stored events.
func (env *testEnv) eventCount(t testing.TB) int {
	t.Helper()
	var n int
	env.query(t, `SELECT count(*) FROM event`, func(r pgx.Rows) error { return r.Scan(&n) })
	return n
}

// exec runs a statement on the env's schema.
func (env *testEnv) exec(t testing.TB, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// query runs sql on the env's schema and calls scan for each row.
func (env *testEnv) query(t testing.TB, sql string, scan func(pgx.Rows) error) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatalf("scan: %v", err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
}

// streams describes every stream (trigger, key, bounds, expiry and its
// events' message ids in order), sorted: two stores hold the same streams
// when their descriptions are equal.
func (env *testEnv) streams(t testing.TB) []string {
	t.Helper()
	var out []string
	env.query(t, `
		SELECT s.name || ' ' || s.stream_key || ' ' || s.open || ' ' || s.first_event || '..' || s.last_event
		       || ' expire=' || coalesce(s.expire_timestamp::text, '-') || ' fire=' || coalesce(s.fire_timestamp::text, '-')
		       || ' events=' || string_agg(e.message_id, ',' ORDER BY e.timestamp, e.message_id)
		FROM stream s JOIN stream_event se ON se.stream_id = s.id JOIN event e ON e.id = se.event_id
		GROUP BY s.id ORDER BY 1`, func(r pgx.Rows) error {
		var s string
		out = append(out, s)
		return r.Scan(&out[len(out)-1])
	})
	return out
}

// notifications returns n workload notifications (nova compute
// notifications starting today) and their bodies.
func notifications(t testing.TB, n int) [][]byte {
	t.Helper()
	var out [][]byte
	err := workload.Generate(workload.Config{Instances: max(n, 10), Days: 2, Seed: 7, Start: workloadStart}, func(w workload.Notification) error {
		out = append(out, w.Body)
		if len(out) == n {
			return workload.ErrStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, workload.ErrStop) {
		t.Fatalf("generate workload: %v", err)
	}
	if len(out) < n {
		t.Fatalf("workload gave %d notifications, want %d", len(out), n)
	}
	return out
}

// waitFor polls cond every 20ms until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// proxy forwards TCP connections to a target until cut: then it closes
// the connections it carries and refuses new ones until restored. It makes
// a real network failure between the consumer and a server.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// cut closes every carried connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// restore accepts connections again.
func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// viaProxy returns rawURL with its host and port replaced by addr.
func viaProxy(t testing.TB, rawURL, addr string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse %q: %v", rawURL, err)
	}
	u.Host = addr
	return u.String()
}

// hostPort returns the host:port of a URL.
func hostPort(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse %q: %v", rawURL, err)
	}
	return u.Host
}
