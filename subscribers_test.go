package winchester

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/pipeline/handlers"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/subscriber"
)

// collector is a Go subscriber that records the message ids it receives
// and can switch itself off from the configuration.
type collector struct {
	mu      sync.Mutex
	got     []string
	enabled func(cfg *Config) bool
}

func (c *collector) Deliver(_ context.Context, d subscriber.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, d.Event.MessageID)
	return nil
}

func (c *collector) Enabled(cfg *Config) bool { return c.enabled == nil || c.enabled(cfg) }

func (c *collector) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// eventually polls cond until it holds, failing after a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubscribersFromConfig(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		bodies []map[string]any
		keys   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		bodies = append(bodies, doc)
		keys = append(keys, r.Header.Get(handlers.HeaderIdempotencyKey))
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := loadConfig(t, map[string]string{"winchester.yaml": fmt.Sprintf(`database: {url: 'sqlite:///w.db'}
subscribers:
  audit:
    handler: audit
    filter:
      event_type: [compute.instance.*, "!compute.instance.exists"]
  hook:
    handler: webhook
    params: {url: %q}
    filter:
      - event_type: image.*
        traits: {size: {int: "> 10"}}
    attempts: 2
    backoff: 10ms
  quiet:
    handler: quiet
  off:
    handler: not_in_this_program
    enabled: false
`, srv.URL)})
	audit := &collector{}
	quiet := &collector{enabled: func(cfg *Config) bool { _, on := cfg.Subscribers["hook"]; return !on }}
	reg := NewRegistry()
	reg.RegisterSubscriber("audit", audit)
	reg.RegisterSubscriber("quiet", quiet)
	eng, err := Open(t.Context(), cfg, Options{Registry: reg})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer eng.Close()
	var names []string
	for _, d := range eng.Defs.Subscribers {
		names = append(names, fmt.Sprintf("%s:%v", d.Name, d.Disabled))
	}
	if want := []string{"audit:false", "hook:false", "off:true", "quiet:true"}; !slices.Equal(names, want) {
		t.Fatalf("subscribers %v, want %v (quiet switched off by its Enabled hook)", names, want)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- eng.RunBeside(ctx, "w1") }()
	ss := eng.Store.(subscriber.Store)
	for _, name := range []string{"audit", "hook"} {
		eventually(t, name+" created", func() bool { _, err := ss.SubscriberState(t.Context(), name); return err == nil })
	}
	ts := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ev := func(id, typ string, size int64) stream.Event {
		return stream.Event{MessageID: id, Type: typ, Timestamp: ts, Traits: map[string]stream.Value{"size": stream.Int(size)}}
	}
	if _, err := eng.Manager.AddEvents(t.Context(), []stream.Event{
		ev("m1", "compute.instance.create.end", 1), ev("m2", "compute.instance.exists", 1),
		ev("m3", "image.upload", 5), ev("m4", "image.upload", 50), ev("m5", "compute.instance.delete.end", 1),
	}); err != nil {
		t.Fatalf("AddEvents: %v", err)
	}
	eventually(t, "audit receives its events", func() bool { return len(audit.received()) == 2 })
	eventually(t, "the webhook receives its event", func() bool { mu.Lock(); defer mu.Unlock(); return len(bodies) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunBeside: %v", err)
	}
	if got := audit.received(); !slices.Equal(got, []string{"m1", "m5"}) {
		t.Errorf("audit received %v, want m1 and m5 (compute.instance.* but not exists)", got)
	}
	if got := quiet.received(); len(got) != 0 {
		t.Errorf("the subscriber its hook switched off received %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	evs, _ := bodies[0]["events"].([]any)
	if len(evs) != 1 || evs[0].(map[string]any)["message_id"] != "m4" || bodies[0]["action"] != SubscriberAction || bodies[0]["trigger"] != "hook" {
		t.Errorf("webhook body %v, want the one event m4, action deliver, trigger hook", bodies[0])
	}
	if keys[0] != subscriber.IdempotencyKey("hook", "m4") {
		t.Errorf("webhook idempotency key %q, want %q", keys[0], subscriber.IdempotencyKey("hook", "m4"))
	}
}

func TestSubscribersConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "winchester.yaml", `subscribers:
  d:
    handler: x
    handlr: y
`)
	_, err := Load(p)
	assertErrorContains(t, err, []string{`winchester.yaml:4: subscribers.d.handlr: unknown key (did you mean handler?)`})
	writeFile(t, dir, "winchester.yaml", `subscribers:
  a:
    filter: {event_type: x}
  b:
    handler: x
    attempts: -1
    backoff: -1s
    timeout: -2s
    batch_size: -1
    concurrency: 4
  c:
    handler: x
    concurrency: -1
    filter:
      event_type: x
      number: 3
`)
	_, err = Load(p)
	assertErrorContains(t, err, []string{
		`winchester.yaml:2: subscribers.a.handler: required`,
		`winchester.yaml:6: subscribers.b.attempts: must not be negative`,
		`winchester.yaml:7: subscribers.b.backoff: must not be negative`,
		`winchester.yaml:8: subscribers.b.timeout: must not be negative`,
		`winchester.yaml:9: subscribers.b.batch_size: must not be negative`,
		`winchester.yaml:10: subscribers.b.concurrency: 4 events at once need parallel: true`,
		`winchester.yaml:13: subscribers.c.concurrency: must not be negative`,
		`winchester.yaml:16: subscribers.c.filter.number: only event_type, timestamp and traits test an event here`,
	})
}

func TestSubscriberHandlerErrors(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, map[string]string{"winchester.yaml": `database: {url: 'sqlite://'}
subscribers:
  audit:
    handler: audit
  hook:
    handler: webhook
    params: {url: "ftp://x"}
  mine:
    handler: mine
    params: {x: 1}
`})
	reg := NewRegistry()
	reg.RegisterSubscriber("mine", SubscriberFunc(func(context.Context, subscriber.Delivery) error { return nil }))
	_, err := Open(t.Context(), cfg, Options{Registry: reg})
	assertErrorContains(t, err, []string{
		`winchester.yaml:4: subscribers.audit.handler: "audit" is neither a Go subscriber (Registry.RegisterSubscriber) nor a handler type (known: mine, `,
		`subscribers.hook: `, `winchester.yaml:7: handler "webhook": param "url": "ftp://x" is not an http(s) URL`,
		`winchester.yaml:10: subscribers.mine.params: the Go subscriber "mine" takes no params`,
	})
}

func TestRegisterSubscriberMisuse(t *testing.T) {
	t.Parallel()
	ok := SubscriberFunc(func(context.Context, subscriber.Delivery) error { return nil })
	for name, fn := range map[string]func(r *Registry){
		"empty name": func(r *Registry) { r.RegisterSubscriber("", ok) },
		"nil":        func(r *Registry) { r.RegisterSubscriber("x", nil) },
		"twice":      func(r *Registry) { r.RegisterSubscriber("x", ok); r.RegisterSubscriber("x", ok) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterSubscriber with %s did not panic", name)
				}
			}()
			fn(NewRegistry())
		})
	}
	r := NewRegistry()
	r.RegisterSubscriber("b", ok)
	r.RegisterSubscriber("a", ok)
	if got := r.Subscribers(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Subscribers() = %v", got)
	}
}

// A failing pipeline handler is rolled back and its error is the
// delivery's.
func TestHandlerDeliveryRollsBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "rolled-back")
	cfg := loadConfig(t, map[string]string{"winchester.yaml": fmt.Sprintf(`database: {url: 'sqlite://'}
subscribers:
  failing:
    handler: exec
    params:
      command: [sh, -c, 'if [ "$WINCHESTER_PHASE" = rollback ]; then touch %s; else exit 3; fi']
`, marker)})
	defs, err := LoadDefinitions(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer defs.Close()
	err = defs.Subscribers[0].Deliver(t.Context(), subscriber.Delivery{Subscriber: "failing",
		Event: stream.Event{MessageID: "m1", Type: "x", Timestamp: time.Now().UTC(), Traits: map[string]stream.Value{}}})
	if err == nil {
		t.Fatal("delivery through a failing exec handler succeeded")
	}
	if _, serr := os.Stat(marker); serr != nil {
		t.Errorf("the failed handler was not rolled back (delivery error %v): %v", err, serr)
	}
}
