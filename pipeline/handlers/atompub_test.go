package handlers

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// atomServer is a fake AtomPub endpoint and identity server.
type atomServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int    // statuses to answer posts with, in order; then 201
	posts    []string // "token|content-type|body"
	auths    []string // auth request bodies
	tokenN   int
	delay    time.Duration
}

func newAtomServer(t *testing.T) *atomServer {
	s := &atomServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.auths = append(s.auths, string(body))
		s.tokenN++
		n := s.tokenN
		s.mu.Unlock()
		if r.Header.Get("Accept") != "application/json" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad headers", http.StatusBadRequest)
			return
		}
		var req struct {
			Auth map[string]struct {
				Username string `json:"username"`
				APIKey   string `json:"apiKey"`
			} `json:"auth"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Auth["RAX-KSKEY:apiKeyCredentials"].APIKey == "bad" {
			http.Error(w, "denied", http.StatusUnauthorized)
			return
		}
		c := req.Auth["RAX-KSKEY:apiKeyCredentials"]
		_ = json.NewEncoder(w).Encode(map[string]any{"access": map[string]any{"token": map[string]any{
			"id": c.Username + "-token-" + string(rune('0'+n)),
		}}})
	})
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.posts = append(s.posts, r.Header.Get("X-Auth-Token")+"|"+r.Header.Get("Content-Type")+"|"+string(body))
		status := http.StatusCreated
		if len(s.statuses) > 0 {
			status, s.statuses = s.statuses[0], s.statuses[1:]
		}
		delay := s.delay
		s.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(status)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *atomServer) snapshot() (posts, auths []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.posts...), append([]string(nil), s.auths...)
}

func (s *atomServer) tokens() []string {
	posts, _ := s.snapshot()
	out := make([]string, len(posts))
	for i, p := range posts {
		out[i], _, _ = strings.Cut(p, "|")
	}
	return out
}

// publishOne runs an atompub handler built by f over one event and commits.
func publishOne(t *testing.T, f *AtomPubFactory, params map[string]any, e stream.Event) error {
	t.Helper()
	h := build(t, f.New, "atompub", params)
	if _, err := h.HandleEvents(t.Context(), []stream.Event{e}, pipeline.NewEnv(1, "trig", testLogger(t))); err != nil {
		t.Fatal(err)
	}
	return h.Commit(t.Context())
}

func cufEvent(t *testing.T) stream.Event {
	return event(t, map[string]any{
		"message_id": "5b1d2a1e-9f0c-5c3a-8e8f-1c2d3e4f5a6b", "event_type": "compute.instance.exists.verified",
		"audit_period_beginning": dt("2015-08-10T00:00:00"), "audit_period_ending": dt("2015-08-11T00:00:00"),
		"launched_at": dt("2015-08-09T00:00:00"), "instance_id": "i-1", "state": "active", "rax_options": 4,
		"original_message_id": "6c3e1b34-2b7a-4c55-8b53-7c4b0a9e2f10",
	})
}

func TestAtomPubSend(t *testing.T) {
	t.Parallel()
	fast := map[string]any{"wait_interval": 0.001, "max_wait": 0.004, "max_attempts": 3}
	tests := []struct {
		name       string
		params     map[string]any
		statuses   []int
		wantErr    bool
		wantTokens []string // X-Auth-Token of each post
		wantAuths  int
	}{
		{name: "created without auth", wantTokens: []string{""}},
		{name: "conflict means already there", statuses: []int{409}, wantTokens: []string{""}},
		{name: "bad request is a logged rejection, not retried", statuses: []int{400}, wantTokens: []string{""}},
		{name: "server error is retried", statuses: []int{500, 503}, wantTokens: []string{"", "", ""}},
		{name: "retries are bounded", statuses: []int{500, 500, 500, 500}, wantErr: true, wantTokens: []string{"", "", ""}},
		{
			name:       "token is requested and sent",
			params:     map[string]any{"auth_user": "u", "auth_key": "k"},
			wantTokens: []string{"u-token-1"}, wantAuths: 1,
		},
		{
			name:       "401 renews the token once",
			params:     map[string]any{"auth_user": "u", "auth_key": "k"},
			statuses:   []int{401},
			wantTokens: []string{"u-token-1", "u-token-2"}, wantAuths: 2,
		},
		{
			name:       "repeated 401 counts as failure",
			params:     map[string]any{"auth_user": "u", "auth_key": "k", "max_attempts": 2},
			statuses:   []int{401, 401, 401, 401},
			wantErr:    true,
			wantTokens: []string{"u-token-1", "u-token-2", "u-token-2"}, wantAuths: 2,
		},
		{
			name:      "failed authentication is a failed attempt",
			params:    map[string]any{"auth_user": "u", "auth_key": "bad", "max_attempts": 2},
			wantErr:   true,
			wantAuths: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newAtomServer(t)
			srv.statuses = tc.statuses
			params := map[string]any{"url": srv.URL + "/events", "content_format": "cuf_xml"}
			for k, v := range fast {
				params[k] = v
			}
			for k, v := range tc.params {
				params[k] = v
			}
			if _, ok := params["auth_user"]; ok {
				params["auth_server"] = srv.URL + "/tokens"
			}
			err := publishOne(t, NewAtomPubFactory(AtomPubFactoryConfig{}), params, cufEvent(t))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Commit error = %v, want error %v", err, tc.wantErr)
			}
			if d := cmp.Diff(tc.wantTokens, srv.tokens(), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("posted tokens mismatch (-want +got):\n%s", d)
			}
			_, auths := srv.snapshot()
			if len(auths) != tc.wantAuths {
				t.Errorf("%d auth requests, want %d", len(auths), tc.wantAuths)
			}
		})
	}
}

func TestAtomPubDocumentPosted(t *testing.T) {
	t.Parallel()
	srv := newAtomServer(t)
	f := NewAtomPubFactory(AtomPubFactoryConfig{})
	params := map[string]any{"url": srv.URL + "/events", "content_format": "cuf_xml", "categories": []any{"c1"},
		"event_types": "compute.instance.exists.*"}
	h := build(t, f.New, "atompub", params)
	in := []stream.Event{cufEvent(t), event(t, map[string]any{"message_id": "x", "event_type": "compute.instance.update"})}
	out, err := h.HandleEvents(t.Context(), in, pipeline.NewEnv(1, "trig", testLogger(t)))
	if err != nil || len(out) != 2 {
		t.Fatalf("HandleEvents = %d events, %v; want the 2 input events", len(out), err)
	}
	if err := h.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	posts, _ := srv.snapshot()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1 (only the matching event)", len(posts))
	}
	_, rest, _ := strings.Cut(posts[0], "|")
	ctype, body, _ := strings.Cut(rest, "|")
	if ctype != "application/atom+xml" {
		t.Errorf("Content-Type = %q", ctype)
	}
	want, err := h.(*AtomPub).Document(cufEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if body != string(want) {
		t.Errorf("posted body =\n%s\nwant\n%s", body, want)
	}
	if !strings.Contains(body, `<atom:category term="c1" /><atom:category term="compute.instance.exists.verified.cuf" /><atom:category term="original_message_id:6c3e1b34-2b7a-4c55-8b53-7c4b0a9e2f10" />`) {
		t.Errorf("categories missing in %s", body)
	}
}

// TestAtomPubTokenCache checks that tokens are cached per credential set by
// the factory, and not shared between factories.
func TestAtomPubTokenCache(t *testing.T) {
	t.Parallel()
	srv := newAtomServer(t)
	f := NewAtomPubFactory(AtomPubFactoryConfig{})
	params := func(user string) map[string]any {
		return map[string]any{"url": srv.URL + "/events", "auth_user": user, "auth_key": "k", "auth_server": srv.URL + "/tokens"}
	}
	e := event(t, map[string]any{"message_id": "m", "event_type": "t"})
	for _, user := range []string{"a", "a", "b", "a"} {
		if err := publishOne(t, f, params(user), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := publishOne(t, NewAtomPubFactory(AtomPubFactoryConfig{}), params("a"), e); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"a-token-1", "a-token-1", "b-token-2", "a-token-1", "a-token-3"}, srv.tokens()); d != "" {
		t.Errorf("tokens mismatch (-want +got):\n%s", d)
	}
}

func TestAtomPubTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	t.Run("per-request timeout", func(t *testing.T) {
		t.Parallel()
		srv := newAtomServer(t)
		srv.delay = 2 * time.Second
		err := publishOne(t, NewAtomPubFactory(AtomPubFactoryConfig{}),
			map[string]any{"url": srv.URL + "/events", "http_timeout": 0.05, "wait_interval": 0.001, "max_attempts": 2},
			event(t, map[string]any{"message_id": "m", "event_type": "t"}))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Commit error = %v, want a deadline exceeded", err)
		}
		if posts, _ := srv.snapshot(); len(posts) != 2 {
			t.Errorf("%d attempts, want 2", len(posts))
		}
	})
	t.Run("cancellation stops the backoff", func(t *testing.T) {
		t.Parallel()
		srv := newAtomServer(t)
		srv.statuses = []int{500, 500}
		h := build(t, NewAtomPubFactory(AtomPubFactoryConfig{}).New, "atompub",
			map[string]any{"url": srv.URL + "/events", "wait_interval": 3600})
		if _, err := h.HandleEvents(t.Context(), []stream.Event{event(t, map[string]any{"message_id": "m", "event_type": "t"})}, pipeline.NewEnv(1, "x", nil)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h.Commit(ctx) }()
		for {
			if posts, _ := srv.snapshot(); len(posts) == 1 {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("Commit returned early: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Commit error = %v, want cancellation", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Commit did not return after cancellation")
		}
	})
}

func TestAtomPubEscaping(t *testing.T) {
	t.Parallel()
	srvURL := "http://127.0.0.1:1/events"
	e := event(t, map[string]any{
		"message_id": `m<1>&"`, "event_type": "compute.instance.exists", "display_name": "a<b>&\"c\"\n\x01",
		"original_message_id": `o&<`, "tenant_id": "t'1",
		"audit_period_beginning": dt("2015-08-10T00:00:00"), "audit_period_ending": dt("2015-08-11T00:00:00"),
		"launched_at": dt("2015-08-09T00:00:00"), "state": "active",
	})
	for _, format := range []string{"cuf_xml", "json"} {
		h := build(t, NewAtomPubFactory(AtomPubFactoryConfig{}).New, "atompub",
			map[string]any{"url": srvURL, "content_format": format, "title": "T & <t>", "categories": []any{`c"1`}})
		doc, err := h.(*AtomPub).Document(e)
		if err != nil {
			t.Fatalf("%s: Document: %v", format, err)
		}
		var entry struct {
			ID         string `xml:"id"`
			Title      string `xml:"title"`
			Categories []struct {
				Term string `xml:"term,attr"`
			} `xml:"category"`
			Content struct {
				Inner string `xml:",innerxml"`
				Text  string `xml:",chardata"`
				Event *struct {
					ResourceName string `xml:"resourceName,attr"`
					ID           string `xml:"id,attr"`
					TenantID     string `xml:"tenantId,attr"`
				} `xml:"event"`
			} `xml:"content"`
		}
		if err := xml.Unmarshal(doc, &entry); err != nil {
			t.Fatalf("%s: document is not XML: %v\n%s", format, err, doc)
		}
		var terms []string
		for _, c := range entry.Categories {
			terms = append(terms, c.Term)
		}
		if d := cmp.Diff([]string{`c"1`, "compute.instance.exists" + map[string]string{"cuf_xml": ".cuf", "json": ""}[format], "original_message_id:o&<"}, terms); d != "" {
			t.Errorf("%s: categories mismatch (-want +got):\n%s", format, d)
		}
		if entry.ID != `urn:uuid:m<1>&"` || entry.Title != "T & <t>" {
			t.Errorf("%s: id %q title %q", format, entry.ID, entry.Title)
		}
		switch format {
		case "cuf_xml":
			if entry.Content.Event == nil {
				t.Fatalf("no CUF event in %s", doc)
			}
			got := *entry.Content.Event
			if got.ResourceName != "a<b>&\"c\"\n\uFFFD" || got.ID != `m<1>&"` || got.TenantID != "t'1" {
				t.Errorf("CUF attributes = %+v", got)
			}
		case "json":
			var m map[string]any
			if err := json.Unmarshal([]byte(entry.Content.Text), &m); err != nil {
				t.Fatalf("json content %q: %v", entry.Content.Text, err)
			}
			if m["display_name"] != "a<b>&\"c\"\n\x01" || m["timestamp"] != "2014-08-02T00:05:00" || m["launched_at"] != "2015-08-09T00:00:00" {
				t.Errorf("json content = %v", m)
			}
		}
	}
}

func TestAtomPubParamErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params map[string]any
		field  string
	}{
		{"no url", map[string]any{}, "url"},
		{"user without key", map[string]any{"url": "u", "auth_user": "a", "auth_server": "s"}, "auth_user"},
		{"credentials without server", map[string]any{"url": "u", "auth_user": "a", "auth_key": "k"}, "auth_server"},
		{"server without credentials", map[string]any{"url": "u", "auth_server": "s"}, "auth_server"},
		{"bad attempts", map[string]any{"url": "u", "max_attempts": 0}, "max_attempts"},
		{"bad timeout", map[string]any{"url": "u", "http_timeout": 0}, "http_timeout"},
		{"bad event types", map[string]any{"url": "u", "event_types": map[string]any{"a": 1}}, "event_types"},
		{"unknown param", map[string]any{"url": "u", "retries": 3}, "retries"},
	}
	f := NewAtomPubFactory(AtomPubFactoryConfig{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := pipeline.ParamsFromMap("atompub", tc.params)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.New(p)
			var ce *pipeline.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Errorf("New(%v) = %v, want a config error about %s", tc.params, err, tc.field)
			}
		})
	}
}

func TestAtomPubBackoff(t *testing.T) {
	t.Parallel()
	a := &AtomPub{cfg: &atomConfig{waitInterval: 30 * time.Second, maxWait: 600 * time.Second}}
	var got []time.Duration
	for i := 1; i <= 7; i++ {
		got = append(got, a.backoff(i))
	}
	want := []time.Duration{30 * time.Second, 60 * time.Second, 120 * time.Second, 240 * time.Second, 480 * time.Second, 600 * time.Second, 600 * time.Second}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("backoff mismatch (-want +got):\n%s", d)
	}
}

// GenerateAtom uses the title it is given, and the atom event type without
// one, whatever title the handler is configured with (as the original's
// generate_atom: the handler passes its title when it publishes).
func TestAtomPubGenerateAtomTitle(t *testing.T) {
	t.Parallel()
	e := event(t, map[string]any{"message_id": "12-34", "event_type": "test.thing"})
	h := build(t, NewAtomPubFactory(AtomPubFactoryConfig{}).New, "atompub",
		map[string]any{"url": "http://127.0.0.1:1/events", "title": "Configured"}).(*AtomPub)
	for _, tc := range []struct{ title, want string }{
		{"Explicit & <t>", `<atom:title type="text">Explicit &amp; &lt;t&gt;</atom:title>`},
		{"", `<atom:title type="text">test.thing</atom:title>`},
	} {
		got := string(h.GenerateAtom(e, "test.thing", []byte("{}"), "application/json", nil, tc.title))
		if !strings.Contains(got, tc.want) {
			t.Errorf("GenerateAtom(title %q) = %s, want it to contain %s", tc.title, got, tc.want)
		}
	}
	doc, err := h.Document(e)
	if err != nil {
		t.Fatalf("Document: %v", err)
	}
	if want := `<atom:title type="text">Configured</atom:title>`; !strings.Contains(string(doc), want) {
		t.Errorf("Document = %s, want the configured title %s", doc, want)
	}
}
