package timex

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// SyntaxError is returned by Parse. Lexical is true when the input could not
// be tokenized (a lexer error), false for a grammar violation (a parse
// error, including premature end of input).
type SyntaxError struct {
	Expr    string
	Pos     int // 1-based column of the offending character or token
	Msg     string
	Lexical bool
	// Line is the 1-based line of the offending character or token (an
	// expression may span lines; newlines are whitespace).
	Line int
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("timex: parse %q: %s", e.Expr, e.Msg)
}

// EvalError is returned by Expr.Eval: undefined variable, unknown function,
// impossible calendar result.
type EvalError struct {
	Expr string
	Msg  string
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("timex: evaluate %q: %s", e.Expr, e.Msg)
}

// NameError is a name that evaluation would reject, found by Expr.Check:
// an unknown function, or a variable the caller does not supply.
type NameError struct {
	Expr string
	// Name is the function's name, or the variable's without "$".
	Name string
	// Func is set for a function, unset for a variable.
	Func bool
	// Known are the names available (variables without "$"), sorted.
	Known []string
}

func (e *NameError) Error() string {
	if e.Func {
		return fmt.Sprintf("timex: check %q: unknown function %s (known: %s)", e.Expr, e.Name, strings.Join(e.Known, ", "))
	}
	return fmt.Sprintf("timex: check %q: variable $%s is not available here (available: $%s)", e.Expr, e.Name, strings.Join(e.Known, ", $"))
}

// Unit is a unit of time: the unit of a duration part, and the unit a range
// function pins its range to (Hour, Day, Month or Year).
type Unit int

// The units, from the smallest to the largest. The order matters: it is the
// order used to compare durations.
const (
	Microsecond Unit = iota + 1
	Second
	Minute
	Hour
	Day
	Month
	Year
)

// String returns the unit's long name ("day").
func (u Unit) String() string {
	switch u {
	case Microsecond:
		return "microsecond"
	case Second:
		return "second"
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	case Day:
		return "day"
	case Month:
		return "month"
	case Year:
		return "year"
	}
	return fmt.Sprintf("Unit(%d)", int(u))
}

// symbol returns the canonical keyword of the unit in expressions ("d").
func (u Unit) symbol() string {
	switch u {
	case Microsecond:
		return "us"
	case Second:
		return "s"
	case Minute:
		return "m"
	case Hour:
		return "h"
	case Day:
		return "d"
	case Month:
		return "mo"
	case Year:
		return "y"
	}
	return "?"
}

// Result is the value of an expression: a timestamp (Begin == End, IsRange
// false) or the half-open range [Begin, End).
type Result struct {
	Begin, End time.Time
	IsRange    bool
	// Unit is set (Hour, Day, Month or Year) when the range comes from a
	// range function and is still pinned to PinnedTo: arithmetic with a
	// duration smaller than Unit re-aligns it so that it contains
	// PinnedTo. Zero for timestamps and plain ranges.
	Unit     Unit
	PinnedTo time.Time
}

// Timestamp returns the instant of a timestamp result, or the begin of a
// range (what the original's ".timestamp" gives).
func (r Result) Timestamp() time.Time { return r.Begin }

// Contains reports membership: begin <= t < end for a range, equality for a
// timestamp.
func (r Result) Contains(t time.Time) bool {
	if !r.IsRange {
		return t.Equal(r.Begin)
	}
	return !t.Before(r.Begin) && t.Before(r.End)
}

// String renders the result for logs and messages: the instant, or
// "[begin, end)", in ISO 8601 UTC.
func (r Result) String() string {
	if !r.IsRange {
		return formatTime(r.Begin)
	}
	return "[" + formatTime(r.Begin) + ", " + formatTime(r.End) + ")"
}

// Pinned reports whether the result is a range pinned to a unit.
func (r Result) Pinned() bool { return r.Unit != 0 }

// Expr is a parsed expression, safe for concurrent use.
type Expr struct {
	src  string
	root node
}

// Parse parses an expression. The error is a *SyntaxError.
func Parse(src string) (*Expr, error) {
	root, err := parse(src)
	if err != nil {
		return nil, err
	}
	return &Expr{src: src, root: root}, nil
}

// MustParse is like Parse but panics on error. It is meant for expressions
// written in the program itself.
func MustParse(src string) *Expr {
	e, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return e
}

// String returns the source text of the expression.
func (e *Expr) String() string { return e.src }

// Canonical returns a normalized rendering of the expression: single
// spaces, canonical unit keywords, juxtaposed durations summed per unit, no
// redundant parentheses. Parsing it gives the same expression.
func (e *Expr) Canonical() string {
	var b strings.Builder
	e.root.format(&b)
	return b.String()
}

// IsRange reports whether the expression yields a range (an explicit
// "a to b" or a range function, possibly with arithmetic) rather than a
// timestamp. The kind is decided by the syntax alone.
func (e *Expr) IsRange() bool { return e.root.isRange() }

// Vars returns the names of the variables the expression uses, sorted and
// without duplicates. A range function without argument uses "timestamp".
func (e *Expr) Vars() []string {
	seen := map[string]bool{}
	walk(e.root, func(n node) {
		switch n := n.(type) {
		case *varNode:
			seen[n.name] = true
		case *funcNode:
			if n.arg == nil {
				seen[timestampVar] = true
			}
		}
	})
	return sortedKeys(seen)
}

// Funcs returns the names of the range functions the expression calls,
// sorted and without duplicates. Names other than hour, day, month and year
// parse but fail at evaluation; callers may check them up front with
// KnownFunc.
func (e *Expr) Funcs() []string {
	seen := map[string]bool{}
	walk(e.root, func(n node) {
		if f, ok := n.(*funcNode); ok {
			seen[f.name] = true
		}
	})
	return sortedKeys(seen)
}

// KnownFunc reports whether name is a range function (hour, day, month,
// year).
func KnownFunc(name string) bool {
	_, ok := funcUnits[name]
	return ok
}

// Check reports the names the expression uses that Eval would reject,
// so that callers can refuse them when the expression is loaded rather
// than when it is first evaluated: every function other than hour, day,
// month and year, and, when vars is not nil, every variable other than
// those in vars and "timestamp" (which Eval always supplies). The error
// joins one *NameError per name: functions first, each kind sorted. A nil
// vars checks functions only, for callers whose variables are not known
// in advance (criteria, whose variables are an event's datetime traits).
func (e *Expr) Check(vars []string) error {
	var errs []error
	for _, f := range e.Funcs() {
		if !KnownFunc(f) {
			errs = append(errs, &NameError{Expr: e.src, Name: f, Func: true, Known: sortedKeys(funcNames())})
		}
	}
	if vars != nil {
		avail := map[string]bool{timestampVar: true}
		for _, v := range vars {
			avail[v] = true
		}
		for _, v := range e.Vars() {
			if !avail[v] {
				errs = append(errs, &NameError{Expr: e.src, Name: v, Known: sortedKeys(avail)})
			}
		}
	}
	return errors.Join(errs...)
}

func funcNames() map[string]bool {
	m := make(map[string]bool, len(funcUnits))
	for name := range funcUnits {
		m[name] = true
	}
	return m
}

// Eval evaluates the expression. vars holds the named variables ($first,
// $last, ...); $timestamp is vars["timestamp"] when present, otherwise now.
// Times are taken in UTC; results are UTC. The error is an *EvalError.
func (e *Expr) Eval(now time.Time, vars map[string]time.Time) (Result, error) {
	ev := evaluator{src: e.src, now: now, vars: vars}
	v, err := ev.eval(e.root)
	if err != nil {
		return Result{}, err
	}
	r := Result{Begin: v.begin, End: v.end, IsRange: v.isRange, Unit: v.unit}
	if v.unit != 0 {
		r.PinnedTo = v.pin
	}
	return r, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
