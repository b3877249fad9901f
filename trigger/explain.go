package trigger

import (
	"fmt"
	"strings"

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

// Mismatch says why an event does not satisfy one match criteria entry of
// a trigger, or why the entry it satisfied cannot take it (a missing
// distinguishing trait).
type Mismatch struct {
	// Entry is the index of the match criteria entry; Line its line.
	Entry int
	Line  int
	// Reason is in the words of the original's debug statistics (what
	// Criteria.Explain returns, or "not '<trait>'" for a missing
	// distinguishing trait).
	Reason string
	// WrongType is true when the event type passes none of the entry's
	// event-type patterns.
	WrongType bool
	// Trait is the trait the failed condition reads ("" for the event type
	// and the timestamp condition); Criterion is the failed trait
	// criterion's index in the entry's Traits, -1 for other conditions.
	Trait     string
	Criterion int
	// Value is the event's value of Trait, the zero Value when the event
	// has no such trait.
	Value stream.Value
	// Detail says the same for people: which condition failed, with the
	// value the event had.
	Detail string
}

// WhyNot is how an event fares against a trigger's match criteria: the
// verdict of Match with the reasons behind it.
type WhyNot struct {
	// Matched is Match's verdict.
	Matched bool
	// CriteriaIndex is the entry whose criteria the event satisfied, -1
	// when none did. When it is set and Matched is false, the event lacks
	// a distinguishing trait (the last Mismatch says which).
	CriteriaIndex int
	// Mismatches holds, in order, why each entry before CriteriaIndex (or
	// every entry, when none was satisfied) failed, then the missing
	// distinguishing trait if that is why the event does not match.
	Mismatches []Mismatch
}

// First returns the mismatch that best says why the event does not
// match: a missing distinguishing trait, else the first entry whose event
// type the event passed, else the first entry. ok is false when the
// event matched or the trigger has no entry.
func (w WhyNot) First() (m Mismatch, ok bool) {
	if w.Matched || len(w.Mismatches) == 0 {
		return Mismatch{}, false
	}
	if w.CriteriaIndex >= 0 {
		return w.Mismatches[len(w.Mismatches)-1], true
	}
	for _, m := range w.Mismatches {
		if !m.WrongType {
			return m, true
		}
	}
	return w.Mismatches[0], true
}

// WhyNot matches the event as Match does and says why it does not match.
// It builds the reasons only for the entries that fail, so it costs more
// than Match: call it when the reasons are wanted.
func (d *Definition) WhyNot(ev stream.Event) WhyNot {
	var w WhyNot
	w.CriteriaIndex, w.Matched = d.match(&ev, &w.Mismatches)
	return w
}

// match is Match, recording why entries fail in why when it is not nil.
// It returns the index of the entry whose criteria the event satisfied
// (-1 none) even when a distinguishing trait is missing (ok false).
func (d *Definition) match(ev *stream.Event, why *[]Mismatch) (criteriaIndex int, ok bool) {
	for i, c := range d.MatchCriteria {
		r := c.check(ev)
		if r.fail != failNone {
			if why != nil {
				*why = append(*why, c.mismatch(i, *ev, r))
			}
			continue
		}
		for _, dist := range d.DistinguishedBy {
			src := c.source(dist.Trait)
			if _, ok := ev.Lookup(src); !ok {
				if why != nil {
					*why = append(*why, Mismatch{Entry: i, Line: c.Line, Reason: "not '" + src + "'",
						Trait: src, Criterion: -1,
						Detail: fmt.Sprintf("match criteria %d: the event has no distinguishing trait %q", i, src)})
				}
				return i, false
			}
		}
		return i, true
	}
	return -1, false
}

// ExplainMatch returns why an event does not match the trigger, for debug
// statistics (debug_level 2): the reason each match criteria entry failed,
// in order, then ReasonNoMatchingCriteria; or "not '<trait>'" for a missing
// distinguishing trait. It returns nil when the event matches. It repeats
// the work of Match, so call it only when the reasons are wanted.
func (d *Definition) ExplainMatch(ev stream.Event) []string {
	w := d.WhyNot(ev)
	if w.Matched {
		return nil
	}
	reasons := make([]string, 0, len(w.Mismatches)+1)
	for _, m := range w.Mismatches {
		reasons = append(reasons, m.Reason)
	}
	if w.CriteriaIndex < 0 {
		reasons = append(reasons, ReasonNoMatchingCriteria)
	}
	return reasons
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
	r := c.check(&ev)
	if r.fail == failNone {
		return ""
	}
	return c.reason(r)
}

// reason words a failed check as the original's debug statistics do.
func (c *Criteria) reason(r checked) string {
	switch r.fail {
	case failType:
		return ReasonWrongEventType
	case failTimestampEval, failDatetimeEval:
		return ReasonNoReferencedTrait
	case failTimestampOutside:
		return ReasonNotTimeYet
	case failTraitMissing:
		tc := &c.Traits[r.trait]
		if tc.Kind == KindDatetime {
			return "Time: not '" + tc.Trait + "'"
		}
		return "not " + tc.Trait
	case failEquals:
		return "== failed"
	case failCompare:
		if op := c.Traits[r.trait].Op; op != OpEqual {
			return op + " failed"
		}
		return "== failed"
	case failNotDatetime, failDatetimeOutside:
		return ReasonNotInTimerange
	}
	return "unknown criterion kind"
}

// WhyNot returns why the event does not satisfy the entry (index entry
// of its list), or ok false when it does.
func (c *Criteria) WhyNot(entry int, ev stream.Event) (m Mismatch, ok bool) {
	r := c.check(&ev)
	if r.fail == failNone {
		return Mismatch{}, false
	}
	return c.mismatch(entry, ev, r), true
}

// mismatch describes a failed check of entry i.
func (c *Criteria) mismatch(i int, ev stream.Event, r checked) Mismatch {
	m := Mismatch{Entry: i, Line: c.Line, Reason: c.reason(r), Criterion: r.trait}
	prefix := fmt.Sprintf("criteria %d: ", i)
	switch r.fail {
	case failType:
		m.WrongType = true
		m.Detail = fmt.Sprintf("%swrong event type: %q is not %s", prefix, ev.Type, c.TypeText())
		return m
	case failTimestampEval:
		_, err := c.Timestamp.Eval(ev.Timestamp, ev.Datetimes())
		m.Detail = fmt.Sprintf("%stimestamp %s: %v", prefix, c.Timestamp, err)
		return m
	case failTimestampOutside:
		m.Detail = fmt.Sprintf("%stimestamp %s is not in %s", prefix, stream.FormatTime(ev.Timestamp), c.Timestamp)
		return m
	}
	tc := &c.Traits[r.trait]
	m.Trait = tc.Trait
	m.Value, _ = ev.Lookup(tc.Trait)
	crit := tc.String()
	switch r.fail {
	case failTraitMissing:
		m.Detail = fmt.Sprintf("%smissing trait %q (trait criterion %s)", prefix, tc.Trait, crit)
	case failNotDatetime:
		m.Detail = fmt.Sprintf("%strait criterion %s failed: the event has the %s %s, not a datetime", prefix, crit, m.Value.Kind(), valueText(m.Value))
	case failDatetimeEval:
		_, err := tc.Expr.Eval(ev.Timestamp, ev.Datetimes())
		m.Detail = fmt.Sprintf("%strait criterion %s failed: %v", prefix, crit, err)
	default:
		m.Detail = fmt.Sprintf("%strait criterion %s failed: the event has %s", prefix, crit, valueText(m.Value))
	}
	return m
}

// valueText renders a value with its type when the text alone would
// mislead (the string "42" is not the int 42).
func valueText(v stream.Value) string {
	switch v.Kind() {
	case stream.KindString:
		return fmt.Sprintf("%q", v.Text())
	case stream.KindInt, stream.KindFloat:
		return v.String() + " (" + v.Kind().String() + ")"
	}
	return v.String()
}

// String renders the trait criterion for people: `state == "active"`,
// `memory_mb > 1024`, `launched_at in $first to $first + 1d`.
func (tc *TraitCriterion) String() string {
	switch tc.Kind {
	case KindEquals:
		return tc.Trait + " == " + valueText(tc.Value)
	case KindInt, KindFloat:
		op := tc.Op
		if op == OpEqual {
			op = "=="
		}
		return tc.Trait + " " + op + " " + tc.Value.String() + " (" + tc.Kind.String() + ")"
	case KindDatetime:
		if tc.Expr != nil {
			return tc.Trait + " in " + tc.Expr.String()
		}
	}
	return tc.Trait + " " + tc.Kind.String()
}

// TypeText renders the entry's event-type patterns for people: "one of
// compute.instance.*, image.*", "any type", "any type but *.start".
func (c *Criteria) TypeText() string {
	var b strings.Builder
	switch len(c.Include) {
	case 0:
		b.WriteString("any type")
	case 1:
		if c.Include[0] == "*" {
			b.WriteString("any type")
		} else {
			b.WriteString(c.Include[0])
		}
	default:
		b.WriteString("one of " + strings.Join(c.Include, ", "))
	}
	if len(c.Exclude) > 0 {
		b.WriteString(" but not " + strings.Join(c.Exclude, ", "))
	}
	return b.String()
}

// String renders the entry for people: its event types, timestamp
// condition and trait criteria, as "compute.instance.exists with
// state == \"active\"".
func (c *Criteria) String() string {
	parts := []string{c.TypeText()}
	if c.Timestamp != nil {
		parts = append(parts, "timestamp in "+c.Timestamp.String())
	}
	for i := range c.Traits {
		parts = append(parts, c.Traits[i].String())
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return parts[0] + " with " + strings.Join(parts[1:], ", ")
}
