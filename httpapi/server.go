// Package httpapi is Winchester's HTTP front door: it feeds events and
// notifications to the ingest path, answers queries about streams, events
// and triggers, resets failed streams, and serves health checks and
// metrics. Every endpoint is described, with a curl example, in
// docs/HTTP.md.
//
// A 2xx answer to a POST that stores events is sent only after the
// transaction holding them committed: a client that got it may forget the
// events. Requests are JSON; errors are JSON objects {"error": "..."} with
// a message a person can act on. A request that is malformed as a whole
// (bad JSON, an unknown query parameter, a body over the size limit, too
// many items) is refused with a 4xx and stores nothing; the bad items of a
// well-formed batch are rejected one by one and the good ones are stored.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/winchester-go/winchester/console"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/explain"
	"github.com/winchester-go/winchester/ingest"
	"github.com/winchester-go/winchester/live"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/subscriber"
	"github.com/winchester-go/winchester/trigger"
)

// Store is the part of db.Store the API reads and resets streams with.
type Store interface {
	db.Ops
}

// Options holds the optional collaborators of a Server.
type Options struct {
	// Metrics is served on /metrics and records the requests (nil: none,
	// and /metrics answers 404).
	Metrics *metrics.Metrics
	// Logger receives request failures (nil: discard).
	Logger *slog.Logger
	// ShutdownGrace is how long Run lets in-flight requests finish after
	// its context ends (0: DefaultShutdownGrace).
	ShutdownGrace time.Duration
	// Tokens are the accepted bearer tokens (Config.LoadTokens); none:
	// no authentication.
	Tokens []Token
	// Definitions are the live definitions: the /v1/definitions
	// endpoints apply, list, show and roll back versions through it, and
	// GET /v1/triggers reports its version (nil: the endpoints answer
	// 404).
	Definitions *live.Keeper
	// Subscribers are the names of the configured event subscribers,
	// listed by GET /v1/subscribers even before they have a stored state.
	Subscribers []string
	// Console holds what the web console shows beyond the API (jobs,
	// panels, a clock); its Metrics, Logger and Auth are the server's.
	// Config.UI switches the console off.
	Console console.Options
	// Jobs are the scheduled jobs listed, shown and run under /v1/jobs
	// (nil: those routes answer 404).
	Jobs Jobs
	// Reads is the store of a read replica (database.read_url,
	// winchester.OpenReadStore): the queries of GET /v1/streams,
	// /v1/streams/{id}, /v1/events, /v1/events/{message_id}, the explain
	// endpoints and the console's pages go to it, and /readyz reports its
	// state. Nil: they read the store. A query the replica cannot answer
	// fails with 503; it is not retried on the primary (docs/REPLICAS.md).
	Reads Store
}

// DefaultShutdownGrace is the default of Options.ShutdownGrace.
const DefaultShutdownGrace = 30 * time.Second

// Server is the HTTP API over one engine. It is safe for concurrent use.
type Server struct {
	cfg   Config
	mgr   *trigger.Manager
	store Store
	// reads is Options.Reads, or store without a replica.
	reads     Store
	replica   bool
	in        *ingest.Ingester
	met       *metrics.Metrics
	log       *slog.Logger
	grace     time.Duration
	tokens    []hashedToken
	explainer *explain.Explainer
	defs      *live.Keeper
	jobs      Jobs
	draining  atomic.Bool
	handler   http.Handler
	// subscriberNames are Options.Subscribers.
	subscriberNames []string
}

type hashedToken struct {
	sum    [sha256.Size]byte
	scopes []string
}

// New returns the API over the engine's manager (trigger definitions and
// counters), store (queries, resets, readiness) and ingest path.
func New(mgr *trigger.Manager, store Store, in *ingest.Ingester, cfg Config, opts Options) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reads := opts.Reads
	if reads == nil {
		reads = store
	}
	s := &Server{cfg: cfg, mgr: mgr, store: store, reads: reads, replica: opts.Reads != nil, in: in, met: opts.Metrics, log: opts.Logger,
		grace: opts.ShutdownGrace, jobs: opts.Jobs,
		explainer: explain.New(reads, mgr, explain.Config{DistillFunc: mgr.Distill}), defs: opts.Definitions,
		subscriberNames: opts.Subscribers}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.grace <= 0 {
		s.grace = DefaultShutdownGrace
	}
	for i, t := range opts.Tokens {
		if err := checkToken(t); err != nil {
			return nil, fmt.Errorf("token %d: %w", i, err)
		}
		s.tokens = append(s.tokens, hashedToken{sum: sha256.Sum256([]byte(t.Token)), scopes: t.Scopes})
	}
	var ui *console.Console
	if cfg.UIEnabled() {
		co := opts.Console
		co.Metrics, co.Logger = s.met, s.log.With("component", "console")
		if len(s.tokens) > 0 {
			co.Auth = s.consoleAccess
		}
		if ss, ok := store.(subscriber.Store); ok && len(s.subscriberNames) > 0 {
			co.Panels = append(co.Panels, s.subscriberPanel(ss))
		}
		if opts.Reads != nil {
			co.Reads = opts.Reads
		}
		var err error
		if ui, err = console.New(mgr, store, co); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes(ui)
	return s, nil
}

// Handler returns the API's handler (all routes, authentication, limits
// and timeouts), for tests and for programs that serve it themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// Config returns the server's settings with their defaults.
func (s *Server) Config() Config { return s.cfg }

func (s *Server) routes(ui *console.Console) http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, scope string, h http.HandlerFunc) {
		mux.Handle(pattern, s.instrument(pattern, s.authorize(scope, h)))
	}
	route("GET /livez", "", s.livez)
	route("GET /readyz", "", s.readyz)
	if s.met != nil {
		mux.Handle("GET /metrics", s.instrument("GET /metrics", s.met.Handler()))
	}
	route("POST /v1/events", ScopeWrite, s.postEvents)
	route("POST /v1/notifications", ScopeWrite, s.postNotifications)
	route("POST /event/log", ScopeWrite, s.postEventLog)
	route("GET /v1/streams", ScopeRead, s.getStreams)
	route("GET /v1/streams/{id}", ScopeRead, s.getStream)
	route("POST /v1/streams/{id}/reset", ScopeAdmin, s.resetStream)
	route("GET /v1/streams/{id}/explain", ScopeRead, s.getStreamExplain)
	route("POST /v1/explain", ScopeRead, s.postExplain)
	route("GET /v1/events", ScopeRead, s.getEvents)
	route("GET /v1/events/{message_id}", ScopeRead, s.getEvent)
	route("GET /v1/triggers", ScopeRead, s.getTriggers)
	if s.defs != nil {
		route("GET /v1/definitions", ScopeAdmin, s.listDefinitions)
		route("GET /v1/definitions/{version}", ScopeAdmin, s.showDefinitions)
		route("POST /v1/definitions", ScopeAdmin, s.applyDefinitions)
		route("POST /v1/definitions/rollback", ScopeAdmin, s.rollbackDefinitions)
	}
	route("GET /v1/subscribers", ScopeRead, s.getSubscribers)
	route("GET /v1/subscribers/{name}", ScopeRead, s.getSubscriber)
	route("POST /v1/subscribers/{name}/retry", ScopeAdmin, s.retrySubscriber)
	route("POST /v1/subscribers/{name}/skip", ScopeAdmin, s.skipSubscriber)
	if ui != nil {
		// The console checks tokens itself: a browser sends them in a
		// cookie, and an unauthenticated page view goes to its login form.
		mux.Handle(console.Prefix+"/", s.instrument(console.Prefix+"/", ui.Handler()))
	}
	if s.jobs != nil {
		route("GET /v1/jobs", ScopeRead, s.getJobs)
		route("GET /v1/jobs/{name}/history", ScopeRead, s.getJobHistory)
		route("POST /v1/jobs/{name}/run", ScopeAdmin, s.runJob)
	}
	return http.TimeoutHandler(jsonNotFound(mux), s.cfg.RequestTimeout.Std(), `{"error":"request timed out"}`)
}

// jsonNotFound answers requests no route takes with a JSON 404, or 405
// (with Allow) when the path exists for another method.
func jsonNotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, pattern := mux.Handler(r2); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))
			return
		}
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s (see docs/HTTP.md)", r.Method, r.URL.Path)
	})
}

// statusWriter remembers the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	if s.met == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		s.met.HTTPRequest(route, sw.code, time.Since(start))
	})
}

// authorize checks the bearer token against scope ("" : no token needed).
func (s *Server) authorize(scope string, h http.HandlerFunc) http.HandlerFunc {
	if scope == "" || len(s.tokens) == 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="winchester"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
			return
		}
		scopes, found := s.scopes(token)
		if !found {
			w.Header().Set("WWW-Authenticate", `Bearer realm="winchester", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unknown bearer token")
			return
		}
		if !slices.Contains(scopes, scope) && !slices.Contains(scopes, ScopeAdmin) {
			writeError(w, http.StatusForbidden, "this token lacks the %q scope needed here (it has: %s)", scope, strings.Join(scopes, ", "))
			return
		}
		h(w, r)
	}
}

// scopes returns the scopes of token; found is false for an unknown one.
func (s *Server) scopes(token string) (scopes []string, found bool) {
	sum := sha256.Sum256([]byte(token))
	for _, t := range s.tokens {
		// Every token is compared, in constant time, whatever matched.
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			scopes, found = t.scopes, true
		}
	}
	return scopes, found
}

// consoleAccess is the console's AuthFunc: the read scope views, the
// admin scope (which allows everything) also resets.
func (s *Server) consoleAccess(token string) (console.Access, bool) {
	scopes, found := s.scopes(token)
	admin := slices.Contains(scopes, ScopeAdmin)
	return console.Access{Read: admin || slices.Contains(scopes, ScopeRead), Admin: admin}, found
}

// Run serves the API on the configured address until ctx ends, then stops
// accepting requests (readiness fails at once), lets in-flight requests
// finish within the shutdown grace, and returns nil. A listener that
// cannot be opened is an error.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.Std(),
		ReadTimeout:       s.cfg.RequestTimeout.Std(),
		WriteTimeout:      s.cfg.RequestTimeout.Std() + 5*time.Second,
		IdleTimeout:       s.cfg.IdleTimeout.Std(),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	tlsOn := s.cfg.TLSCertFile != ""
	if tlsOn {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("http: load TLS certificate %s and key %s: %w", s.cfg.TLSCertFile, s.cfg.TLSKeyFile, err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if len(s.tokens) == 0 {
		s.log.Warn("http: no bearer tokens configured: the API accepts every request")
	}
	s.log.Info("http: listening", "address", ln.Addr().String(), "tls", tlsOn)
	errc := make(chan error, 1)
	go func() {
		if tlsOn {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http: serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("http: draining", "grace", s.grace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("http: requests still running after the shutdown grace of %s: %w", s.grace, err)
	}
	s.log.Info("http: stopped")
	return nil
}

func (s *Server) livez(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is not ready while draining or while the database does not
// answer. With a read replica it tells the replica's state in
// read_replica, without failing when the replica does not answer: ingest
// and the workers need only the primary.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.StreamByID(ctx, 0); err != nil && !errors.Is(err, db.ErrNotFound) {
		writeError(w, http.StatusServiceUnavailable, "database unreachable: %v", err)
		return
	}
	if !s.replica {
		writeJSON(w, http.StatusOK, readyJSON{Status: "ready"})
		return
	}
	writeJSON(w, http.StatusOK, readyJSON{Status: "ready", ReadReplica: s.replicaState(ctx)})
}

// readyJSON is the answer of /readyz.
type readyJSON struct {
	Status      string       `json:"status"`
	ReadReplica *replicaJSON `json:"read_replica,omitempty"`
}

// replicaJSON is the state of the read replica in /readyz: status "ok"
// (with in_recovery and lag_seconds when the store reports them) or
// "unavailable" with the error.
type replicaJSON struct {
	Status     string   `json:"status"`
	InRecovery *bool    `json:"in_recovery,omitempty"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func (s *Server) replicaState(ctx context.Context) *replicaJSON {
	rr, ok := s.reads.(db.ReplicaReporter)
	if !ok {
		if _, err := s.reads.StreamByID(ctx, 0); err != nil && !errors.Is(err, db.ErrNotFound) {
			return &replicaJSON{Status: "unavailable", Error: err.Error()}
		}
		return &replicaJSON{Status: "ok"}
	}
	st, err := rr.ReplicaStatus(ctx)
	if err != nil {
		return &replicaJSON{Status: "unavailable", Error: err.Error()}
	}
	lag := st.Lag.Seconds()
	return &replicaJSON{Status: "ok", InRecovery: &st.InRecovery, LagSeconds: &lag}
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, errorBody{Error: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":"encode the answer: ` + strings.ReplaceAll(err.Error(), `"`, `'`) + `"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
