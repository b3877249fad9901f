// Package timex implements the time-expression language used by trigger
// expirations, distinguishing-trait mappings, criteria and trimming.
//
// An expression is parsed once with Parse and evaluated many times with
// Expr.Eval, which takes the reference time ("now", the value of $timestamp
// when the caller supplies none) explicitly: the package has no clock.
package timex

import (
	"errors"
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
}

func (e *SyntaxError) Error() string {
	return "timex: " + e.Msg
}

// EvalError is returned by Expr.Eval: undefined variable, unknown function,
// impossible calendar result.
type EvalError struct {
	Expr string
	Msg  string
}

func (e *EvalError) Error() string { return "timex: " + e.Msg }

// Result is the value of an expression: a timestamp (Begin == End, IsRange
// false) or the half-open range [Begin, End).
type Result struct {
	Begin, End time.Time
	IsRange    bool
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

// Expr is a parsed expression, safe for concurrent use.
type Expr struct {
	src string
}

// Parse parses an expression.
func Parse(src string) (*Expr, error) {
	return nil, errors.New("timex: not implemented")
}

// String returns the source text of the expression.
func (e *Expr) String() string { return e.src }

// Eval evaluates the expression. vars holds the named variables ($first,
// $last, ...); $timestamp is vars["timestamp"] when present, otherwise now.
func (e *Expr) Eval(now time.Time, vars map[string]time.Time) (Result, error) {
	return Result{}, errors.New("timex: not implemented")
}
