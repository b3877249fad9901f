package handlers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// Defaults of the webhook params.
const (
	DefaultWebhookRequestTimeout  = 10 * time.Second
	DefaultWebhookMaxAttempts     = 5
	DefaultWebhookRetryBackoff    = time.Second
	DefaultWebhookSignatureHeader = "X-Winchester-Signature"
	maxWebhookBackoff             = 30 * time.Second
)

// Headers of a webhook request.
const (
	// HeaderIdempotencyKey carries Env.IdempotencyKey: the same on every
	// retry and rescue of the stream, so a receiver can drop repeats.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// webhookParams are the params of the "webhook" handler.
type webhookParams struct {
	// URL receives the POST (http or https; required).
	URL string `yaml:"url"`
	// Secret, or the content of SecretFile (trailing newline removed),
	// signs the body: SignatureHeader carries "sha256=" and the hex
	// HMAC-SHA256 of the body under the secret. Without either, no
	// signature is sent.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// SignatureHeader names the signature header (default
	// X-Winchester-Signature).
	SignatureHeader string `yaml:"signature_header"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers"`
	// RequestTimeout bounds one request (default 10s).
	RequestTimeout duration `yaml:"request_timeout"`
	// MaxAttempts bounds the requests per commit (default 5).
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBackoff is the wait after the first failed attempt (default 1s);
	// it doubles after each further one, up to 30s. All attempts happen
	// inside the commit's time limit.
	RetryBackoff duration `yaml:"retry_backoff"`
}

// duration is a param read from a number of seconds or a Go duration
// string ("500ms", "2m").
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		secs, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			return fmt.Errorf("invalid number of seconds %q", n.Value)
		}
		*d = duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("invalid duration %q (want 10s, 500ms or a number of seconds)", n.Value)
	}
	*d = duration(v)
	return nil
}

// WebhookFactory makes "webhook" handlers; it owns the HTTP client they
// share. It is safe for concurrent use.
type WebhookFactory struct {
	client *http.Client
}

// WebhookFactoryConfig configures a WebhookFactory.
type WebhookFactoryConfig struct {
	// Client sends the requests (nil: a client without its own timeout;
	// every request is bounded by request_timeout and the commit's limit).
	Client *http.Client
}

// NewWebhookFactory returns a factory of "webhook" handlers.
func NewWebhookFactory(cfg WebhookFactoryConfig) *WebhookFactory {
	c := cfg.Client
	if c == nil {
		c = &http.Client{}
	}
	return &WebhookFactory{client: c}
}

// webhookConfig is a validated webhook entry.
type webhookConfig struct {
	url             string
	secret          []byte
	signatureHeader string
	headers         map[string]string
	requestTimeout  time.Duration
	maxAttempts     int
	backoff         time.Duration
}

// New is the factory of the "webhook" handler.
func (f *WebhookFactory) New(p pipeline.Params) (pipeline.Builder, error) {
	var cfg webhookParams
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return nil, p.Errorf("url", "required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, p.Errorf("url", "%q is not an http(s) URL", cfg.URL)
	}
	c := &webhookConfig{
		url: cfg.URL, signatureHeader: cfg.SignatureHeader, headers: cfg.Headers,
		requestTimeout: time.Duration(cfg.RequestTimeout), maxAttempts: cfg.MaxAttempts, backoff: time.Duration(cfg.RetryBackoff),
	}
	switch {
	case cfg.Secret != "" && cfg.SecretFile != "":
		return nil, p.Errorf("secret_file", "set secret or secret_file, not both")
	case cfg.Secret != "":
		c.secret = []byte(cfg.Secret)
	case cfg.SecretFile != "":
		data, err := os.ReadFile(cfg.SecretFile)
		if err != nil {
			return nil, p.Errorf("secret_file", "%v", err)
		}
		if c.secret = bytes.TrimRight(data, "\r\n"); len(c.secret) == 0 {
			return nil, p.Errorf("secret_file", "%s is empty", cfg.SecretFile)
		}
	}
	if c.signatureHeader == "" {
		c.signatureHeader = DefaultWebhookSignatureHeader
	}
	for k := range c.headers {
		if strings.EqualFold(k, HeaderIdempotencyKey) || strings.EqualFold(k, c.signatureHeader) || strings.EqualFold(k, "Content-Type") {
			return nil, p.Errorf("headers", "%s is set by the handler", k)
		}
	}
	switch {
	case p.Has("request_timeout") && c.requestTimeout <= 0:
		return nil, p.Errorf("request_timeout", "must be positive")
	case c.requestTimeout == 0:
		c.requestTimeout = DefaultWebhookRequestTimeout
	}
	switch {
	case p.Has("max_attempts") && c.maxAttempts <= 0:
		return nil, p.Errorf("max_attempts", "must be at least 1")
	case c.maxAttempts == 0:
		c.maxAttempts = DefaultWebhookMaxAttempts
	}
	switch {
	case p.Has("retry_backoff") && c.backoff <= 0:
		return nil, p.Errorf("retry_backoff", "must be positive")
	case c.backoff == 0:
		c.backoff = DefaultWebhookRetryBackoff
	}
	return func() (pipeline.Handler, error) { return &Webhook{cfg: c, client: f.client}, nil }, nil
}

// Webhook is the "webhook" handler. HandleEvents prepares the request
// body, the stream document (trigger, distinguishing traits, events in the
// event JSON; see pipeline.Document), and passes the events on unchanged;
// Commit POSTs it with the Idempotency-Key header, the signature, and
// retries with backoff (on network errors, 408, 425, 429 and 5xx) within
// the commit's time limit. A receiver that sees the same key again has
// seen the stream before: side effects are at least once.
type Webhook struct {
	cfg    *webhookConfig
	client *http.Client
	body   []byte
	key    string
}

// HandleEvents encodes the stream document and returns the events
// unchanged.
func (w *Webhook) HandleEvents(_ context.Context, events []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	body, err := env.Document(events).Marshal()
	if err != nil {
		return nil, fmt.Errorf("webhook: encode the stream: %w", err)
	}
	w.body, w.key = body, env.IdempotencyKey
	return events, nil
}

// Commit POSTs the document until the receiver accepts it (2xx), a
// permanent error (another status), MaxAttempts, or ctx's end.
func (w *Webhook) Commit(ctx context.Context) error {
	if w.body == nil {
		return nil
	}
	backoff := w.cfg.backoff
	var last error
	for attempt := 1; ; attempt++ {
		retry, wait, err := w.post(ctx)
		if err == nil {
			return nil
		}
		last = fmt.Errorf("webhook %s: attempt %d of %d: %w", redactURL(w.cfg.url), attempt, w.cfg.maxAttempts, err)
		if !retry || attempt >= w.cfg.maxAttempts {
			return last
		}
		wait = max(wait, backoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w; no time left to retry: %w", last, context.Cause(ctx))
		case <-t.C:
		}
		backoff = min(2*backoff, maxWebhookBackoff)
	}
}

// post sends the request once. It reports whether a failure may be
// retried and how long the receiver asked to wait (Retry-After).
func (w *Webhook) post(ctx context.Context) (retry bool, wait time.Duration, err error) {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, w.cfg.url, bytes.NewReader(w.body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "winchester-webhook")
	req.Header.Set(HeaderIdempotencyKey, w.key)
	if w.cfg.secret != nil {
		mac := hmac.New(sha256.New, w.cfg.secret)
		mac.Write(w.body)
		req.Header.Set(w.cfg.signatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	for k, v := range w.cfg.headers {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return ctx.Err() == nil, 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, 0, nil
	}
	err = fmt.Errorf("status %s", resp.Status)
	if m := strings.TrimSpace(string(msg)); m != "" {
		err = fmt.Errorf("status %s: %s", resp.Status, m)
	}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooEarly,
		resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
			wait = time.Duration(secs) * time.Second
		}
		return true, wait, err
	}
	return false, 0, fmt.Errorf("%w (not retried)", err)
}

// redactURL drops the user information of a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

// Rollback forgets the prepared request.
func (w *Webhook) Rollback(context.Context) error {
	w.body = nil
	return nil
}

var _ pipeline.Handler = (*Webhook)(nil)
