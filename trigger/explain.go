package trigger

import (
	"github.com/winchester-go/winchester/stream"
)

// Mismatch reasons, in the words of the original's debug statistics.
const (
	ReasonNoMatchingCriteria = "No matching criteria"
	ReasonWrongEventType     = "Wrong event type"
	ReasonNotTimeYet         = "Not time yet."
	ReasonNoReferencedTrait  = "Time: no referenced trait"
	ReasonNotInTimerange     = "Not in timerange"
	ReasonNotEnoughCriteria  = "Not enough matching criteria"
)

// ExplainMatch returns why an event does not match the trigger, for debug
// statistics (debug_level 2): the reason each match criteria entry failed,
// in order, then ReasonNoMatchingCriteria; or "not '<trait>'" for a missing
// distinguishing trait. It returns nil when the event matches. It repeats
// the work of Match, so call it only when the reasons are wanted.
func (d *Definition) ExplainMatch(ev stream.Event) []string {
	var reasons []string
	for _, c := range d.MatchCriteria {
		r := c.Explain(ev)
		if r != "" {
			reasons = append(reasons, r)
			continue
		}
		for _, dist := range d.DistinguishedBy {
			if _, ok := ev.Lookup(c.source(dist.Trait)); !ok {
				return append(reasons, "not '"+c.source(dist.Trait)+"'")
			}
		}
		return nil
	}
	return append(reasons, ReasonNoMatchingCriteria)
}

// ExplainFire returns why counts do not satisfy the fire criteria
// (ReasonNotEnoughCriteria), or "" when they do.
func (d *Definition) ExplainFire(counts []int) string {
	if d.Satisfied(counts) {
		return ""
	}
	return ReasonNotEnoughCriteria
}

// Explain returns why the event does not satisfy the entry, or "" when it
// does: ReasonWrongEventType; ReasonNoReferencedTrait or ReasonNotTimeYet
// for the timestamp condition; for a trait criterion "not <trait>" (absent),
// "== failed", "> failed", "< failed", or for a datetime criterion
// "Time: not '<trait>'", ReasonNoReferencedTrait or ReasonNotInTimerange.
func (c *Criteria) Explain(ev stream.Event) string {
	if !c.MatchType(ev.Type) {
		return ReasonWrongEventType
	}
	vars := ev.Datetimes()
	if c.Timestamp != nil {
		r, err := c.Timestamp.Eval(ev.Timestamp, vars)
		if err != nil {
			return ReasonNoReferencedTrait
		}
		if !r.Contains(ev.Timestamp) {
			return ReasonNotTimeYet
		}
	}
	for i := range c.Traits {
		tc := &c.Traits[i]
		v, ok := ev.Lookup(tc.Trait)
		switch {
		case !ok && tc.Kind == KindDatetime:
			return "Time: not '" + tc.Trait + "'"
		case !ok:
			return "not " + tc.Trait
		}
		switch tc.Kind {
		case KindEquals:
			if !equalValues(v, tc.Value) {
				return "== failed"
			}
		case KindInt, KindFloat:
			if !compareTyped(v, tc.Op, tc.Value) {
				if tc.Op == OpEqual {
					return "== failed"
				}
				return tc.Op + " failed"
			}
		case KindDatetime:
			if v.Kind() != stream.KindDatetime {
				return ReasonNotInTimerange
			}
			r, err := tc.Expr.Eval(ev.Timestamp, vars)
			if err != nil {
				return ReasonNoReferencedTrait
			}
			if !r.Contains(v.Time()) {
				return ReasonNotInTimerange
			}
		}
	}
	return ""
}
