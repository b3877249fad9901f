package handlers

import (
	"context"
	"strings"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// Logger is the "logger" handler: it logs the number of events and their
// types and ids at info level and passes the events on unchanged. It has
// no params.
type Logger struct{}

// NewLogger is the factory of the "logger" handler.
func NewLogger(p pipeline.Params) (pipeline.Builder, error) {
	var cfg struct{}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	return func() (pipeline.Handler, error) { return Logger{}, nil }, nil
}

// HandleEvents logs the events and returns them unchanged.
func (Logger) HandleEvents(ctx context.Context, events []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.Type + ": " + e.MessageID
	}
	env.Log().InfoContext(ctx, "received events", "count", len(events), "events", strings.Join(ids, ", "))
	return events, nil
}

// Commit does nothing.
func (Logger) Commit(context.Context) error { return nil }

// Rollback does nothing.
func (Logger) Rollback(context.Context) error { return nil }

var _ pipeline.Handler = Logger{}
