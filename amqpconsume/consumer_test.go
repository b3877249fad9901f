package amqpconsume_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/winchester-go/winchester/amqpconsume"
	"github.com/winchester-go/winchester/distiller"
)

// osloWrap wraps a notification in the oslo.messaging v2 envelope.
func osloWrap(t testing.TB, body []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": string(body)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConsumeStoresEveryNotificationOnce publishes workload notifications
// (every third one in the oslo envelope, a few twice) and checks that the
// consumer stores each once, with the streams a library ingest of the same
// notifications produces, and acknowledges everything.
func TestConsumeStoresEveryNotificationOnce(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	env := newEnv(t, "")
	tp := newTopology(t, url)
	reg := prometheus.NewRegistry()
	cfg := tp.config(t, nil)
	tp.declare(t, cfg)

	bodies := notifications(t, 600)
	var msgs [][]byte
	for i, b := range bodies {
		if i%3 == 0 {
			b = osloWrap(t, b)
		}
		msgs = append(msgs, b)
		if i%50 == 0 { // a publisher retrying: the same notification twice
			msgs = append(msgs, b)
		}
	}
	tp.publish(t, "notifications.info", msgs...)
	r := start(t, cfg, env.options(t, reg))
	waitFor(t, 60*time.Second, "every notification stored", func() bool { return env.eventCount(t) >= len(bodies) })
	waitFor(t, 30*time.Second, "the queue emptied and acknowledged", func() bool {
		return metric(t, reg, "winchester_amqp_acks_total") == float64(len(msgs))
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := env.eventCount(t); n != len(bodies) {
		t.Errorf("stored %d events, want %d", n, len(bodies))
	}
	if n := tp.depth(t, tp.queue); n != 0 {
		t.Errorf("queue holds %d messages after the run, want 0", n)
	}
	if n := tp.depth(t, tp.deadQueue); n != 0 {
		t.Errorf("dead-letter queue holds %d messages, want 0", n)
	}

	lib := newEnv(t, "")
	for b := range slices.Chunk(bodies, 100) {
		if _, err := lib.manager.AddNotifications(context.Background(), b); err != nil {
			t.Fatalf("library ingest: %v", err)
		}
	}
	if diff := cmp.Diff(lib.streams(t), env.streams(t)); diff != "" {
		t.Errorf("streams differ from a library ingest (-library +consumer):\n%s", diff)
	}
	dups := metric(t, reg, "winchester_amqp_ingested_total", "outcome", "duplicate")
	if want := float64(len(msgs) - len(bodies)); dups != want {
		t.Errorf("ingested_total{outcome=duplicate} = %v, want %v", dups, want)
	}
}

// TestPoisonMessagesAreDeadLettered mixes good notifications with every
// kind of poison and checks that the poison lands in the dead-letter queue
// with its reason, untouched, and the good ones are stored.
func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	env := newEnv(t, "")
	tp := newTopology(t, url)
	reg := prometheus.NewRegistry()
	cfg := tp.config(t, nil)
	tp.declare(t, cfg)

	good := notifications(t, 40)
	poisons := []struct {
		name   string
		body   []byte
		code   string
		reason string // part of the reason header
	}{
		{"not JSON", []byte("this is not json {"), amqpconsume.ReasonEnvelope, "not JSON"},
		{"JSON list", []byte(`[1, 2]`), amqpconsume.ReasonEnvelope, "not a JSON object"},
		{"no event_type", []byte(`{"message_id": "p-1", "timestamp": "2024-01-01 00:00:00", "payload": {}}`), amqpconsume.ReasonRejected, "event_type is missing"},
		{"bad timestamp", []byte(`{"message_id": "p-2", "event_type": "compute.instance.create.start", "timestamp": "yesterday-ish", "payload": {"instance_id": "i"}}`), amqpconsume.ReasonRejected, "timestamp"},
		{"oslo envelope holding garbage", []byte(`{"oslo.version": "2.0", "oslo.message": "{not json"}`), amqpconsume.ReasonEnvelope, "does not hold JSON"},
		{"oslo envelope without message", []byte(`{"oslo.version": "2.0"}`), amqpconsume.ReasonEnvelope, "oslo.message is missing"},
	}
	var msgs [][]byte
	for i, g := range good {
		msgs = append(msgs, g)
		if i < len(poisons) {
			msgs = append(msgs, poisons[i].body)
		}
	}
	tp.publish(t, "notifications.error", msgs...)
	start(t, cfg, env.options(t, reg))
	waitFor(t, 60*time.Second, "every message acknowledged", func() bool {
		return metric(t, reg, "winchester_amqp_acks_total") == float64(len(msgs))
	})
	if n := env.eventCount(t); n != len(good) {
		t.Errorf("stored %d events, want the %d good ones", n, len(good))
	}
	dead := tp.drain(t, tp.deadQueue)
	if len(dead) != len(poisons) {
		t.Fatalf("dead-letter queue holds %d messages, want %d", len(dead), len(poisons))
	}
	for _, p := range poisons {
		i := slices.IndexFunc(dead, func(d amqp.Delivery) bool { return string(d.Body) == string(p.body) })
		if i < 0 {
			t.Errorf("%s: not in the dead-letter queue", p.name)
			continue
		}
		h := dead[i].Headers
		if got, _ := h[amqpconsume.ReasonCodeHeader].(string); got != p.code {
			t.Errorf("%s: %s = %q, want %q", p.name, amqpconsume.ReasonCodeHeader, got, p.code)
		}
		if got, _ := h[amqpconsume.ReasonHeader].(string); !strings.Contains(got, p.reason) {
			t.Errorf("%s: %s = %q, want it to mention %q", p.name, amqpconsume.ReasonHeader, got, p.reason)
		}
		if got, _ := h[amqpconsume.RoutingKeyHeader].(string); got != "notifications.error" {
			t.Errorf("%s: %s = %q, want notifications.error", p.name, amqpconsume.RoutingKeyHeader, got)
		}
	}
	for _, code := range []string{amqpconsume.ReasonEnvelope, amqpconsume.ReasonRejected} {
		want := 0
		for _, p := range poisons {
			if p.code == code {
				want++
			}
		}
		if got := metric(t, reg, "winchester_amqp_dead_lettered_total", "reason", code); got != float64(want) {
			t.Errorf("dead_lettered_total{reason=%s} = %v, want %d", code, got, want)
		}
	}
}

// TestPoisonDroppedWithoutDeadLetterExchange: without a dead-letter
// exchange a poison message is counted and acknowledged, not requeued.
func TestPoisonDroppedWithoutDeadLetterExchange(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	env := newEnv(t, "")
	tp := newTopology(t, url)
	reg := prometheus.NewRegistry()
	cfg := tp.config(t, func(c *amqpconsume.Config) { c.DeadLetterExchange = "" })
	tp.declare(t, cfg)
	good := notifications(t, 5)
	tp.publish(t, "notifications.info", good[0], []byte("garbage"), good[1], []byte(`{"event_type": "x"}`), good[2])
	start(t, cfg, env.options(t, reg))
	waitFor(t, 30*time.Second, "every message acknowledged", func() bool {
		return metric(t, reg, "winchester_amqp_acks_total") == 5
	})
	if n := env.eventCount(t); n != 3 {
		t.Errorf("stored %d events, want 3", n)
	}
	if got := metric(t, reg, "winchester_amqp_dropped_total", "reason", amqpconsume.ReasonEnvelope); got != 1 {
		t.Errorf("dropped_total{reason=envelope} = %v, want 1", got)
	}
	if got := metric(t, reg, "winchester_amqp_dropped_total", "reason", amqpconsume.ReasonRejected); got != 1 {
		t.Errorf("dropped_total{reason=rejected} = %v, want 1", got)
	}
	if n := tp.depth(t, tp.queue); n != 0 {
		t.Errorf("queue holds %d messages, want 0 (nothing requeued)", n)
	}
}

// TestDatabaseOutageHoldsDeliveries cuts the consumer's connection to
// PostgreSQL: nothing is acknowledged or dead-lettered while it is down,
// and everything is stored once it is back.
func TestDatabaseOutageHoldsDeliveries(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	direct := newEnv(t, "")
	px := newProxy(t, hostPort(t, direct.url))
	env := newEnv(t, viaProxy(t, direct.url, px.addr()))
	tp := newTopology(t, url)
	reg := prometheus.NewRegistry()
	cfg := tp.config(t, func(c *amqpconsume.Config) { c.BatchSize = 20; c.Prefetch = 40 })
	tp.declare(t, cfg)
	bodies := notifications(t, 100)

	px.cut()
	start(t, cfg, env.options(t, reg))
	tp.publish(t, "notifications.info", bodies...)
	waitFor(t, 30*time.Second, "failed ingest attempts", func() bool {
		return metric(t, reg, "winchester_amqp_ingest_failures_total") >= 3
	})
	if got := metric(t, reg, "winchester_amqp_acks_total"); got != 0 {
		t.Errorf("acks_total = %v during the outage, want 0", got)
	}
	if got := metric(t, reg, "winchester_amqp_deliveries_total"); got > float64(cfg.Prefetch) {
		t.Errorf("deliveries_total = %v during the outage, want at most prefetch %d", got, cfg.Prefetch)
	}
	if n := tp.depth(t, tp.deadQueue); n != 0 {
		t.Errorf("dead-letter queue holds %d messages during the outage, want 0", n)
	}
	px.restore()
	waitFor(t, 60*time.Second, "every message acknowledged after the outage", func() bool {
		return metric(t, reg, "winchester_amqp_acks_total") == float64(len(bodies))
	})
	if n := direct.eventCount(t); n != len(bodies) {
		t.Errorf("stored %d events, want %d", n, len(bodies))
	}
	if n := tp.depth(t, tp.deadQueue); n != 0 {
		t.Errorf("dead-letter queue holds %d messages, want 0", n)
	}
}

// TestBrokerLossReconnects cuts the consumer's connection to the broker
// twice while messages flow; it reconnects, declares again and stores
// everything once.
func TestBrokerLossReconnects(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	env := newEnv(t, "")
	px := newProxy(t, hostPort(t, url))
	tp := newTopology(t, url)
	reg := prometheus.NewRegistry()
	cfg := tp.config(t, func(c *amqpconsume.Config) { c.URL = viaProxy(t, url, px.addr()) })
	bodies := notifications(t, 300)
	tp.declare(t, cfg)

	start(t, cfg, env.options(t, reg))
	for round, part := range [][][]byte{bodies[:100], bodies[100:200], bodies[200:]} {
		tp.publish(t, "notifications.info", part...)
		if round == 2 {
			break
		}
		waitFor(t, 30*time.Second, "some messages stored", func() bool { return env.eventCount(t) > 100*round })
		px.cut()
		waitFor(t, 30*time.Second, "the consumer to notice the loss", func() bool {
			return metric(t, reg, "winchester_amqp_reconnects_total") >= float64(round+1)
		})
		px.restore()
	}
	waitFor(t, 60*time.Second, "every notification stored", func() bool { return env.eventCount(t) == len(bodies) })
	waitFor(t, 30*time.Second, "the queue emptied", func() bool { return tp.depth(t, tp.queue) == 0 })
	if got := metric(t, reg, "winchester_amqp_reconnects_total"); got < 2 {
		t.Errorf("reconnects_total = %v, want at least 2", got)
	}
}

// TestShutdownFinishesTheBatchInFlight stops the consumer while a batch
// waits for its linger: Run stores and acknowledges it before returning.
func TestShutdownFinishesTheBatchInFlight(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	env := newEnv(t, "")
	tp := newTopology(t, url)
	reg := prometheus.NewRegistry()
	cfg := tp.config(t, func(c *amqpconsume.Config) {
		c.BatchSize = 1000
		c.BatchLinger = amqpconsume.Duration(time.Hour)
	})
	tp.declare(t, cfg)
	bodies := notifications(t, 30)
	tp.publish(t, "notifications.info", bodies...)
	r := start(t, cfg, env.options(t, reg))
	waitFor(t, 30*time.Second, "the deliveries", func() bool {
		return metric(t, reg, "winchester_amqp_deliveries_total") == float64(len(bodies))
	})
	if n := env.eventCount(t); n != 0 {
		t.Fatalf("stored %d events before the linger ended, want 0", n)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := env.eventCount(t); n != len(bodies) {
		t.Errorf("stored %d events at shutdown, want %d", n, len(bodies))
	}
	if got := metric(t, reg, "winchester_amqp_acks_total"); got != float64(len(bodies)) {
		t.Errorf("acks_total = %v, want %d", got, len(bodies))
	}
	if n := tp.depth(t, tp.queue); n != 0 {
		t.Errorf("queue holds %d messages after shutdown, want 0", n)
	}
}

// TestMessageRefusedByTheDatabase: a notification the database refuses
// while it accepts the others (here a CHECK constraint of the test's
// schema refuses one message_id) is isolated from its batch and
// dead-lettered; the rest of the batch is stored.
func TestMessageRefusedByTheDatabase(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	env := newEnv(t, "")
	tp := newTopology(t, url)
	reg := prometheus.NewRegistry()
	cfg := tp.config(t, nil)
	tp.declare(t, cfg)
	bodies := notifications(t, 20)
	var n map[string]any
	if err := json.Unmarshal(bodies[7], &n); err != nil {
		t.Fatal(err)
	}
	n["message_id"] = "refuse-me"
	bad, _ := json.Marshal(n)
	env.exec(t, `ALTER TABLE event ADD CONSTRAINT test_refuse CHECK (message_id <> 'refuse-me')`)
	bodies[7] = bad
	tp.publish(t, "notifications.info", bodies...)
	opts := env.options(t, reg)
	opts.Retries = 2
	start(t, cfg, opts)
	waitFor(t, 60*time.Second, "every message acknowledged", func() bool {
		return metric(t, reg, "winchester_amqp_acks_total") == float64(len(bodies))
	})
	if n := env.eventCount(t); n != len(bodies)-1 {
		t.Errorf("stored %d events, want %d", n, len(bodies)-1)
	}
	dead := tp.drain(t, tp.deadQueue)
	if len(dead) != 1 || string(dead[0].Body) != string(bad) {
		t.Fatalf("dead-letter queue holds %d messages, want the refused one", len(dead))
	}
	if got, _ := dead[0].Headers[amqpconsume.ReasonCodeHeader].(string); got != amqpconsume.ReasonRefused {
		t.Errorf("%s = %q, want %q", amqpconsume.ReasonCodeHeader, got, amqpconsume.ReasonRefused)
	}
}

// TestConflictingDeclarationFails: a queue that exists with other
// arguments is a configuration error Run reports instead of retrying.
func TestConflictingDeclarationFails(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	env := newEnv(t, "")
	tp := newTopology(t, url)
	cfg := tp.config(t, func(c *amqpconsume.Config) { c.QueueType = amqpconsume.QueueQuorum })
	if _, err := tp.ch.QueueDeclare(cfg.Queue, true, false, false, false, nil); err != nil {
		t.Fatalf("declare classic queue: %v", err)
	}
	c, err := amqpconsume.New(cfg, env.options(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "PRECONDITION_FAILED") {
		t.Fatalf("Run = %v, want a PRECONDITION_FAILED error", err)
	}
}

// metric returns the sum of the series of a metric of consumer "test"
// that have the given label values.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	want := map[string]string{"consumer": "test"}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if w, ok := want[lp.GetName()]; ok && w != lp.GetValue() {
					continue series
				}
			}
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

// TestConsumeEvents: a consumer with format events stores flat events as
// they are and dead-letters those that are not valid events.
func TestConsumeEvents(t *testing.T) {
	t.Parallel()
	url := brokerURL(t)
	env := newEnv(t, "")
	tp := newTopology(t, url)
	reg := prometheus.NewRegistry()
	cfg := tp.config(t, func(c *amqpconsume.Config) { c.Format = amqpconsume.FormatEvents })
	tp.declare(t, cfg)
	var msgs [][]byte
	for i := range 10 {
		msgs = append(msgs, []byte(fmt.Sprintf(`{"message_id": "ev-%d", "event_type": "compute.instance.update", "timestamp": {"$datetime": "%s"}, "instance_id": "i-%d", "tenant_id": "t"}`,
			i, workloadStart.Add(time.Duration(i)*time.Minute).Format(time.RFC3339Nano), i%3)))
	}
	invalid := []byte(`{"message_id": "ev-bad", "timestamp": {"$datetime": "2024-01-01T00:00:00Z"}}`)
	msgs = append(msgs, invalid)
	tp.publish(t, "notifications.info", msgs...)
	start(t, cfg, env.options(t, reg))
	waitFor(t, 30*time.Second, "every message acknowledged", func() bool {
		return metric(t, reg, "winchester_amqp_acks_total") == float64(len(msgs))
	})
	if n := env.eventCount(t); n != 10 {
		t.Errorf("stored %d events, want 10", n)
	}
	dead := tp.drain(t, tp.deadQueue)
	if len(dead) != 1 || string(dead[0].Body) != string(invalid) {
		t.Fatalf("dead-letter queue holds %d messages, want the invalid event", len(dead))
	}
	if got, _ := dead[0].Headers[amqpconsume.ReasonHeader].(string); !strings.Contains(got, "event_type") {
		t.Errorf("%s = %q, want it to name event_type", amqpconsume.ReasonHeader, got)
	}
}

// TestNotificationWithoutDefinitionIsIgnored: a notification no event
// definition matches is dropped as the distiller drops it (spec 16.5):
// acknowledged and counted as ignored, not dead-lettered. With
// catch_all_notifications it is stored as a minimal event.
func TestNotificationWithoutDefinitionIsIgnored(t *testing.T) {
	t.Parallel()
	unmatched := func(i int) []byte {
		return fmt.Appendf(nil, `{"message_id": "image-%d", "event_type": "image.upload", "publisher_id": "image.host", "timestamp": "2024-01-01 00:00:00", "payload": {"id": "img"}}`, i)
	}
	for _, catchAll := range []bool{false, true} {
		t.Run(fmt.Sprintf("catch_all=%v", catchAll), func(t *testing.T) {
			t.Parallel()
			url := brokerURL(t)
			env := newEnv(t, "")
			if catchAll {
				env.manager = newManagerWith(t, env.store, distiller.Config{Clock: fixedClock{}, CatchAll: true})
			}
			tp := newTopology(t, url)
			reg := prometheus.NewRegistry()
			cfg := tp.config(t, nil)
			tp.declare(t, cfg)
			good := notifications(t, 4)
			tp.publish(t, "notifications.info", good[0], unmatched(1), good[1], good[2], osloWrap(t, unmatched(2)), good[3])
			start(t, cfg, env.options(t, reg))
			waitFor(t, 30*time.Second, "every message acknowledged", func() bool {
				return metric(t, reg, "winchester_amqp_acks_total") == 6
			})
			wantStored, wantIgnored := 4, 2.0
			if catchAll {
				wantStored, wantIgnored = 6, 0
			}
			if n := env.eventCount(t); n != wantStored {
				t.Errorf("stored %d events, want %d", n, wantStored)
			}
			if got := metric(t, reg, "winchester_amqp_ingested_total", "outcome", amqpconsume.OutcomeIgnored); got != wantIgnored {
				t.Errorf("ingested_total{outcome=ignored} = %v, want %v", got, wantIgnored)
			}
			if got := metric(t, reg, "winchester_amqp_ingested_total", "outcome", "stored"); got != float64(wantStored) {
				t.Errorf("ingested_total{outcome=stored} = %v, want %d", got, wantStored)
			}
			if got := metric(t, reg, "winchester_amqp_dead_lettered_total", "reason", amqpconsume.ReasonRejected); got != 0 {
				t.Errorf("dead_lettered_total{reason=rejected} = %v, want 0", got)
			}
			if n := tp.depth(t, tp.deadQueue); n != 0 {
				t.Errorf("dead-letter queue holds %d messages, want 0", n)
			}
			if n := tp.depth(t, tp.queue); n != 0 {
				t.Errorf("queue holds %d messages, want 0", n)
			}
		})
	}
}
