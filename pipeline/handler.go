package pipeline

import (
	"log/slog"

	"github.com/winchester-go/winchester/pipeline/internal/core"
)

// Handler is one step of a pipeline: HandleEvents transforms the event list
// without external side effects, Commit performs the side effects after
// every handler succeeded, Rollback discards the run's work. A fresh Handler
// is built for every run, so it may keep per-run state between HandleEvents
// and Commit.
type Handler = core.Handler

// Builder makes a fresh Handler for one run.
type Builder = core.Builder

// Factory is a registered handler type: it decodes and validates the params
// of one pipeline entry and returns the Builder for that entry's runs.
type Factory = core.Factory

// Env is the environment of one run: the stream and a scratch map shared by
// the handlers of the run.
type Env = core.Env

// Params are the params of one pipeline entry; Decode is strict.
type Params = core.Params

// ConfigError is a rejected pipelines.yaml entry or handler parameter; it
// names the file, line, pipeline, handler and parameter.
type ConfigError = core.ConfigError

// ErrHalt, returned (possibly wrapped) by HandleEvents, stops the chain on
// purpose: the remaining handlers are skipped and the run succeeds.
var ErrHalt = core.ErrHalt

// NewEnv returns the environment of one run of a pipeline over a stream.
func NewEnv(streamID int64, streamName string, logger *slog.Logger) *Env {
	return core.NewEnv(streamID, streamName, logger)
}

// ParamsFromMap builds the params of a handler entry from a Go map, for
// configuration built in code.
func ParamsFromMap(handler string, m map[string]any) (Params, error) {
	return core.ParamsFromMap(handler, m)
}
