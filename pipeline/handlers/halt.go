package handlers

import (
	"context"
	"fmt"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Params of the "halt" handler.
const (
	haltMatch  = "match"
	haltUnless = "unless"
)

// haltParams are the params of the "halt" handler: exactly one of match
// and unless, criteria in the syntax of a trigger's match_criteria (one
// entry or a list), with the keys that test one event: event_type,
// timestamp and traits.
type haltParams struct {
	// Match halts the chain when at least one event matches.
	Match criteriaNode `yaml:"match"`
	// Unless halts the chain when no event matches.
	Unless criteriaNode `yaml:"unless"`
}

// Halt is the "halt" handler (a halting stage, in configuration): when its
// condition holds it stops the chain on purpose. The handlers after it
// neither run nor commit, the handlers before it commit, and the stream
// completes. Otherwise it passes the events on unchanged.
type Halt struct {
	criteria []*trigger.Criteria
	unless   bool
}

// NewHalt is the factory of the "halt" handler.
func NewHalt(p pipeline.Params) (pipeline.Builder, error) {
	var cfg haltParams
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	h := &Halt{}
	switch match, unless := p.Has(haltMatch), p.Has(haltUnless); {
	case match && unless:
		return nil, p.Errorf(haltUnless, "set match or unless, not both")
	case !match && !unless:
		return nil, p.Errorf("", "needs match or unless criteria")
	case unless:
		cs, err := criteriaParam(p, haltUnless, cfg.Unless)
		if err != nil {
			return nil, err
		}
		h.criteria, h.unless = cs, true
	default:
		cs, err := criteriaParam(p, haltMatch, cfg.Match)
		if err != nil {
			return nil, err
		}
		h.criteria = cs
	}
	return func() (pipeline.Handler, error) { return h, nil }, nil
}

// HandleEvents returns the events unchanged, with pipeline.ErrHalt when the
// chain stops here.
func (h *Halt) HandleEvents(_ context.Context, events []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	matched := ""
	for _, ev := range events {
		if trigger.MatchAny(h.criteria, ev) {
			matched = ev.MessageID
			break
		}
	}
	switch {
	case !h.unless && matched != "":
		return events, fmt.Errorf("event %s matches: %w", matched, pipeline.ErrHalt)
	case h.unless && matched == "":
		return events, fmt.Errorf("no event matches: %w", pipeline.ErrHalt)
	}
	return events, nil
}

// Commit does nothing.
func (*Halt) Commit(context.Context) error { return nil }

// Rollback does nothing.
func (*Halt) Rollback(context.Context) error { return nil }

var _ pipeline.Handler = (*Halt)(nil)
