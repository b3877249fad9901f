package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

const rabbitURL = "amqp://guest:guest@127.0.0.1:5672/"

// rabbit connects to the local broker for a test (skipping when there is
// none, failing when CI is set) and returns a unique exchange and queue
// name, deleted when the test ends.
func rabbit(t *testing.T) (ch *amqp.Channel, exchange, queue string) {
	t.Helper()
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("RabbitMQ at %s: %v", rabbitURL, err)
		}
		t.Skipf("no RabbitMQ at %s: %v", rabbitURL, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err = conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()[:8]
	exchange, queue = "winchester-test-x-"+id, "winchester-test-q-"+id
	t.Cleanup(func() {
		// Fresh channels: a failed delete closes its channel.
		if c, err := conn.Channel(); err == nil {
			if _, err := c.QueueDelete(queue, false, false, false); err != nil {
				t.Logf("delete queue %s: %v", queue, err)
			}
		}
		if c, err := conn.Channel(); err == nil {
			if err := c.ExchangeDelete(exchange, false, false); err != nil {
				t.Logf("delete exchange %s: %v", exchange, err)
			}
		}
	})
	return ch, exchange, queue
}

// consume starts a consumer on the queue; next reads from it.
func consume(t *testing.T, ch *amqp.Channel, queue, tag string) <-chan amqp.Delivery {
	t.Helper()
	d, err := ch.Consume(queue, tag, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", queue, err)
	}
	return d
}

// next returns the next delivery, failing after a timeout.
func next(t *testing.T, deliveries <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if !ok {
			t.Fatal("consumer closed")
		}
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return amqp.Delivery{}
}

func notabeneRun(t *testing.T, f *NotabeneFactory, params map[string]any, env *pipeline.Env) error {
	t.Helper()
	h := build(t, f.New, "notabene", params)
	in := []stream.Event{{MessageID: "m", Type: "t", Timestamp: time.Now()}}
	out, err := h.HandleEvents(t.Context(), in, env)
	if err != nil {
		return err
	}
	if len(out) != 1 {
		t.Errorf("HandleEvents returned %d events, want the input", len(out))
	}
	return h.Commit(t.Context())
}

func TestNotabenePublish(t *testing.T) {
	t.Parallel()
	ch, exchange, queue := rabbit(t)
	f := NewNotabeneFactory(NotabeneFactoryConfig{})
	t.Cleanup(func() { _ = f.Close() })
	params := map[string]any{"exchange": exchange, "queue_name": queue, "host": "127.0.0.1", "env_keys": []any{"first", "second", "absent"}}

	env := pipeline.NewEnv(9, "trig", testLogger(t))
	env.Set("first", []map[string]any{{"event_type": "a.b", "payload": map[string]any{"n": 1}}})
	env.Set("second", []any{map[string]any{"event_type": "c.d"}})
	if err := notabeneRun(t, f, params, env); err != nil {
		t.Fatalf("run: %v", err)
	}
	deliveries := consume(t, ch, queue, "publish-test")
	var got []map[string]any
	for range 2 {
		d := next(t, deliveries)
		if d.ContentType != "application/json" || d.DeliveryMode != amqp.Persistent || d.RoutingKey != queue || d.Exchange != exchange {
			t.Errorf("delivery properties: type %q mode %d key %q exchange %q", d.ContentType, d.DeliveryMode, d.RoutingKey, d.Exchange)
		}
		var m map[string]any
		if err := json.Unmarshal(d.Body, &m); err != nil {
			t.Fatalf("body %s: %v", d.Body, err)
		}
		got = append(got, m)
	}
	want := []map[string]any{{"event_type": "a.b", "payload": map[string]any{"n": 1.0}}, {"event_type": "c.d"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("messages mismatch (-want +got):\n%s", d)
	}

	if err := ch.Cancel("publish-test", false); err != nil {
		t.Fatal(err)
	}

	// A rolled-back run publishes nothing.
	h := build(t, f.New, "notabene", params)
	if _, err := h.HandleEvents(t.Context(), nil, env); err != nil {
		t.Fatal(err)
	}
	if err := h.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d, ok, err := ch.Get(queue, true); err != nil || ok {
		t.Errorf("after rollback the queue holds %s (%v)", d.Body, err)
	}
}

// TestNotabeneReconnects closes the cached connection behind the factory's
// back; the next commit must reconnect and publish.
func TestNotabeneReconnects(t *testing.T) {
	t.Parallel()
	ch, exchange, queue := rabbit(t)
	f := NewNotabeneFactory(NotabeneFactoryConfig{})
	t.Cleanup(func() { _ = f.Close() })
	params := map[string]any{"exchange": exchange, "queue_name": queue, "host": "127.0.0.1", "env_keys": []any{"n"}}
	var deliveries <-chan amqp.Delivery
	for i := range 2 {
		env := pipeline.NewEnv(1, "trig", testLogger(t))
		env.Set("n", map[string]any{"event_type": fmt.Sprintf("run.%d", i)})
		if err := notabeneRun(t, f, params, env); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if deliveries == nil {
			deliveries = consume(t, ch, queue, "")
		}
		if d := next(t, deliveries); string(d.Body) != fmt.Sprintf(`{"event_type":"run.%d"}`, i) {
			t.Fatalf("run %d: got %q", i, d.Body)
		}
		f.mu.Lock()
		for _, c := range f.conns {
			_ = c.conn.Close()
		}
		f.mu.Unlock()
	}
}

func TestNotabeneFailures(t *testing.T) {
	t.Parallel()
	t.Run("unreachable broker fails the commit", func(t *testing.T) {
		t.Parallel()
		f := NewNotabeneFactory(NotabeneFactoryConfig{ConnectTimeout: time.Second})
		t.Cleanup(func() { _ = f.Close() })
		env := pipeline.NewEnv(1, "trig", testLogger(t))
		env.Set("n", []map[string]any{{"event_type": "a"}, {"event_type": "b"}})
		err := notabeneRun(t, f, map[string]any{"exchange": "x", "queue_name": "q", "host": "127.0.0.1", "port": 1, "env_keys": []any{"n"}}, env)
		if err == nil {
			t.Fatal("commit to an unreachable broker succeeded")
		}
		t.Logf("error: %v", err)
	})
	t.Run("bad env value fails the run", func(t *testing.T) {
		t.Parallel()
		f := NewNotabeneFactory(NotabeneFactoryConfig{})
		env := pipeline.NewEnv(1, "trig", nil)
		env.Set("n", "not a list")
		err := notabeneRun(t, f, map[string]any{"exchange": "x", "queue_name": "q", "env_keys": []any{"n"}}, env)
		if err == nil {
			t.Fatal("HandleEvents accepted a string as notifications")
		}
	})
	t.Run("nothing to publish needs no broker", func(t *testing.T) {
		t.Parallel()
		f := NewNotabeneFactory(NotabeneFactoryConfig{})
		if err := notabeneRun(t, f, map[string]any{"exchange": "x", "queue_name": "q", "port": 1}, pipeline.NewEnv(1, "t", nil)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("closed factory", func(t *testing.T) {
		t.Parallel()
		f := NewNotabeneFactory(NotabeneFactoryConfig{})
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		env := pipeline.NewEnv(1, "trig", nil)
		env.Set("n", map[string]any{"event_type": "a"})
		if err := notabeneRun(t, f, map[string]any{"exchange": "x", "queue_name": "q", "env_keys": []any{"n"}}, env); err == nil {
			t.Fatal("commit after Close succeeded")
		}
	})
}

func TestDecodeNotabeneParams(t *testing.T) {
	t.Parallel()
	p, err := pipeline.ParamsFromMap("notabene", map[string]any{"exchange": "x", "port": 70000})
	if err != nil {
		t.Fatal(err)
	}
	var ce *pipeline.ConfigError
	if _, err := DecodeNotabeneParams(p); !errors.As(err, &ce) || ce.Field != "port" {
		t.Errorf("DecodeNotabeneParams(port 70000) = %v, want a config error about port", err)
	}
}

func TestNotabeneExchangeTypeMismatch(t *testing.T) {
	t.Parallel()
	ch, exchange, queue := rabbit(t)
	if err := ch.ExchangeDeclare(exchange, "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	f := NewNotabeneFactory(NotabeneFactoryConfig{})
	t.Cleanup(func() { _ = f.Close() })
	env := pipeline.NewEnv(1, "trig", testLogger(t))
	env.Set("n", map[string]any{"event_type": "a"})
	err := notabeneRun(t, f, map[string]any{"exchange": exchange, "queue_name": queue, "host": "127.0.0.1", "env_keys": []any{"n"}}, env)
	if err == nil {
		t.Fatal("publishing to a direct exchange declared as topic succeeded")
	}
	t.Logf("error: %v", err)
}

// TestNotabeneConcurrentCommits shares one factory between concurrent runs.
func TestNotabeneConcurrentCommits(t *testing.T) {
	t.Parallel()
	ch, exchange, queue := rabbit(t)
	f := NewNotabeneFactory(NotabeneFactoryConfig{})
	t.Cleanup(func() { _ = f.Close() })
	params := map[string]any{"exchange": exchange, "queue_name": queue, "host": "127.0.0.1", "env_keys": []any{"n"}}
	const runs = 8
	errs := make(chan error, runs)
	for i := range runs {
		go func() {
			env := pipeline.NewEnv(int64(i), "trig", nil)
			env.Set("n", map[string]any{"event_type": fmt.Sprintf("run.%d", i)})
			errs <- notabeneRunNoT(t.Context(), f, params, env)
		}()
	}
	for range runs {
		if err := <-errs; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	deliveries := consume(t, ch, queue, "")
	seen := map[string]bool{}
	for range runs {
		seen[string(next(t, deliveries).Body)] = true
	}
	if len(seen) != runs {
		t.Errorf("got %d distinct messages, want %d", len(seen), runs)
	}
}

// notabeneRunNoT is notabeneRun for goroutines other than the test's.
func notabeneRunNoT(ctx context.Context, f *NotabeneFactory, params map[string]any, env *pipeline.Env) error {
	p, err := pipeline.ParamsFromMap("notabene", params)
	if err != nil {
		return err
	}
	b, err := f.New(p)
	if err != nil {
		return err
	}
	h, err := b()
	if err != nil {
		return err
	}
	if _, err := h.HandleEvents(ctx, nil, env); err != nil {
		return err
	}
	return h.Commit(ctx)
}
