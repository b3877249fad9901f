package dbtest

import (
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what is logged.
type recorder struct {
	testing.TB
	lines    []string
	cleanups []func()
}

func (r *recorder) Helper()          {}
func (r *recorder) Log(args ...any)  { r.lines = append(r.lines, args[0].(string)) }
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) end() {
	for _, f := range r.cleanups {
		f()
	}
}

func TestLogger(t *testing.T) {
	r := &recorder{TB: t}
	log := Logger(r).With("component", "test").WithGroup("g")
	log.Info("claimed stream", "stream_id", 7)
	log.Debug("tick")
	r.end()
	log.Info("after the end")
	if len(r.lines) != 2 {
		t.Fatalf("logged %d lines, want 2: %q", len(r.lines), r.lines)
	}
	if want := `level=INFO msg="claimed stream" component=test g.stream_id=7`; r.lines[0] != want {
		t.Errorf("line = %q, want %q", r.lines[0], want)
	}
	if !strings.Contains(r.lines[1], "level=DEBUG") {
		t.Errorf("debug line = %q", r.lines[1])
	}
}
