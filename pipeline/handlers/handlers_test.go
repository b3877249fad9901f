package handlers

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// build makes one handler of a factory from params.
func build(t *testing.T, f pipeline.Factory, name string, params map[string]any) pipeline.Handler {
	t.Helper()
	p, err := pipeline.ParamsFromMap(name, params)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f(p)
	if err != nil {
		t.Fatalf("%s factory(%v): %v", name, params, err)
	}
	h, err := b()
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return h
}

// event builds a test event from a flat map; "timestamp" defaults to a
// fixed time.
func event(t testing.TB, raw map[string]any) stream.Event {
	t.Helper()
	if _, ok := raw["timestamp"]; !ok {
		raw["timestamp"] = "2014-08-02T00:05:00"
	}
	e, dropped, err := stream.NewEvent(raw)
	if err != nil || len(dropped) > 0 {
		t.Fatalf("NewEvent(%v): %v %v", raw, err, dropped)
	}
	return e
}

func dt(s string) map[string]any { return map[string]any{"$datetime": s} }

// testLogger writes to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	// The worker's run logger carries stream_id; the handler must not add
	// it again (JSON logs would have the key twice).
	env := pipeline.NewEnv(5, "trig", slog.New(slog.NewTextHandler(&buf, nil)).With("stream_id", int64(5)))
	h := build(t, NewLogger, "logger", nil)
	in := []stream.Event{
		{MessageID: "m1", Type: "a.b", Timestamp: time.Unix(0, 0)},
		{MessageID: "m2", Type: "c.d", Timestamp: time.Unix(1, 0)},
	}
	out, err := h.HandleEvents(t.Context(), in, env)
	if err != nil || len(out) != 2 {
		t.Fatalf("HandleEvents = %d events, %v", len(out), err)
	}
	got := buf.String()
	for _, want := range []string{"level=INFO", "msg=\"received events\"", "stream_id=5", "count=2", `events="a.b: m1, c.d: m2"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %q lacks %q", got, want)
		}
	}
	if n := strings.Count(got, "stream_id="); n != 1 {
		t.Errorf("log line %q has stream_id %d times, want once", got, n)
	}
	if err := h.Commit(context.Background()); err != nil {
		t.Error(err)
	}
	if err := h.Rollback(context.Background()); err != nil {
		t.Error(err)
	}
}
