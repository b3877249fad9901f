package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/subscriber"
)

// FlagMetricsListen names the flag of the commands that serve their
// metrics on an address of their own (pipeline_worker, winchester
// consume).
const FlagMetricsListen = "metrics-listen"

// MetricsServer serves a process's Prometheus metrics on GET /metrics and
// its health checks on GET /livez (the process runs) and GET /readyz (it
// is not shutting down and its database answers), without
// authentication, for processes that run no HTTP API (winchester serve
// has these routes in its API). Create it with ListenMetrics, then Run it.
type MetricsServer struct {
	ln       net.Listener
	srv      *http.Server
	ping     func(context.Context) error
	log      *slog.Logger
	draining atomic.Bool
}

// readyTimeout bounds the database check of /readyz.
const readyTimeout = 2 * time.Second

// ListenMetrics listens on addr (host:port; port 0 picks a free one, see
// Addr) at once, so that a bad address fails the command before it starts
// working. met's registry is served as it is; ping, called by /readyz,
// reports whether the database answers (nil: /readyz does not check it).
func ListenMetrics(addr string, met *metrics.Metrics, ping func(context.Context) error, log *slog.Logger) (*MetricsServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", FlagMetricsListen, err)
	}
	s := &MetricsServer{ln: ln, ping: ping, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", met.Handler())
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeHealth(w, http.StatusOK, "status", "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Addr returns the address listened on (the port chosen for port 0).
func (s *MetricsServer) Addr() string { return s.ln.Addr().String() }

// Drain makes /readyz answer 503 from now on, while /metrics and /livez
// keep answering: call it when the process starts shutting down.
func (s *MetricsServer) Drain() { s.draining.Store(true) }

// Run serves until ctx ends, then closes the listener, lets requests in
// flight finish for up to 5 seconds and returns nil; it returns an error
// when serving fails. It logs the address once serving.
func (s *MetricsServer) Run(ctx context.Context) error {
	s.log.Info("serving metrics", "address", s.Addr(), "paths", "/metrics /livez /readyz")
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
	}
	s.Drain()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("metrics server: shutdown: %w", err)
	}
	return nil
}

func (s *MetricsServer) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeHealth(w, http.StatusServiceUnavailable, "error", "shutting down")
		return
	}
	if s.ping != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.ping(ctx); err != nil {
			writeHealth(w, http.StatusServiceUnavailable, "error", "database unreachable: "+err.Error())
			return
		}
	}
	writeHealth(w, http.StatusOK, "status", "ready")
}

// writeHealth answers a health check as the HTTP API does: a JSON object
// of one key.
func writeHealth(w http.ResponseWriter, code int, key, value string) {
	b, _ := json.Marshal(map[string]string{key: value})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// PingStore returns a /readyz check of the engine's database: an empty
// transaction.
func PingStore(eng *winchester.Engine) func(context.Context) error {
	return func(ctx context.Context) error {
		return eng.Store.InTx(ctx, func(context.Context, db.Ops) error { return nil })
	}
}

// RegisterEngineCollectors registers in met's registry the collectors
// that read the engine at scrape time: the live definitions' version, the
// trigger manager's counters, the stream backlog and database_up, and the
// event subscribers and scheduled jobs when the store keeps them.
func RegisterEngineCollectors(met *metrics.Metrics, eng *winchester.Engine) error {
	reg := met.Registry()
	if err := reg.Register(metrics.NewDefinitionsCollector(eng.Live.Number)); err != nil {
		return fmt.Errorf("register definitions metrics: %w", err)
	}
	if err := reg.Register(metrics.NewManagerCollector(eng.Manager)); err != nil {
		return fmt.Errorf("register manager metrics: %w", err)
	}
	if err := reg.Register(metrics.NewStoreCollector(eng.Store, eng.Clock)); err != nil {
		return fmt.Errorf("register store metrics: %w", err)
	}
	if ss, ok := eng.Store.(subscriber.Store); ok {
		if err := reg.Register(metrics.NewSubscriberCollector(ss)); err != nil {
			return fmt.Errorf("register subscriber metrics: %w", err)
		}
	}
	if js, ok := eng.Store.(db.JobStore); ok {
		if err := reg.Register(metrics.NewJobCollector(js, eng.Defs.Jobs, eng.Clock)); err != nil {
			return fmt.Errorf("register job metrics: %w", err)
		}
	}
	return nil
}
