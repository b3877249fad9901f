package trigger

import (
	"fmt"
	"time"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger/timex"
)

// Defaults of the optional fields of a trigger definition.
const (
	// DefaultDebugLevel: no debug statistics.
	DefaultDebugLevel = 0
	// DefaultFireDelay: a stream is ready to fire as soon as its fire
	// criteria are met.
	DefaultFireDelay = 0 * time.Second
)

// Definition is one compiled trigger of triggers.yaml. It is built by Parse
// or Load and is read-only afterwards: all of its methods are safe for
// concurrent use, and no method parses or compiles anything.
type Definition struct {
	// Name is the trigger's name, also the name of every stream it
	// creates.
	Name string
	// DebugLevel: 0 none, 1 counters, 2 also mismatch reasons.
	DebugLevel int
	// DistinguishedBy says how events are grouped into streams, in order.
	DistinguishedBy []Distinguisher
	// Expiration is evaluated with $first and $last (the stream's earliest
	// and latest event times) and $timestamp (now).
	Expiration *timex.Expr
	// FireDelay is added to the time the fire criteria are met to give the
	// stream's fire timestamp.
	FireDelay time.Duration
	// FirePipeline and ExpirePipeline name the pipelines run when a stream
	// fires or expires; "" means none (at least one is set).
	FirePipeline   string
	ExpirePipeline string
	// MatchCriteria select the events the trigger collects: the first
	// matching entry wins. FireCriteria must all be satisfied for a stream
	// to fire. LoadCriteria are validated and otherwise unused.
	MatchCriteria []*Criteria
	FireCriteria  []*Criteria
	LoadCriteria  []*Criteria
	// OnChange says what becomes of the trigger's open streams when a new
	// version of the definitions changes or replaces this definition
	// (the policy of the new version's definition counts). Default Keep.
	OnChange ChangePolicy

	// File and Line locate the definition.
	File string
	Line int

	// texts holds each key's value in a canonical form (aliases and merge
	// keys resolved), for Diff.
	texts map[string]string
}

// Distinguisher is one entry of distinguished_by: a trait name, and for the
// mapping form {trait: expression} the expression giving the value from the
// event's trait with $timestamp bound to it (typically "day").
type Distinguisher struct {
	Trait string
	Expr  *timex.Expr // nil for the plain form
}

// Match returns the index of the first match criteria entry the event
// satisfies. The event matches only if it also has every distinguishing
// trait, read through that entry's map_distinguished_by: a missing
// (or null, which is the same) distinguishing trait is no match.
func (d *Definition) Match(ev stream.Event) (criteriaIndex int, ok bool) {
	i, ok := d.match(&ev, nil)
	if !ok {
		return 0, false
	}
	return i, true
}

// Distinguish returns the distinguishing traits of an event that matched
// match criteria entry criteriaIndex. A plain entry takes the value of the
// event's trait; a mapping entry evaluates its expression with $timestamp
// bound to the trait's datetime: a range result gives a stream.TimeRange, a
// timestamp a stream.Datetime. The source trait is the entry's trait name,
// or what the matched entry's map_distinguished_by maps it to. ok is false
// when a source trait is missing, when an expression's source is not a
// datetime, or when the expression cannot be evaluated: the event then
// belongs to no stream of this trigger. DistinguishError says why.
func (d *Definition) Distinguish(ev stream.Event, criteriaIndex int) (map[string]stream.Value, bool) {
	dist, err := d.DistinguishError(ev, criteriaIndex)
	return dist, err == nil
}

// DistinguishError is Distinguish with the reason the values could not be
// computed: a missing source trait, an expression source that is not a
// datetime, or the expression's *timex.EvalError.
func (d *Definition) DistinguishError(ev stream.Event, criteriaIndex int) (map[string]stream.Value, error) {
	var c *Criteria
	if criteriaIndex >= 0 && criteriaIndex < len(d.MatchCriteria) {
		c = d.MatchCriteria[criteriaIndex]
	}
	out := make(map[string]stream.Value, len(d.DistinguishedBy))
	for _, dist := range d.DistinguishedBy {
		src := c.source(dist.Trait)
		v, ok := ev.Lookup(src)
		if !ok {
			return nil, fmt.Errorf("trigger %q: distinguished_by %s: the event has no trait %q", d.Name, dist.Trait, src)
		}
		if dist.Expr != nil {
			if v.Kind() != stream.KindDatetime {
				return nil, fmt.Errorf("trigger %q: distinguished_by %s: trait %q is a %s, not a datetime", d.Name, dist.Trait, src, v.Kind())
			}
			t := v.Time()
			r, err := dist.Expr.Eval(t, map[string]time.Time{stream.KeyTimestamp: t})
			if err != nil {
				return nil, fmt.Errorf("trigger %q: distinguished_by %s: %w", d.Name, dist.Trait, err)
			}
			if r.IsRange {
				v = stream.TimeRange(r.Begin, r.End)
			} else {
				v = stream.Datetime(r.Timestamp())
			}
		}
		out[dist.Trait] = v
	}
	return out, nil
}

// source returns the event trait a distinguishing trait is read from. c may
// be nil (no mapping).
func (c *Criteria) source(trait string) string {
	if c == nil {
		return trait
	}
	if src, ok := c.MapDistinguishedBy[trait]; ok {
		return src
	}
	return trait
}

// Expire evaluates the expiration for a stream whose earliest and latest
// events are first and last; $timestamp is now. A range result gives its
// begin.
func (d *Definition) Expire(now, first, last time.Time) (time.Time, error) {
	r, err := d.Expiration.Eval(now, map[string]time.Time{"first": first, "last": last})
	if err != nil {
		return time.Time{}, fmt.Errorf("trigger %q: expiration %q: %w", d.Name, d.Expiration.String(), err)
	}
	return r.Timestamp(), nil
}

// FireAt returns the fire timestamp of a stream whose fire criteria were
// found satisfied at now: now plus the fire delay.
func (d *Definition) FireAt(now time.Time) time.Time {
	return now.Add(d.FireDelay)
}

// FireCounts adds one event's contributions to the per-criterion counts of
// the fire criteria and returns the updated counts: counts[i] is how many
// events so far matched FireCriteria[i], capped at its Number. counts may
// be nil (no events yet) and is updated in place when long enough. Because
// counts only grow, a stream's counts can be kept and extended event by
// event instead of re-reading all of its events.
func (d *Definition) FireCounts(ev stream.Event, counts []int) []int {
	if len(counts) < len(d.FireCriteria) {
		counts = append(counts, make([]int, len(d.FireCriteria)-len(counts))...)
	}
	for i, c := range d.FireCriteria {
		if counts[i] >= c.Number {
			continue
		}
		if c.Match(ev) {
			counts[i]++
		}
	}
	return counts
}

// Satisfied reports whether counts (as returned by FireCounts) satisfy
// every fire criterion. An empty fire_criteria list is always satisfied, as
// is a criterion with number 0.
func (d *Definition) Satisfied(counts []int) bool {
	for i, c := range d.FireCriteria {
		n := 0
		if i < len(counts) {
			n = counts[i]
		}
		if n < c.Number {
			return false
		}
	}
	return true
}

// ShouldFire reports whether the events of a stream satisfy the fire
// criteria: each criterion independently counts the events matching it,
// and every one must reach its number. The same event may count for
// several criteria.
func (d *Definition) ShouldFire(events []stream.Event) bool {
	var counts []int
	for _, ev := range events {
		counts = d.FireCounts(ev, counts)
	}
	return d.Satisfied(counts)
}
