package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/console"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/httpapi"
	"github.com/winchester-go/winchester/ingest"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/metrics"
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
- name: per_tenant
  distinguished_by: [tenant_id]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.delete.end
- name: large_instances
  debug_level: 2
  distinguished_by: [instance_id]
  expiration: "$last + 1d"
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.exists
    traits:
      memory_mb:
        int: "> 4096"
  fire_criteria:
  - event_type: compute.instance.exists
`

const (
	readToken  = "read-token-0123456789"
	writeToken = "write-token-0123456789"
	adminToken = "admin-token-0123456789"
)

type bundle struct {
	url   string
	store db.Store
	mgr   *trigger.Manager
	met   *metrics.Metrics
}

// setup runs the HTTP API with the console over a fresh SQLite store,
// with read, write and admin tokens when tokens is true.
func setup(t *testing.T, cfg httpapi.Config, tokens bool) *bundle {
	t.Helper()
	store := enginetest.SQLite(t)
	mgr := enginetest.Manager(t, store, testTriggers, trigger.ManagerConfig{})
	met := metrics.New(metrics.Config{Version: "test"})
	in := ingest.New(mgr, ingest.Config{Metrics: met, Logger: dbtest.Logger(t)})
	opts := httpapi.Options{Metrics: met, Logger: dbtest.Logger(t), Subscribers: []string{"audit"}, Console: console.Options{
		Jobs: []console.Job{{Name: "nightly", Schedule: "@daily", Handler: "exec"}},
	}}
	if tokens {
		opts.Tokens = []httpapi.Token{
			{Token: readToken, Scopes: []string{httpapi.ScopeRead}},
			{Token: writeToken, Scopes: []string{httpapi.ScopeWrite}},
			{Token: adminToken, Scopes: []string{httpapi.ScopeAdmin}},
		}
	}
	srv, err := httpapi.New(mgr, store, in, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &bundle{url: ts.URL, store: store, mgr: mgr, met: met}
}

// recent is the timestamp of the test's events: streams expire an hour
// after their last event, so they stay active during the test.
var recent = stream.FormatTime(time.Now().UTC().Add(-time.Minute))

// ingestKnown posts the known set of events through the API: instances
// i-1 (created and exists: ready to fire), i-2 and i-3 (created only),
// all of tenant t-1; so per_instance has 3 streams and per_tenant 1.
func (b *bundle) ingestKnown(t *testing.T, token string) {
	t.Helper()
	var body strings.Builder
	for i, e := range []struct{ typ, instance string }{
		{"compute.instance.create.start", "i-1"},
		{"compute.instance.exists", "i-1"},
		{"compute.instance.create.start", "i-2"},
		{"compute.instance.create.start", "i-3"},
	} {
		fmt.Fprintf(&body, `{"message_id": "m-%d", "event_type": %q, "timestamp": %q, "instance_id": %q, "tenant_id": "t-1", "memory_mb": 2048}`+"\n",
			i+1, e.typ, recent, e.instance)
	}
	req, err := http.NewRequestWithContext(t.Context(), "POST", b.url+"/v1/events", strings.NewReader(body.String()))
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
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/events = %d %s", resp.StatusCode, raw)
	}
}

// streamOf returns the stream of trigger name with distinguishing trait
// key=value.
func (b *bundle) streamOf(t *testing.T, name, key, value string) stream.Stream {
	t.Helper()
	found, err := b.store.FindStreams(t.Context(), db.FindStreamsParams{
		Name: name, DistinguishedBy: map[string]stream.Value{key: stream.String(value)},
	})
	if err != nil || len(found) != 1 {
		t.Fatalf("FindStreams(%s, %s=%s) = %d streams, %v; want 1", name, key, value, len(found), err)
	}
	return found[0].Stream
}

// fail moves an active stream to error the way a worker does: claim it
// (firing), then record the failed attempt.
func (b *bundle) fail(t *testing.T, s stream.Stream, msg string) stream.Stream {
	t.Helper()
	ctx := t.Context()
	s, err := b.store.SetStreamState(ctx, db.SetStateParams{ID: s.ID, SerialNo: s.SerialNo, State: stream.StateFiring})
	if err != nil {
		t.Fatalf("claim stream %d: %v", s.ID, err)
	}
	attempts := 1
	s, err = b.store.SetStreamState(ctx, db.SetStateParams{ID: s.ID, SerialNo: s.SerialNo, State: stream.StateError, Attempts: &attempts, LastError: &msg})
	if err != nil {
		t.Fatalf("fail stream %d: %v", s.ID, err)
	}
	return s
}

// client is a browser-like HTTP client: it keeps cookies and does not
// follow redirects.
func client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type page struct {
	code int
	body string
	resp *http.Response
}

func get(t *testing.T, c *http.Client, rawURL, token string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, c, req)
}

func post(t *testing.T, c *http.Client, rawURL, token string, form url.Values) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, c, req)
}

func send(t *testing.T, c *http.Client, req *http.Request) page {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{code: resp.StatusCode, body: string(raw), resp: resp}
}

// csrf returns the CSRF cookie value the client holds for the console.
func csrf(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	u, _ := url.Parse(base + console.Prefix + "/")
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == console.CSRFCookie {
			return ck.Value
		}
	}
	t.Fatalf("no %s cookie", console.CSRFCookie)
	return ""
}
