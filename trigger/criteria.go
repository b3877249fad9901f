package trigger

import (
	"time"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger/timex"
)

// DefaultNumber is the default "number" of a criteria entry: how many
// matching events a fire criterion needs.
const DefaultNumber = 1

// Criteria is one entry of match_criteria, fire_criteria or load_criteria,
// compiled at load time: evaluating it against an event parses nothing.
// A Criteria is built by Parse and is read-only afterwards; it is safe for
// concurrent use.
type Criteria struct {
	// Include holds the event-type patterns an event must match one of
	// ("*" when the definition names none); Exclude the patterns, without
	// their "!", it must match none of.
	Include []string
	Exclude []string
	// Number is how many matching events a fire criterion needs
	// (DefaultNumber when not set; 0 is always satisfied).
	Number int
	// Timestamp, when not nil, must contain the event's timestamp. It is
	// evaluated with the event's datetime traits as variables.
	Timestamp *timex.Expr
	// MapDistinguishedBy maps a distinguishing trait name to the event
	// trait its value is read from when this entry is the one that matched.
	MapDistinguishedBy map[string]string
	// Traits are the trait criteria, all of which must match, in the order
	// of the definition.
	Traits []TraitCriterion

	// Line is the line of the entry in its file.
	Line int

	types stream.TypeFilter // Include and Exclude, compiled
}

// CriterionKind says how a trait criterion compares.
type CriterionKind int

// Trait criterion kinds.
const (
	// KindEquals is equality with a constant (also {string: x} and
	// {text: x}).
	KindEquals CriterionKind = iota + 1
	// KindInt is {int: "<op> <integer>"}, or {int: x} with a non-string x:
	// operator "=" and the operand x as written (not converted), as in the
	// original.
	KindInt
	// KindFloat is {float: "<op> <number>"}, or {float: x} with a
	// non-string x: operator "=" and the operand x as written.
	KindFloat
	// KindDatetime is {datetime: <timex>}: membership of the trait's value.
	KindDatetime
)

// String returns the kind's name as used in normalised renderings.
func (k CriterionKind) String() string {
	switch k {
	case KindEquals:
		return "equals"
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindDatetime:
		return "datetime"
	}
	return "INVALID"
}

// Numeric comparison operators of int and float criteria.
const (
	OpEqual   = "="
	OpGreater = ">"
	OpLess    = "<"
)

// TraitCriterion is one compiled entry of a criteria "traits" block.
type TraitCriterion struct {
	Trait string
	Kind  CriterionKind
	// Op is the comparison of KindInt and KindFloat criteria (OpEqual,
	// OpGreater or OpLess), "" otherwise.
	Op string
	// Value is the equality constant or the numeric operand.
	Value stream.Value
	// Expr is the expression of a KindDatetime criterion.
	Expr *timex.Expr
}

// MatchType reports whether an event type passes the entry's event-type
// patterns: it matches one inclusion and no exclusion.
func (c *Criteria) MatchType(eventType string) bool {
	return c.types.Match(eventType)
}

// Match reports whether the event satisfies the entry: event type, then
// the timestamp condition, then every trait criterion, stopping at the
// first failure. A time expression that cannot be evaluated for this event
// (for instance because it names a trait the event lacks) and a trait of
// the wrong type are mismatches, never errors. Explain and WhyNot give the
// reason of a mismatch from the same check.
func (c *Criteria) Match(ev stream.Event) bool {
	return c.check(&ev).fail == failNone
}

// failure is the first condition of an entry an event does not meet.
type failure int

const (
	failNone failure = iota
	failType
	failTimestampEval    // the timestamp expression cannot be evaluated
	failTimestampOutside // the timestamp is not in its range
	failTraitMissing
	failEquals
	failCompare
	failNotDatetime     // a datetime criterion's trait is of another type
	failDatetimeEval    // a datetime criterion's expression cannot be evaluated
	failDatetimeOutside // the trait's value is not in the range
	failKind            // a criterion of an unknown kind (never built by Parse)
)

// checked is the result of one check: the failure, and for a failed
// trait criterion its index in Traits (-1 otherwise). It is two words, so
// the hot path (Match) pays nothing for the reasons; mismatch reads the
// event's value and any evaluation error again when they are wanted.
type checked struct {
	fail  failure
	trait int
}

// check is the one matcher of a criteria entry: Match, Explain and WhyNot
// all read its verdict.
func (c *Criteria) check(ev *stream.Event) checked {
	if !c.MatchType(ev.Type) {
		return checked{failType, -1}
	}
	var vars map[string]time.Time // built once, only when needed
	if c.Timestamp != nil {
		vars = ev.Datetimes()
		r, err := c.Timestamp.Eval(ev.Timestamp, vars)
		if err != nil {
			return checked{failTimestampEval, -1}
		}
		if !r.Contains(ev.Timestamp) {
			return checked{failTimestampOutside, -1}
		}
	}
	for i := range c.Traits {
		tc := &c.Traits[i]
		v, ok := ev.Lookup(tc.Trait)
		if !ok {
			return checked{failTraitMissing, i}
		}
		switch tc.Kind {
		case KindEquals:
			if !equalValues(v, tc.Value) {
				return checked{failEquals, i}
			}
		case KindInt, KindFloat:
			if !compareTyped(v, tc.Op, tc.Value) {
				return checked{failCompare, i}
			}
		case KindDatetime:
			if v.Kind() != stream.KindDatetime {
				return checked{failNotDatetime, i}
			}
			if vars == nil {
				vars = ev.Datetimes()
			}
			r, err := tc.Expr.Eval(ev.Timestamp, vars)
			if err != nil {
				return checked{failDatetimeEval, i}
			}
			if !r.Contains(v.Time()) {
				return checked{failDatetimeOutside, i}
			}
		default:
			return checked{failKind, i}
		}
	}
	return checked{failNone, -1}
}

// equalValues is the equality of criteria: typed, except that int and
// float compare numerically (3 equals 3.0, never "3").
func equalValues(v, c stream.Value) bool {
	if v.Kind() == c.Kind() {
		return v.Equal(c)
	}
	return compareNumber(v, OpEqual, c)
}

// compareTyped is the comparison of an int or float criterion: its "="
// is the equality of equalValues, whatever the operand (the original
// compares {int: 4} and {int: "4"} with ==, and keeps a non-string operand
// as written); > and < compare numbers.
func compareTyped(v stream.Value, op string, operand stream.Value) bool {
	if op == OpEqual {
		return equalValues(v, operand)
	}
	return compareNumber(v, op, operand)
}

// compareNumber evaluates "v op operand" for numeric v; any other kind of
// v does not match.
func compareNumber(v stream.Value, op string, operand stream.Value) bool {
	if v.Kind() == stream.KindInt && operand.Kind() == stream.KindInt {
		a, b := v.IntValue(), operand.IntValue()
		switch op {
		case OpEqual:
			return a == b
		case OpGreater:
			return a > b
		case OpLess:
			return a < b
		}
		return false
	}
	a, ok := v.Number()
	if !ok {
		return false
	}
	b, ok := operand.Number()
	if !ok {
		return false
	}
	switch op {
	case OpEqual:
		return a == b
	case OpGreater:
		return a > b
	case OpLess:
		return a < b
	}
	return false
}
