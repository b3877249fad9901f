package handlers

import (
	"context"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Params of the "filter" handler.
const (
	filterDrop = "drop"
	filterKeep = "keep"
)

// filterParams are the params of the "filter" handler. Both are criteria
// in the syntax of a trigger's match_criteria (one entry or a list; an
// event matches the list when it matches one entry), with the keys that
// test one event: event_type, timestamp and traits.
type filterParams struct {
	// Drop removes the events that match.
	Drop criteriaNode `yaml:"drop"`
	// Keep removes the events that do not match.
	Keep criteriaNode `yaml:"keep"`
}

// Filter is the "filter" handler: it passes on the events that match keep
// (when given) and do not match drop (when given), in order. It has no
// side effects. A stream whose events are all dropped still completes; put
// a halt before the handlers that must not run on an empty list.
type Filter struct {
	drop, keep []*trigger.Criteria
}

// NewFilter is the factory of the "filter" handler.
func NewFilter(p pipeline.Params) (pipeline.Builder, error) {
	var cfg filterParams
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if !p.Has(filterDrop) && !p.Has(filterKeep) {
		return nil, p.Errorf("", "needs drop or keep criteria (or both)")
	}
	drop, err := criteriaParam(p, filterDrop, cfg.Drop)
	if err != nil {
		return nil, err
	}
	keep, err := criteriaParam(p, filterKeep, cfg.Keep)
	if err != nil {
		return nil, err
	}
	f := &Filter{drop: drop, keep: keep}
	return func() (pipeline.Handler, error) { return f, nil }, nil
}

// HandleEvents returns the events that pass the filter, in a new slice.
func (f *Filter) HandleEvents(_ context.Context, events []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	out := make([]stream.Event, 0, len(events))
	for _, ev := range events {
		if f.keep != nil && !trigger.MatchAny(f.keep, ev) {
			continue
		}
		if trigger.MatchAny(f.drop, ev) {
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}

// Commit does nothing.
func (*Filter) Commit(context.Context) error { return nil }

// Rollback does nothing.
func (*Filter) Rollback(context.Context) error { return nil }

var _ pipeline.Handler = (*Filter)(nil)
