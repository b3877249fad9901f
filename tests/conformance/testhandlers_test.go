package conformance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/pipeline/handlers"
	"github.com/winchester-go/winchester/stream"
)

// The test handlers of the conformance README ("Test handlers"): record,
// fail, fail_once, commit_fail, rollback_fail, emit, drop and bad_init. They
// write what they are asked to do into a journal that runners compare with
// the vectors' "journal".

// journalEntry is one observed handler call, shaped like the vectors'
// journal entries.
type journalEntry struct {
	Handler string   `yaml:"handler"`
	Op      string   `yaml:"op"`
	Stream  int      `yaml:"stream,omitempty"`
	Events  []string `yaml:"events,omitempty"`
}

// journal records the calls of the test handlers of one case or scenario.
// It is safe for concurrent use.
type journal struct {
	// Ordinal maps a stream id to the stream's creation ordinal (nil: the
	// id is the ordinal).
	Ordinal func(streamID int64) int

	mu      sync.Mutex
	entries []journalEntry
	failed  map[string]bool // fail_once labels that already failed
}

func (j *journal) add(e journalEntry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, e)
}

// take returns the entries recorded so far and clears the journal.
func (j *journal) take() []journalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.entries
	j.entries = nil
	return out
}

// firstUse reports whether label is used by fail_once for the first time.
func (j *journal) firstUse(label string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failed == nil {
		j.failed = map[string]bool{}
	}
	if j.failed[label] {
		return false
	}
	j.failed[label] = true
	return true
}

func (j *journal) ordinal(id int64) int {
	if j.Ordinal != nil {
		return j.Ordinal(id)
	}
	return int(id)
}

// errTestHandler is what the failing test handlers return.
var errTestHandler = errors.New("test handler failure")

// testHandlerKinds are the names the test handlers are registered under.
var testHandlerKinds = []string{"record", "fail", "fail_once", "commit_fail", "rollback_fail", "emit", "drop", "bad_init"}

// newTestRegistry returns the built-in handlers plus the test handlers
// writing into j. The registry is closed when the test ends.
func newTestRegistry(t *testing.T, j *journal) *pipeline.Registry {
	t.Helper()
	reg := pipeline.NewRegistry()
	handlers.RegisterBuiltins(reg)
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("close registry: %v", err)
		}
	})
	for _, kind := range testHandlerKinds {
		reg.Register(kind, testHandlerFactory(kind, j))
	}
	return reg
}

// testHandlerParams are the params every test handler accepts.
type testHandlerParams struct {
	Label     string         `yaml:"label"`
	Event     map[string]any `yaml:"event"`
	EventType string         `yaml:"event_type"`
}

func testHandlerFactory(kind string, j *journal) pipeline.Factory {
	return func(p pipeline.Params) (pipeline.Builder, error) {
		var cfg testHandlerParams
		if err := p.Decode(&cfg); err != nil {
			return nil, err
		}
		if cfg.Label == "" {
			cfg.Label = kind
		}
		h := &testHandler{kind: kind, label: cfg.Label, dropType: cfg.EventType, j: j}
		switch kind {
		case "emit":
			if cfg.Event == nil {
				return nil, p.Errorf("event", "emit needs an event")
			}
			ev, _, err := stream.NewEvent(cfg.Event)
			if err != nil {
				return nil, p.Errorf("event", "%v", err)
			}
			h.emit = ev
		case "drop":
			if cfg.EventType == "" {
				return nil, p.Errorf("event_type", "drop needs an event_type")
			}
		}
		return func() (pipeline.Handler, error) {
			if kind == "bad_init" {
				return nil, fmt.Errorf("bad_init %s: %w", cfg.Label, errTestHandler)
			}
			c := *h
			return &c, nil
		}, nil
	}
}

type testHandler struct {
	kind     string
	label    string
	emit     stream.Event
	dropType string
	j        *journal
}

func (h *testHandler) HandleEvents(_ context.Context, events []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.MessageID
	}
	h.j.add(journalEntry{Handler: h.label, Op: "handle_events", Stream: h.j.ordinal(env.StreamID), Events: ids})
	switch h.kind {
	case "fail":
		return nil, fmt.Errorf("%s: %w", h.label, errTestHandler)
	case "fail_once":
		if h.j.firstUse(h.label) {
			return nil, fmt.Errorf("%s (first use): %w", h.label, errTestHandler)
		}
	case "emit":
		return append(events[:len(events):len(events)], h.emit), nil
	case "drop":
		var out []stream.Event
		for _, e := range events {
			if e.Type != h.dropType {
				out = append(out, e)
			}
		}
		return out, nil
	}
	return events, nil
}

func (h *testHandler) Commit(context.Context) error {
	h.j.add(journalEntry{Handler: h.label, Op: "commit"})
	if h.kind == "commit_fail" {
		return fmt.Errorf("%s commit: %w", h.label, errTestHandler)
	}
	return nil
}

func (h *testHandler) Rollback(context.Context) error {
	h.j.add(journalEntry{Handler: h.label, Op: "rollback"})
	if h.kind == "rollback_fail" {
		return fmt.Errorf("%s rollback: %w", h.label, errTestHandler)
	}
	return nil
}

// testLogger returns a logger writing to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
