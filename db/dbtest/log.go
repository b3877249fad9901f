package dbtest

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
)

// Logger returns a logger that writes text records to tb.Log, so log
// output appears with the test that produced it (and only on failure or
// with -v). Records logged after the test has ended (by a goroutine that
// outlived it) are dropped: testing panics on a late Log.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(NewLogHandler(tb, slog.LevelDebug))
}

// LogHandler is a slog.Handler writing one text line per record to a
// test's log.
type LogHandler struct {
	tb    testing.TB
	mu    *sync.Mutex
	buf   *bytes.Buffer
	ended *bool // guarded by mu; set by the test's cleanup
	inner slog.Handler
}

// NewLogHandler returns a handler logging records at level and above to
// tb.Log.
func NewLogHandler(tb testing.TB, level slog.Leveler) *LogHandler {
	buf := &bytes.Buffer{}
	h := &LogHandler{
		tb:    tb,
		mu:    &sync.Mutex{},
		buf:   buf,
		ended: new(bool),
		inner: slog.NewTextHandler(buf, &slog.HandlerOptions{
			Level: level,
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.TimeKey {
					return slog.Attr{} // the test log has its own order; times are noise
				}
				return a
			},
		}),
	}
	tb.Cleanup(func() {
		h.mu.Lock()
		*h.ended = true
		h.mu.Unlock()
	})
	return h
}

// Enabled implements slog.Handler.
func (h *LogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if *h.ended {
		return nil
	}
	h.buf.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	h.tb.Helper()
	h.tb.Log(string(bytes.TrimRight(h.buf.Bytes(), "\n")))
	return nil
}

// WithAttrs implements slog.Handler.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &LogHandler{tb: h.tb, mu: h.mu, buf: h.buf, ended: h.ended, inner: h.inner.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	return &LogHandler{tb: h.tb, mu: h.mu, buf: h.buf, ended: h.ended, inner: h.inner.WithGroup(name)}
}

var _ slog.Handler = (*LogHandler)(nil)
