package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/httpapi"
	"github.com/winchester-go/winchester/ingest"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/metrics/metricstest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

const testTriggers = `
- name: per_instance
  debug_level: 2
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
`

const testEventDefs = `
- event_type: compute.instance.*
  traits:
    instance_id:
      fields: payload.instance_id
`

type bundle struct {
	url   string
	store db.Store
	srv   *httpapi.Server
	met   *metrics.Metrics
	mgr   *trigger.Manager
	in    *ingest.Ingester
}

const (
	readToken  = "read-token-0123456789"
	writeToken = "write-token-0123456789"
	adminToken = "admin-token-0123456789"
)

func setup(t *testing.T, cfg httpapi.Config, opts httpapi.Options) *bundle {
	t.Helper()
	return setupLimits(t, cfg, opts, stream.Limits{})
}

// setupLimits is setup with the manager's event limits (and schema).
func setupLimits(t *testing.T, cfg httpapi.Config, opts httpapi.Options, limits stream.Limits) *bundle {
	t.Helper()
	store := enginetest.SQLite(t)
	mgr := enginetest.Manager(t, store, testTriggers, trigger.ManagerConfig{
		DistillFunc: enginetest.Distill(t, testEventDefs), Limits: limits,
	})
	met := metrics.New(metrics.Config{Version: "test"})
	met.Registry().MustRegister(metrics.NewManagerCollector(mgr), metrics.NewStoreCollector(store, nil), metrics.NewSubscriberCollector(store))
	in := ingest.New(mgr, ingest.Config{Metrics: met, Logger: dbtest.Logger(t)})
	opts.Metrics = met
	opts.Logger = dbtest.Logger(t)
	srv, err := httpapi.New(mgr, store, in, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &bundle{url: ts.URL, store: store, srv: srv, met: met, mgr: mgr, in: in}
}

type answer struct {
	code int
	body map[string]any
	raw  string
}

func do(t *testing.T, method, url, token, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{code: resp.StatusCode, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, url, err, raw)
		}
	}
	return a
}

func (b *bundle) events(t *testing.T) int64 {
	t.Helper()
	n, err := b.store.CountEvents(t.Context(), db.FindEventsParams{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// recent is a timestamp of the test's events: streams expire an hour
// after their last event.
var recent = stream.FormatTime(time.Now().UTC().Add(-time.Minute))

func event(id, typ string) string {
	return fmt.Sprintf(`{"message_id": %q, "event_type": %q, "timestamp": %q, "instance_id": "i-1"}`, id, typ, recent)
}

func notification(id, typ string) string {
	return fmt.Sprintf(`{"message_id": %q, "event_type": %q, "timestamp": %q, "payload": {"instance_id": "i-1"}}`, id, typ, recent)
}

// Every request refused as a whole gets a 4xx with a JSON error a person
// can act on, and stores nothing.
func TestRefusedRequestsStoreNothing(t *testing.T) {
	b := setup(t, httpapi.Config{MaxBodyBytes: 2000, MaxItems: 3}, httpapi.Options{})
	big := `[` + strings.Repeat(event("x", "compute.instance.update")+",", 30) + event("y", "a.b") + `]`
	cases := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"malformed JSON", "POST", "/v1/events", `{"message_id": "a", `, 400, "malformed JSON"},
		{"malformed array", "POST", "/v1/notifications", `[` + notification("a", "compute.instance.update") + `,}`, 400, "malformed JSON array"},
		{"malformed JSON line", "POST", "/v1/events", event("a", "x.y") + "\n{oops}\n", 400, "item 2"},
		{"empty body", "POST", "/v1/events", ``, 400, "empty request body"},
		{"empty array", "POST", "/v1/notifications", `[]`, 400, "empty"},
		{"unknown query parameter", "POST", "/v1/events?dry_run=1", event("a", "x.y"), 400, `unknown query parameter "dry_run"`},
		{"oversized body", "POST", "/v1/events", big, 413, "http.max_body_bytes"},
		{"too many items", "POST", "/v1/notifications", strings.Repeat(notification("a", "compute.instance.update")+"\n", 4), 413, "http.max_items"},
		{"every item rejected", "POST", "/v1/events", `[{"event_type": "x"}, 42]`, 422, ""},
		{"every notification rejected", "POST", "/v1/notifications", `"just a string"`, 422, ""},
		{"event log without type", "POST", "/event/log?user=1", ``, 400, "__event__"},
		{"event log repeated trait", "POST", "/event/log?__event__=app.X&user=1&user=2", ``, 400, "given 2 times"},
		{"event log bad timestamp", "POST", "/event/log?__event__=app.X&timestamp=yesterday", ``, 422, "timestamp"},
		{"unknown filter", "GET", "/v1/streams?color=red", ``, 400, `unknown query parameter "color"`},
		{"bad state", "GET", "/v1/streams?state=sleeping", ``, 400, "state"},
		{"bad limit", "GET", "/v1/events?limit=0", ``, 400, "limit"},
		{"bad trait type", "GET", "/v1/events?trait=n:bool=1", ``, 400, "unknown type"},
		{"bad time", "GET", "/v1/events?from=soon", ``, 400, "from"},
		{"bad stream id", "GET", "/v1/streams/abc", ``, 400, "not a positive integer"},
		{"no such stream", "GET", "/v1/streams/99", ``, 404, "no stream 99"},
		{"no such event", "GET", "/v1/events/nope", ``, 404, "nope"},
		{"reset of a missing stream", "POST", "/v1/streams/99/reset", ``, 404, "no stream"},
		{"explain of a bad stream id", "GET", "/v1/streams/0/explain", ``, 400, "not a positive integer"},
		{"explain of a missing stream", "GET", "/v1/streams/99/explain", ``, 404, "no stream 99"},
		{"explain with a parameter", "GET", "/v1/streams/1/explain?x=1", ``, 400, `unknown query parameter "x"`},
		{"explain of a missing event", "POST", "/v1/explain", `{"message_id": "nope"}`, 404, "nope"},
		{"explain of bad JSON", "POST", "/v1/explain", `{"message_id"`, 400, "bad input"},
		{"explain of a dropped notification", "POST", "/v1/explain", `{"event_type": "compute.instance.update", "payload": {}}`, 400, "distiller drops"},
		{"explain of an oversized body", "POST", "/v1/explain", big, 413, "http.max_body_bytes"},
		{"no such endpoint", "GET", "/v2/streams", ``, 404, "docs/HTTP.md"},
		{"wrong method", "DELETE", "/v1/events", ``, 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, tc.method, b.url+tc.path, "", tc.body)
			if a.code != tc.code {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, a.code, a.raw, tc.code)
			}
			if tc.code != 422 && tc.code != 405 {
				msg, _ := a.body["error"].(string)
				if !strings.Contains(msg, tc.msg) {
					t.Errorf("error %q, want it to mention %q", msg, tc.msg)
				}
			}
			if n := b.events(t); n != 0 {
				t.Errorf("%d events stored after a refused request", n)
			}
		})
	}
}

// A batch's bad items are rejected one by one and the good ones stored;
// the answer gives a result per item in order.
// postEvents posts body to /v1/events, expects 200 and returns the answer
// and each result's fields joined with ":".
func postEvents(t *testing.T, b *bundle, body string, fields ...string) (answer, []string) {
	t.Helper()
	a := do(t, "POST", b.url+"/v1/events", "", body)
	if a.code != 200 {
		t.Fatalf("POST /v1/events = %d %s", a.code, a.raw)
	}
	var got []string
	for _, r := range a.body["results"].([]any) {
		m := r.(map[string]any)
		parts := make([]string, len(fields))
		for i, f := range fields {
			parts[i] = fmt.Sprint(m[f])
		}
		got = append(got, strings.Join(parts, ":"))
	}
	return a, got
}

func TestBatchWithBadItems(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{})
	body := "[" + strings.Join([]string{
		event("e1", "compute.instance.update"),
		`{"event_type": "compute.instance.update", "timestamp": "2026-01-02T03:04:05"}`,
		event("e1", "compute.instance.update"),
		`[1, 2]`,
		event("e2", "compute.instance.exists"),
	}, ",") + "]"
	a, got := postEvents(t, b, body, "message_id", "outcome")
	want := "[e1:stored <nil>:rejected e1:duplicate <nil>:rejected e2:stored]"
	if fmt.Sprint(got) != want {
		t.Errorf("results %v, want %s", got, want)
	}
	if a.body["stored"] != 2.0 || a.body["duplicate"] != 1.0 || a.body["rejected"] != 2.0 {
		t.Errorf("counts %v", a.raw)
	}
	if n := b.events(t); n != 2 {
		t.Errorf("%d events stored, want 2", n)
	}
	streams := do(t, "GET", b.url+"/v1/streams?trigger=per_instance&count=true&events=true", "", "")
	items := streams.body["items"].([]any)
	if streams.code != 200 || len(items) != 1 || streams.body["count"] != 1.0 {
		t.Fatalf("GET /v1/streams = %d %s, want one stream", streams.code, streams.raw)
	}
	st := items[0].(map[string]any)
	if st["fire_timestamp"] == nil || len(st["events"].([]any)) != 2 {
		t.Errorf("stream %v, want ready to fire with its 2 events", st)
	}
	one := do(t, "GET", fmt.Sprintf("%s/v1/streams/%v?events=true", b.url, st["id"]), "", "")
	if one.code != 200 || one.body["trigger"] != "per_instance" || len(one.body["events"].([]any)) != 2 {
		t.Errorf("GET /v1/streams/{id} = %d %s", one.code, one.raw)
	}
	// The answer is the stream's one JSON form, stream.JSON, with "next".
	stored, err := b.store.StreamByID(t.Context(), int64(st["id"].(float64)))
	if err != nil {
		t.Fatal(err)
	}
	storedEvents, err := b.store.StreamEvents(t.Context(), stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	var wantOne map[string]any
	raw, _ := json.Marshal(stored.JSON("", storedEvents))
	if err := json.Unmarshal(raw, &wantOne); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantOne, one.body); diff != "" {
		t.Errorf("GET /v1/streams/{id} is not stream.JSON (-want +got):\n%s", diff)
	}
	if one.body["next"] != "fire" || one.body["next_at"] != one.body["fire_timestamp"] || one.body["open"] != true {
		t.Errorf("GET /v1/streams/{id}: next %v at %v, open %v; want fire at the fire time, open", one.body["next"], one.body["next_at"], one.body["open"])
	}
	ev := do(t, "GET", b.url+"/v1/events/e2", "", "")
	if ev.code != 200 || ev.body["event_type"] != "compute.instance.exists" || ev.body["instance_id"] != "i-1" {
		t.Errorf("GET /v1/events/e2 = %d %s", ev.code, ev.raw)
	}
	list := do(t, "GET", b.url+"/v1/events?type=compute.instance.update&trait=instance_id=i-1&limit=1&count=true", "", "")
	if list.code != 200 || len(list.body["items"].([]any)) != 1 || list.body["count"] != 1.0 || list.body["next_mark"] == nil {
		t.Errorf("GET /v1/events = %d %s", list.code, list.raw)
	}
	next := do(t, "GET", b.url+"/v1/events?type=compute.instance.update&mark="+list.body["next_mark"].(string), "", "")
	if next.code != 200 || len(next.body["items"].([]any)) != 0 {
		t.Errorf("second page = %d %s, want empty", next.code, next.raw)
	}
	reset := do(t, "POST", fmt.Sprintf("%s/v1/streams/%v/reset", b.url, st["id"]), "", "")
	if reset.code != 409 || !strings.Contains(reset.body["error"].(string), "only streams in error") {
		t.Errorf("reset of an active stream = %d %s, want 409", reset.code, reset.raw)
	}
	// The stream's explanation, and the events': stored (by message id),
	// given, and distilled from a notification.
	ex := do(t, "GET", fmt.Sprintf("%s/v1/streams/%v/explain", b.url, st["id"]), "", "")
	if ex.code != 200 || ex.body["stream"].(map[string]any)["id"] != st["id"] || ex.body["fire"] == nil ||
		!strings.HasPrefix(ex.body["left"].(string), "its fire criteria are met") {
		t.Errorf("GET /v1/streams/{id}/explain = %d %s", ex.code, ex.raw)
	}
	for _, c := range []struct{ name, body, stream string }{
		{"stored", `{"message_id": "e2"}`, "went into stream"},
		{"given", event("e9", "compute.instance.update"), "would go to stream"},
		{"notification", notification("n9", "compute.instance.update"), "would go to stream"},
	} {
		a := do(t, "POST", b.url+"/v1/explain", "", c.body)
		if a.code != 200 || a.body["matched"] != 1.0 {
			t.Errorf("POST /v1/explain (%s) = %d %s", c.name, a.code, a.raw)
			continue
		}
		tm := a.body["triggers"].([]any)[0].(map[string]any)
		if text := tm["stream"].(map[string]any)["text"].(string); !strings.HasPrefix(text, c.stream) {
			t.Errorf("POST /v1/explain (%s): stream %q, want %q", c.name, text, c.stream)
		}
	}
	if n := b.events(t); n != 2 {
		t.Errorf("%d events stored after explaining, want still 2", n)
	}
	trig := do(t, "GET", b.url+"/v1/triggers", "", "")
	tr := trig.body["triggers"].([]any)[0].(map[string]any)
	if trig.code != 200 || tr["name"] != "per_instance" || tr["counters"].(map[string]any)["ready_to_fire"] != 1.0 {
		t.Errorf("GET /v1/triggers = %d %s", trig.code, trig.raw)
	}
}

// TestBatchAgainstSchema: items that do not match the event schema are
// rejected with a reason naming the trait, counted under reason
// "schema", and the rest of the batch is stored.
func TestBatchAgainstSchema(t *testing.T) {
	schema, err := stream.ParseSchema("schema.yaml", []byte("strict: true\nevents:\n  compute.instance.*:\n    traits:\n      instance_id: {type: string, values: [i-1]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := setupLimits(t, httpapi.Config{}, httpapi.Options{}, stream.Limits{Schema: schema})
	body := "[" + strings.Join([]string{
		event("e1", "compute.instance.update"),
		strings.Replace(event("bad-value", "compute.instance.update"), `"i-1"`, `"i-2"`, 1),
		event("undeclared", "volume.create"),
		event("e2", "compute.instance.exists"),
	}, ",") + "]"
	_, got := postEvents(t, b, body, "message_id", "outcome", "reason")
	want := []string{
		"e1:stored:<nil>",
		`bad-value:rejected:invalid event: event does not match its declaration: event field "instance_id": value i-2 is not one of the allowed values (i-1)`,
		`undeclared:rejected:invalid event: event does not match its declaration: event field "event_type": There is no event named volume.create`,
		"e2:stored:<nil>",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if n := b.events(t); n != 2 {
		t.Errorf("%d events stored, want 2", n)
	}
	m := do(t, "GET", b.url+"/metrics", "", "")
	if w := `winchester_events_rejected_total{reason="schema",source="http"} 2`; !strings.Contains(m.raw, w) {
		t.Errorf("/metrics lacks %q", w)
	}
}

func TestNotificationsEnvelopesAndJSONLines(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{})
	inner, _ := json.Marshal(notification("n2", "compute.instance.exists"))
	body := notification("n1", "compute.instance.update") + "\n" +
		`{"oslo.version": "2.0", "oslo.message": ` + string(inner) + `}` + "\n" +
		`{"oslo.version": "2.0", "oslo.message": "[1]"}` + "\n"
	a := do(t, "POST", b.url+"/v1/notifications", "", body)
	if a.code != 200 || a.body["stored"] != 2.0 || a.body["rejected"] != 1.0 {
		t.Fatalf("POST /v1/notifications = %d %s, want 2 stored, 1 rejected", a.code, a.raw)
	}
	if _, err := b.store.EventByMessageID(t.Context(), "n2"); err != nil {
		t.Errorf("the enveloped notification was not stored: %v", err)
	}
}

func TestEventLog(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{})
	a := do(t, "POST", b.url+"/event/log?__event__=app.UserSignedUp&user=42&plan=pro", "", "")
	if a.code != 200 || a.body["stored"] != 1.0 {
		t.Fatalf("POST /event/log = %d %s", a.code, a.raw)
	}
	id := a.body["results"].([]any)[0].(map[string]any)["message_id"].(string)
	ev, err := b.store.EventByMessageID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Event.Type != "app.UserSignedUp" || ev.Event.Traits["user"] != stream.String("42") || ev.Event.Traits["plan"] != stream.String("pro") {
		t.Errorf("stored %+v", ev.Event)
	}
	if time.Since(ev.Event.Timestamp) > time.Minute {
		t.Errorf("generated timestamp %v, want now", ev.Event.Timestamp)
	}
	again := do(t, "POST", b.url+"/event/log?__event__=app.X&message_id=fixed&timestamp=2026-01-02T03:04:05", "", "")
	if again.code != 200 {
		t.Fatalf("POST /event/log with message_id = %d %s", again.code, again.raw)
	}
	if _, err := b.store.EventByMessageID(t.Context(), "fixed"); err != nil {
		t.Errorf("given message_id not used: %v", err)
	}
}

func TestBearerTokens(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{Tokens: []httpapi.Token{
		{Token: readToken, Scopes: []string{"read"}},
		{Token: writeToken, Scopes: []string{"write"}},
		{Token: adminToken, Scopes: []string{"admin"}},
	}})
	cases := []struct {
		name, method, path, token string
		code                      int
	}{
		{"no token", "POST", "/v1/events", "", 401},
		{"unknown token", "POST", "/v1/events", "guess-guess-guess-guess", 401},
		{"read token writes", "POST", "/v1/events", readToken, 403},
		{"write token reads", "GET", "/v1/streams", writeToken, 403},
		{"write token resets", "POST", "/v1/streams/1/reset", writeToken, 403},
		{"write token writes", "POST", "/v1/events", writeToken, 200},
		{"read token reads", "GET", "/v1/triggers", readToken, 200},
		{"admin token reads", "GET", "/v1/streams", adminToken, 200},
		{"admin token resets", "POST", "/v1/streams/1/reset", adminToken, 404},
		{"no token explains", "POST", "/v1/explain", "", 401},
		{"write token explains", "GET", "/v1/streams/1/explain", writeToken, 403},
		{"read token explains a stream", "GET", "/v1/streams/1/explain", readToken, 404},
		{"read token explains an event", "POST", "/v1/explain", readToken, 200},
		{"health needs no token", "GET", "/livez", "", 200},
		{"metrics need no token", "GET", "/metrics", "", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == "POST" && tc.path == "/v1/events" {
				body = event("tok-"+strings.ReplaceAll(tc.name, " ", "-"), "x.y")
			}
			if tc.path == "/v1/explain" {
				body = event("explained", "x.y")
			}
			a := do(t, tc.method, b.url+tc.path, tc.token, body)
			if a.code != tc.code {
				t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, a.code, a.raw, tc.code)
			}
		})
	}
	if n := b.events(t); n != 1 {
		t.Errorf("%d events stored, want only the authorised one", n)
	}
}

// /readyz fails while the database is unreachable and while draining;
// Run drains in-flight requests and returns nil.
func TestReadinessAndDrain(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{ShutdownGrace: 5 * time.Second})
	if a := do(t, "GET", b.url+"/readyz", "", ""); a.code != 200 {
		t.Fatalf("/readyz = %d %s", a.code, a.raw)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	if a := do(t, "GET", url+"/livez", "", ""); a.code != 200 {
		t.Fatalf("/livez = %d", a.code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if a := do(t, "GET", b.url+"/readyz", "", ""); a.code != 503 || !strings.Contains(a.raw, "shutting down") {
		t.Errorf("/readyz while draining = %d %s, want 503", a.code, a.raw)
	}

	down := setup(t, httpapi.Config{}, httpapi.Options{})
	if err := down.store.Close(); err != nil {
		t.Fatal(err)
	}
	if a := do(t, "GET", down.url+"/readyz", "", ""); a.code != 503 || !strings.Contains(a.raw, "database") {
		t.Errorf("/readyz with the database closed = %d %s, want 503", a.code, a.raw)
	}
	a := do(t, "POST", down.url+"/v1/events", "", event("lost", "x.y"))
	if a.code/100 != 5 || !strings.Contains(a.raw, "nothing stored") {
		t.Errorf("POST with the database closed = %d %s, want 5xx saying nothing was stored", a.code, a.raw)
	}
}

// promtool accepts /metrics after traffic of every kind.
func TestMetricsPassPromtool(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{})
	do(t, "POST", b.url+"/v1/notifications", "", notification("n1", "compute.instance.update")+"\n"+notification("n2", "compute.instance.exists")+"\n[]")
	do(t, "POST", b.url+"/v1/events", "", `{"broken": `)
	a := do(t, "GET", b.url+"/metrics", "", "")
	if a.code != 200 {
		t.Fatalf("/metrics = %d", a.code)
	}
	for _, want := range []string{
		`winchester_events_stored_total{source="http"} 2`,
		`winchester_events_rejected_total{reason="undistillable",source="http"} 1`,
		`winchester_http_requests_total{code="400",route="POST /v1/events"} 1`,
		`winchester_trigger_stats_total{stat="ready_to_fire",trigger="per_instance"} 1`,
		`winchester_streams_ready{action="fire"} 1`,
		`winchester_database_up 1`,
	} {
		if !strings.Contains(a.raw, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	metricstest.Check(t, a.raw)
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  httpapi.Config
		want string
	}{
		{"cert without key", httpapi.Config{TLSCertFile: "c.pem"}, "tls_cert_file and tls_key_file"},
		{"short token", httpapi.Config{Tokens: []httpapi.Token{{Token: "abc", Scopes: []string{"read"}}}}, "at least 16"},
		{"unknown scope", httpapi.Config{Tokens: []httpapi.Token{{Token: readToken, Scopes: []string{"root"}}}}, `unknown scope "root"`},
		{"negative duration", httpapi.Config{IdleTimeout: httpapi.Duration(-time.Second)}, "http.idle_timeout: -1s: must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestTokensFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# ops\n" + readToken + " read\n\n" + adminToken + " read,write admin # all\n")
	got, err := httpapi.Config{TokensFile: path}.LoadTokens()
	if err != nil || len(got) != 2 || len(got[1].Scopes) != 3 {
		t.Fatalf("LoadTokens = %v, %v", got, err)
	}
	write(readToken + " read\nshort write\n")
	if _, err := (httpapi.Config{TokensFile: path}).LoadTokens(); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Errorf("LoadTokens of a bad file = %v, want an error naming line 2", err)
	}
	if _, err := (httpapi.Config{TokensFile: filepath.Join(dir, "missing")}).LoadTokens(); err == nil {
		t.Error("LoadTokens of a missing file succeeded")
	}
}

// TLS: the API serves HTTPS with the configured certificate; a missing
// certificate is an error from Run.
func TestTLS(t *testing.T) {
	b := setup(t, httpapi.Config{}, httpapi.Options{})
	srv, err := httpapi.New(nil, b.store, nil, httpapi.Config{TLSCertFile: "/nonexistent/c.pem", TLSKeyFile: "/nonexistent/k.pem"}, httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Errorf("Run with a missing certificate = %v, want an error naming it", err)
	}

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := writeCert(t, certFile, keyFile)
	srv, err = httpapi.New(nil, b.store, nil, httpapi.Config{TLSCertFile: certFile, TLSKeyFile: keyFile}, httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/livez")
	if err != nil {
		t.Fatalf("GET https://…/livez: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("GET /livez over TLS = %d (TLS %v)", resp.StatusCode, resp.TLS != nil)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and returns a
// pool trusting it.
func writeCert(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "winchester test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
