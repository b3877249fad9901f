// Package amqp tests winchester consume end to end: a real RabbitMQ, a
// real PostgreSQL, the consumer as a process that is killed with SIGKILL
// while it works, and (with WINCHESTER_LONG_TESTS set, as .ci/run does) a
// broker restarted under it.
package amqp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/winchester-go/winchester/amqpconsume"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/internal/workload"
	"github.com/winchester-go/winchester/trigger"
)

// longEnv names the variable that selects the full-size runs (.ci/run sets
// it for its long step).
const longEnv = "WINCHESTER_LONG_TESTS"

// brokerURL is the broker of the test: TEST_AMQP_URL, or the local
// RabbitMQ. rabbitmqctl restarts the node named by RABBITMQ_NODENAME (its
// own variable), so a run may use a private node.
var brokerURL = func() string {
	if u := os.Getenv("TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}()

// size is the scale of the run: notifications, SIGKILLs, broker restarts.
type size struct {
	notifications, kills, restarts int
}

func runSize() size {
	if os.Getenv(longEnv) != "" {
		return size{notifications: 20000, kills: 10, restarts: 2}
	}
	return size{notifications: 1500, kills: 3, restarts: 0}
}

// TestConsumeSurvivesKillsAndBrokerRestarts publishes workload
// notifications with poison among them, runs winchester consume and kills
// it with SIGKILL several times while it works (and restarts the broker's
// application in the long run), then lets a last consumer finish and stop
// with SIGTERM. Every notification must be stored exactly once, with the
// streams a library ingest of the same notifications produces, and every
// poison message must be in the dead-letter queue.
func TestConsumeSurvivesKillsAndBrokerRestarts(t *testing.T) {
	began := time.Now()
	sz := runSize()
	conn, err := amqp.Dial(brokerURL)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("RabbitMQ: %v", err)
		}
		t.Skipf("RabbitMQ not reachable: %v", err)
	}
	defer conn.Close()
	dbURL := dbtest.PostgresURL(t)
	libURL := dbtest.PostgresURL(t)
	bin := buildWinchester(t)
	ctx := context.Background()

	store, err := postgres.Open(ctx, dbURL, db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	_ = store.Close()

	suffix := randomSuffix()
	names := struct{ exchange, queue, dlx, dead string }{
		"test.e2e." + suffix, "test.e2e.winchester." + suffix, "test.e2e.dlx." + suffix, "test.e2e.winchester." + suffix + ".dead",
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := amqp.Dial(brokerURL)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			return
		}
		_, _ = ch.QueueDelete(names.queue, false, false, false)
		_, _ = ch.QueueDelete(names.dead, false, false, false)
		_ = ch.ExchangeDelete(names.exchange, false, false)
		_ = ch.ExchangeDelete(names.dlx, false, false)
	})
	// The topology the consumer declares, declared first so that nothing
	// published before the consumer runs is lost.
	must(t, ch.ExchangeDeclare(names.exchange, "topic", true, false, false, false, nil))
	_, err = ch.QueueDeclare(names.queue, true, false, false, false, nil)
	must(t, err)
	must(t, ch.QueueBind(names.queue, "notifications.info", names.exchange, false, nil))

	dir := t.TempDir()
	etc, _ := filepath.Abs("../../etc")
	cfgFile := filepath.Join(dir, "winchester.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`config_path: [%q]
database:
  url: %q
distiller_config: event_definitions.yaml
trigger_definitions: triggers.yaml
shutdown_grace: 20s
consumers:
  - name: e2e
    url: %s
    exchange: %s
    queue: %s
    binding_keys: [notifications.info]
    dead_letter_exchange: %s
    batch_size: 200
    reconnect_delay: 200ms
    max_reconnect_delay: 2s
`, etc, dbURL, withEnvPassword(t, brokerURL), names.exchange, names.queue, names.dlx))

	good := notifications(t, sz.notifications)
	// The messages go out in kills+1 parts, one before each consumer run,
	// so that every consumer is killed with work left to do.
	type part struct {
		msgs [][]byte
		good int
	}
	parts := make([]part, sz.kills+1)
	var poisons []string
	per := (len(good) + len(parts) - 1) / len(parts)
	for i, b := range good {
		p := &parts[i/per]
		p.msgs = append(p.msgs, b)
		p.good++
		if i%500 == 250 {
			poison := []string{ // each unique, to be found in the dead-letter queue
				fmt.Sprintf(`not json %d`, i),
				fmt.Sprintf(`{"message_id": "poison-%d"}`, i),
				fmt.Sprintf(`{"oslo.version": "2.0", "oslo.message": "garbage %d"}`, i),
			}[len(poisons)%3]
			poisons = append(poisons, poison)
			p.msgs = append(p.msgs, []byte(poison))
		}
	}
	t.Logf("%d notifications and %d poison messages in %d parts (%s)", len(good), len(poisons), len(parts), time.Since(began).Round(time.Millisecond))

	count := func() int {
		var n int
		query(t, dbURL, `SELECT count(*) FROM event`, func(r pgx.Rows) error { return r.Scan(&n) })
		return n
	}
	restartsAt := map[int]bool{}
	for i := range sz.restarts {
		restartsAt[(i+1)*sz.kills/(sz.restarts+1)] = true
	}
	published := 0
	for k := range sz.kills {
		publish(t, names.exchange, parts[k].msgs)
		before := published
		published += parts[k].good
		p := startConsumer(t, bin, cfgFile)
		// Kill once some of this part is stored, with more to come (all of
		// the part when the broker restarts: then the rest is stored by the
		// consumer that reconnected).
		target := before + parts[k].good/3
		if restartsAt[k] {
			target = before + parts[k].good/6
		}
		waitFor(t, 3*time.Minute, fmt.Sprintf("run %d: %d events stored", k+1, target), func() bool { return count() >= target || p.exited() })
		if restartsAt[k] {
			restartBroker(t)
			target := before + parts[k].good/2
			waitFor(t, 3*time.Minute, "the consumer to resume after the broker restart", func() bool { return count() >= target || p.exited() })
		}
		if p.exited() {
			t.Fatalf("consumer exited on its own:\n%s", p.output())
		}
		p.kill(t)
		t.Logf("killed consumer %d with %d of %d published events stored (%s)", k+1, count(), published, time.Since(began).Round(time.Millisecond))
	}
	publish(t, names.exchange, parts[sz.kills].msgs)
	p := startConsumer(t, bin, cfgFile)
	waitFor(t, 5*time.Minute, "every notification stored", func() bool { return count() >= len(good) || p.exited() })
	waitFor(t, time.Minute, "the queue emptied", func() bool { return depth(t, names.queue) == 0 })
	if out, err := p.term(t); err != nil {
		t.Fatalf("consumer after SIGTERM: %v\n%s", err, out)
	}
	t.Logf("consumed everything (%s); checking the streams", time.Since(began).Round(time.Millisecond))
	if n := count(); n != len(good) {
		t.Errorf("stored %d events, want %d", n, len(good))
	}

	// Every poison message is in the dead-letter queue with its reason
	// (a kill between the dead-lettering and the acknowledgement may put
	// one there twice).
	var dead []string
	ch = channel(t)
	for {
		d, ok, err := ch.Get(names.dead, true)
		must(t, err)
		if !ok {
			break
		}
		if r, _ := d.Headers[amqpconsume.ReasonHeader].(string); r == "" {
			t.Errorf("dead-lettered %q has no %s header", d.Body, amqpconsume.ReasonHeader)
		}
		dead = append(dead, string(d.Body))
	}
	slices.Sort(dead)
	dead = slices.Compact(dead)
	slices.Sort(poisons)
	if diff := cmp.Diff(poisons, dead); diff != "" {
		t.Errorf("dead-letter queue (-want +got):\n%s", diff)
	}

	// The streams are those of a library ingest of the same notifications.
	libStore, err := postgres.Open(ctx, libURL, db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer libStore.Close()
	m := newManager(t, libStore)
	for b := range slices.Chunk(good, 500) {
		if _, err := m.AddNotifications(ctx, b); err != nil {
			t.Fatalf("library ingest: %v", err)
		}
	}
	if diff := cmp.Diff(streams(t, libURL), streams(t, dbURL)); diff != "" {
		t.Errorf("streams differ from a library ingest (-library +consumer):\n%s", diff)
	}
}

// brokerPassword is the password of brokerURL, which the configuration
// reads from the environment as ${E2E_BROKER_PASSWORD}.
var brokerPassword string

// withEnvPassword returns u with its password replaced by a reference to
// E2E_BROKER_PASSWORD.
func withEnvPassword(t *testing.T, u string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil || parsed.User == nil {
		t.Fatalf("TEST_AMQP_URL %q: want amqp://user:password@host:port/", u)
	}
	brokerPassword, _ = parsed.User.Password()
	return parsed.Scheme + "://" + parsed.User.Username() + ":${E2E_BROKER_PASSWORD}@" + parsed.Host + parsed.Path
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// winchester is the path of ./cmd/winchester, built once for the test
// binary into a directory TestMain removes.
var winchester struct {
	mu   sync.Mutex
	dir  string
	path string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "winchester-amqp-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	winchester.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildWinchester returns the path of the winchester binary, building it
// on the first call. Tests must not change the file.
func buildWinchester(t *testing.T) string {
	t.Helper()
	winchester.mu.Lock()
	defer winchester.mu.Unlock()
	if winchester.path != "" {
		return winchester.path
	}
	bin := filepath.Join(winchester.dir, "winchester")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/winchester")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/winchester: %v\n%s", err, out)
	}
	winchester.path = bin
	return bin
}

// notifications returns n workload notifications of days after today, so
// that no stream expires on the wall clock while the test runs.
func notifications(t *testing.T, n int) [][]byte {
	t.Helper()
	start := time.Now().UTC().Truncate(24 * time.Hour).Add(48 * time.Hour)
	var out [][]byte
	err := workload.Generate(workload.Config{Instances: max(n/4, 10), Days: 10, Seed: 11, Start: start}, func(w workload.Notification) error {
		out = append(out, w.Body)
		if len(out) == n {
			return workload.ErrStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, workload.ErrStop) {
		t.Fatal(err)
	}
	if len(out) != n {
		t.Fatalf("workload gave %d notifications, want %d", len(out), n)
	}
	return out
}

// channel returns a channel on a new connection (the broker may have been
// restarted since the last one), closed when the test ends.
func channel(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(brokerURL)
	must(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	must(t, err)
	return ch
}

func publish(t *testing.T, exchange string, msgs [][]byte) {
	t.Helper()
	ctx := context.Background()
	ch := channel(t)
	must(t, ch.Confirm(false))
	for chunk := range slices.Chunk(msgs, 1000) {
		var dcs []*amqp.DeferredConfirmation
		for _, b := range chunk {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, "notifications.info", true, false,
				amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: b})
			must(t, err)
			dcs = append(dcs, dc)
		}
		for _, dc := range dcs {
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				t.Fatalf("publish not confirmed: %v", err)
			}
		}
	}
}

func depth(t *testing.T, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(brokerURL)
	if err != nil {
		return -1 // the broker is restarting
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return -1
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages
}

// restartBroker stops and starts the RabbitMQ application
// (rabbitmqctl stop_app, start_app), as an operator or a crash would.
func restartBroker(t *testing.T) {
	t.Helper()
	for _, verb := range []string{"stop_app", "start_app"} {
		out, err := exec.Command("rabbitmqctl", verb).CombinedOutput()
		if err != nil {
			t.Fatalf("rabbitmqctl %s: %v\n%s", verb, err, out)
		}
	}
	waitFor(t, 2*time.Minute, "the broker back", func() bool {
		c, err := amqp.Dial(brokerURL)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	t.Log("restarted the broker")
}

// consumerProc is a running winchester consume.
type consumerProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startConsumer(t *testing.T, bin, cfg string) *consumerProc {
	t.Helper()
	p := &consumerProc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "consume", "-c", cfg, "--log-level", "info")
	p.cmd.Env = append(os.Environ(), "E2E_BROKER_PASSWORD="+brokerPassword)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *consumerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *consumerProc) output() string { return p.out.String() }

func (p *consumerProc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM and waits for the exit; it returns the output and
// the exit error.
func (p *consumerProc) term(t *testing.T) (string, error) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("consumer did not stop within a minute of SIGTERM:\n%s", p.output())
	}
	return p.output(), p.err
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func query(t *testing.T, url, sql string, scan func(pgx.Rows) error) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		must(t, scan(rows))
	}
	must(t, rows.Err())
}

// streams describes every stream (trigger, key, open, bounds, expiry, its
// events in order), sorted. Fire times are left out: they are the wall
// clock at the moment of ingest.
func streams(t *testing.T, url string) []string {
	t.Helper()
	var out []string
	query(t, url, `
		SELECT s.name || ' ' || s.stream_key || ' ' || s.open || ' ' || s.first_event || '..' || s.last_event
		       || ' expire=' || coalesce(s.expire_timestamp::text, '-') || ' fired=' || (s.fire_timestamp IS NOT NULL)
		       || ' events=' || string_agg(e.message_id, ',' ORDER BY e.timestamp, e.message_id)
		FROM stream s JOIN stream_event se ON se.stream_id = s.id JOIN event e ON e.id = se.event_id
		GROUP BY s.id ORDER BY 1`, func(r pgx.Rows) error {
		var s string
		err := r.Scan(&s)
		out = append(out, s)
		return err
	})
	if len(out) == 0 {
		t.Fatalf("no streams in %s", url)
	}
	return out
}

func newManager(t *testing.T, store trigger.Store) *trigger.Manager {
	t.Helper()
	d, err := distiller.Load("../../etc/event_definitions.yaml", distiller.Config{})
	must(t, err)
	defs, _, err := trigger.Load("../../etc/triggers.yaml")
	must(t, err)
	m, err := trigger.NewManager(store, defs, trigger.ManagerConfig{DistillFunc: d.Event})
	must(t, err)
	return m
}
