package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// receiver is a webhook receiver that records every request and answers
// with the queued statuses (then 204). It checks signatures with its own
// secret.
type receiver struct {
	*httptest.Server
	secret   string
	mu       sync.Mutex
	statuses []int
	got      []received
}

type received struct {
	key      string
	signedOK bool
	doc      pipeline.Document
}

func newReceiver(t *testing.T, secret string, statuses ...int) *receiver {
	r := &receiver{secret: secret, statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mac := hmac.New(sha256.New, []byte(r.secret))
		mac.Write(body)
		rec := received{
			key:      req.Header.Get("Idempotency-Key"),
			signedOK: hmac.Equal([]byte(req.Header.Get("X-Winchester-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))),
		}
		if err := json.Unmarshal(body, &rec.doc); err != nil {
			t.Errorf("request body %s: %v", body, err)
		}
		r.mu.Lock()
		r.got = append(r.got, rec)
		status := http.StatusNoContent
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func webhookEnv() *pipeline.Env {
	env := pipeline.NewEnv(42, "instance_usage", nil)
	env.Action, env.Pipeline = "fire", "notify"
	env.DistinguishedBy = map[string]stream.Value{"instance_id": stream.String("i-1")}
	env.IdempotencyKey = pipeline.IdempotencyKey(42, "instance_usage", []stream.Event{{MessageID: "m1"}})
	return env
}

func TestWebhookPostsSignedStreamWithKey(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, "s3cret", 503, 500)
	f := NewWebhookFactory(WebhookFactoryConfig{})
	params := map[string]any{"url": r.URL + "/hook", "secret": "s3cret", "retry_backoff": "1ms"}
	in := []stream.Event{event(t, map[string]any{"message_id": "m1", "event_type": "compute.instance.exists", "memory_mb": 512})}
	for run := range 2 { // a retry of the same stream, as after a rescue
		h := build(t, f.New, "webhook", params)
		out, err := h.HandleEvents(t.Context(), in, webhookEnv())
		if err != nil || len(out) != 1 {
			t.Fatalf("run %d: HandleEvents = %v, %v", run, out, err)
		}
		if err := h.Commit(t.Context()); err != nil {
			t.Fatalf("run %d: Commit: %v", run, err)
		}
	}
	got := r.requests()
	if len(got) != 4 { // 503, 500, 204 in the first run; 204 in the second
		t.Fatalf("receiver got %d requests, want 4 (two retried failures, then one per run)", len(got))
	}
	key := webhookEnv().IdempotencyKey
	for i, g := range got {
		if g.key != key || !g.signedOK {
			t.Errorf("request %d: key %q signed %v, want %q and a valid signature", i, g.key, g.signedOK, key)
		}
	}
	doc := got[0].doc
	if doc.StreamID != 42 || doc.Trigger != "instance_usage" || doc.Action != "fire" || doc.IdempotencyKey != key ||
		doc.DistinguishedBy["instance_id"] != stream.String("i-1") || len(doc.Events) != 1 ||
		doc.Events[0].MessageID != "m1" || doc.Events[0].Traits["memory_mb"] != stream.Int(512) {
		t.Errorf("document = %+v, want the stream with its traits and events", doc)
	}
}

// A receiver configured with another secret sees that the signature does
// not match.
func TestWebhookWrongSecretIsVisible(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, "receiver-secret")
	h := build(t, NewWebhookFactory(WebhookFactoryConfig{}).New, "webhook", map[string]any{"url": r.URL, "secret": "other-secret"})
	if _, err := h.HandleEvents(t.Context(), []stream.Event{event(t, map[string]any{"message_id": "m1", "event_type": "x"})}, webhookEnv()); err != nil {
		t.Fatal(err)
	}
	if err := h.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.requests(); len(got) != 1 || got[0].signedOK {
		t.Fatalf("requests %+v, want one whose signature does not verify", got)
	}
}

func TestWebhookFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		statuses  []int
		params    map[string]any
		wantPosts int
		wantErr   string
	}{
		{name: "permanent status is not retried", statuses: []int{400}, wantPosts: 1, wantErr: "status 400 Bad Request (not retried)"},
		{name: "attempts are bounded", statuses: []int{500, 500, 500}, params: map[string]any{"max_attempts": 3}, wantPosts: 3, wantErr: "attempt 3 of 3: status 500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, "", tc.statuses...)
			params := map[string]any{"url": r.URL, "retry_backoff": "1ms"}
			for k, v := range tc.params {
				params[k] = v
			}
			h := build(t, NewWebhookFactory(WebhookFactoryConfig{}).New, "webhook", params)
			if _, err := h.HandleEvents(t.Context(), []stream.Event{event(t, map[string]any{"message_id": "m1", "event_type": "x"})}, webhookEnv()); err != nil {
				t.Fatal(err)
			}
			err := h.Commit(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Commit = %v, want an error containing %q", err, tc.wantErr)
			}
			if n := len(r.requests()); n != tc.wantPosts {
				t.Errorf("receiver got %d requests, want %d", n, tc.wantPosts)
			}
		})
	}
}

// The retries stop when the commit's time limit ends.
func TestWebhookRetriesWithinTheCommitLimit(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, "", 500, 500, 500, 500, 500)
	h := build(t, NewWebhookFactory(WebhookFactoryConfig{}).New, "webhook", map[string]any{"url": r.URL, "retry_backoff": "1h"})
	if _, err := h.HandleEvents(t.Context(), []stream.Event{event(t, map[string]any{"message_id": "m1", "event_type": "x"})}, webhookEnv()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.Commit(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Commit = %v after %s, want the time limit's error about 100ms later", err, time.Since(start))
	}
	if n := len(r.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1 before the limit", n)
	}
}

func TestWebhookParamErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params map[string]any
		field  string
		msg    string
	}{
		{name: "no url", params: map[string]any{}, field: "url", msg: "required"},
		{name: "not http", params: map[string]any{"url": "ftp://x/y"}, field: "url", msg: "not an http(s) URL"},
		{name: "unknown param", params: map[string]any{"url": "http://x", "secrett": "s"}, field: "secrett", msg: "unknown key (did you mean secret?)"},
		{name: "both secrets", params: map[string]any{"url": "http://x", "secret": "a", "secret_file": "/f"}, field: "secret_file", msg: "not both"},
		{name: "missing secret file", params: map[string]any{"url": "http://x", "secret_file": "/nonexistent/secret"}, field: "secret_file", msg: "no such file"},
		{name: "bad timeout", params: map[string]any{"url": "http://x", "request_timeout": "soon"}, field: "request_timeout", msg: "invalid duration"},
		{name: "zero attempts", params: map[string]any{"url": "http://x", "max_attempts": 0}, field: "max_attempts", msg: "at least 1"},
		{name: "reserved header", params: map[string]any{"url": "http://x", "headers": map[string]any{"idempotency-key": "k"}}, field: "headers", msg: "set by the handler"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := pipeline.ParamsFromMap("webhook", tc.params)
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewWebhookFactory(WebhookFactoryConfig{}).New(p)
			var ce *pipeline.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("New(%v) = %v, want a ConfigError about %q containing %q", tc.params, err, tc.field, tc.msg)
			}
		})
	}
}
