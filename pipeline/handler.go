package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/winchester-go/winchester/stream"
)

// Handler is one step of a pipeline: HandleEvents transforms the event list
// without external side effects, Commit performs the side effects after
// every handler succeeded, Rollback discards the run's work. A fresh Handler
// is built for every run, so it may keep per-run state between HandleEvents
// and Commit. See the package doc for the whole contract.
type Handler interface {
	HandleEvents(ctx context.Context, events []stream.Event, env *Env) ([]stream.Event, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Builder makes a fresh Handler for one run of a pipeline.
type Builder func() (Handler, error)

// Factory is a registered handler type. It receives the params of one
// pipeline entry, decodes them strictly, validates them and returns the
// Builder used for every run of that entry. Errors are configuration
// errors; return them from Params.Decode or Params.Errorf so they carry the
// file and line.
type Factory func(p Params) (Builder, error)

// ErrHalt is returned (possibly wrapped) by HandleEvents to stop the chain
// on purpose: the events it returns become the final list, the remaining
// handlers are skipped, and the handlers that ran are committed.
var ErrHalt = errors.New("pipeline: halt")

// Env is the environment of one run of a pipeline: the stream being
// processed and a scratch map shared by all handlers of the run (earlier
// handlers leave data there for later ones). The scratch map is pre-filled
// with "stream_id" (int64) and "stream_name" (string). An Env belongs to
// one run and is not safe for concurrent use.
type Env struct {
	StreamID   int64
	StreamName string
	// Action is "fire" or "expire" when a worker runs the pipeline ("" for
	// runs outside a worker); Pipeline is the pipeline's name.
	Action   string
	Pipeline string
	// DistinguishedBy are the stream's distinguishing traits (nil outside a
	// worker). Read-only.
	DistinguishedBy map[string]stream.Value
	// IdempotencyKey identifies the stream's run durably: it is the same on
	// every retry and rescue of the stream, and differs between streams.
	// Handlers with external side effects send it so that a receiver can
	// drop repeats (side effects are at least once). Run fills it in when
	// empty.
	IdempotencyKey string
	// Logger receives the handlers' log lines (nil: discard).
	Logger *slog.Logger
	// StepFunc, when set, is called after every HandleEvents and Commit
	// call of the run (metrics), on the run's goroutine.
	StepFunc func(Step)
	values   map[string]any
}

// Step is one handler call of a run: a HandleEvents or a Commit (Op is
// OpHandle or OpCommit), how long it took and its error (nil on success;
// ErrHalt for a handler that halted the chain).
type Step struct {
	// Trigger is the stream's trigger (Env.StreamName), Pipeline and
	// Action those of the Env.
	Trigger  string
	Pipeline string
	Action   string
	// Handler is the entry's handler name, Index its position in the
	// pipeline (0-based).
	Handler  string
	Index    int
	Op       string
	Duration time.Duration
	Err      error
}

// step reports a handler call to StepFunc.
func (e *Env) step(handler string, index int, op string, d time.Duration, err error) {
	if e.StepFunc == nil {
		return
	}
	e.StepFunc(Step{Trigger: e.StreamName, Pipeline: e.Pipeline, Action: e.Action,
		Handler: handler, Index: index, Op: op, Duration: d, Err: err})
}

// NewEnv returns the environment of one run.
func NewEnv(streamID int64, streamName string, logger *slog.Logger) *Env {
	return &Env{StreamID: streamID, StreamName: streamName, Logger: logger}
}

// Get returns the scratch value stored under key. "stream_id" and
// "stream_name" are always present.
func (e *Env) Get(key string) (any, bool) {
	switch key {
	case "stream_id":
		if _, ok := e.values[key]; !ok {
			return e.StreamID, true
		}
	case "stream_name":
		if _, ok := e.values[key]; !ok {
			return e.StreamName, true
		}
	}
	v, ok := e.values[key]
	return v, ok
}

// Set stores a scratch value under key.
func (e *Env) Set(key string, v any) {
	if e.values == nil {
		e.values = map[string]any{}
	}
	e.values[key] = v
}

// Log returns the run's logger, never nil. The worker's logger already
// carries stream_id, trigger and action: handlers add only their own
// attributes (adding stream_id again writes it twice in JSON logs).
func (e *Env) Log() *slog.Logger {
	if e == nil || e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}
