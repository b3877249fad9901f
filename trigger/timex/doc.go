// Package timex implements the time-expression language used by trigger
// expirations, distinguishing-trait mappings, criteria and trimming.
//
// An expression is parsed once with Parse and evaluated many times with
// Expr.Eval, which takes the reference time ("now", the value of $timestamp
// when the caller supplies none) explicitly: the package has no clock. A
// parsed *Expr is immutable and safe for concurrent use.
//
// An expression yields either a timestamp (one instant) or a half-open
// range [begin, end). All times are UTC and limited to the years 1 to 9999.
//
// # Tokens
//
// Spaces, tabs and newlines separate tokens; any other character outside the
// tokens below (including ".", ",", ":", "!", a carriage return, any
// non-ASCII character) is a lexer error.
//
//	NUMBER      [0-9]+           decimal, leading zeros allowed, no sign, no fraction
//	+ - @       operators        add, subtract, replace
//	$           variable marker  "$last", "$ last"
//	( )         grouping and function arguments
//	IDENTIFIER  [a-zA-Z_][a-zA-Z0-9_]*, unless reserved
//	reserved    to, and the unit keywords:
//	            us (microsecond), s sec (second), m min (minute), h hr (hour),
//	            d (day), mo (month), y yr (year)
//
// Units are case-sensitive ("1H" is an error) and there is no week or
// millisecond unit. A unit must be followed by a space or a number before
// the next unit: "1d 2h" is a duration, "1d2h" is an error. Because unit
// keywords are reserved, variables cannot be named like them: $d, $m, $h,
// $s, $y, $us, $mo, $min, $sec, $hr, $yr and $to are parse errors (kept for
// compatibility with the original language). There is no member syntax:
// "$a.day" is a lexer error.
//
// # Grammar
//
//	expression := range | ts
//	ts         := "$" IDENTIFIER                 variable
//	            | ts ("+" | "-" | "@") duration
//	            | "(" ts ")"
//	range      := ts "to" ts                     explicit range
//	            | IDENTIFIER                     range function on $timestamp
//	            | IDENTIFIER "(" ts ")"          range function on a timestamp
//	            | range ("+" | "-" | "@") duration
//	            | "(" range ")"
//	duration   := part { part }                  juxtaposed parts add up per unit
//	part       := NUMBER unit | NUMBER           a bare NUMBER is "unitless"
//
// "to" binds loosest and both of its operands must be timestamps:
// "$a to $b + 1h" is "$a to ($b + 1h)"; "day($a) to $b" and "$a to $b to
// $c" are errors. "+", "-" and "@" apply left to right: "$a + 1h @ 0m 0s
// 0us" is "($a + 1h) @ 0m 0s 0us". A function argument must be a
// timestamp: "day(day)" and "day()" are errors. A unitless number is only
// allowed when the left operand is directly an explicit range or a range
// function ("($a to $b) + 1", "day @ 2", "hour + 30"); elsewhere, including
// "(day + 1h) + 6", it is a parse error. Unknown function names parse and
// fail at evaluation; Expr.Check finds them, and variables the caller
// will not supply, when the expression is loaded.
//
// # Evaluation
//
// $name is the variable's value; an undefined name is an evaluation error.
// $timestamp is vars["timestamp"] when given, otherwise the now passed to
// Eval.
//
// ts + d and ts - d apply the days, hours, minutes, seconds and
// microseconds first as an exact delta, then the months with year carry
// (keeping the day of the month), then the years. A day that does not exist
// ("2014-01-31 + 1mo", "2012-02-29 + 1y") is an evaluation error; because
// the small units go first, "2014-01-31 + 1mo 1d" is 2014-03-01.
//
// ts @ d sets each component given in d ("@ 0h 0m 0s 0us" truncates to
// midnight, "@ 2017y" sets the year, "@ 7d 6h" sets day 7 at 06:xx).
// Out-of-range values ("@ 25h", "@ 31d" in a 30-day month) are evaluation
// errors.
//
// a to b is the range [a, b). No order is required: a reversed range
// contains nothing.
//
// range op d applies the operation to both ends. A unitless number is first
// given the unit one step below the range's length: month for at least 365
// days, day for at least 28 days, hour for at least a day, minute for at
// least an hour, second for at least a minute, microsecond otherwise ("day
// @ 2" is "day @ 2h", "hour + 30" is "hour + 30m", "year - 1" is "year -
// 1mo"); a part of the same unit written explicitly is added to it.
//
// # Range functions and pinning
//
// hour(x), day(x), month(x) and year(x) give the hour, day, month or year
// containing x; without an argument they apply to $timestamp. The range is
// pinned to x and to its unit (Result.Unit, Result.PinnedTo). Arithmetic
// with a duration smaller than the unit keeps it pinned and re-aligns it:
// after applying the operation to both ends, while the range begins after x
// it is shifted back by its own length, then while it ends at or before x it
// is shifted forward. So with $timestamp = 2014-08-01T02:10, "day + 6h" and
// "day @ 6h" are [2014-07-31T06:00, 2014-08-01T06:00).
//
// "Smaller than the unit" compares the duration with one unit as a tuple of
// counts from years down to microseconds: 25h and 90m are smaller than 1d
// and 1h (so "day + 25h" wraps to the same range as "day + 1h"), unitless
// numbers are always smaller, while 1d, 2d, 1mo and 1d 6h are not smaller
// than a day. With a duration that is not smaller the result is a plain,
// unpinned, shifted range: "day + 1d" is the next day.
//
// # Membership
//
// Result.Contains is begin <= t < end for a range and equality for a
// timestamp. Result.Timestamp is the instant of a timestamp and the begin
// of a range.
//
// # Errors
//
// Parse returns a *SyntaxError carrying the 1-based line and column (Pos)
// of the offending character or token; Lexical tells a lexer error (bad
// character) from a parse error (grammar violation, unitless number on a
// timestamp, premature end of input). Eval returns an *EvalError for an
// undefined variable, an unknown function, an impossible calendar date or
// an out-of-range result. Check returns a *NameError for each unknown
// function and unavailable variable. Nothing panics.
//
// # Differences from the original
//
// The original implementation crashed with internal errors in three places;
// this package reports them properly instead:
//
//   - premature end of input ("$last +", "day($a", an empty expression) is a
//     parse error (D-1);
//   - impossible calendar results and out-of-range replacements are
//     evaluation errors (D-2);
//   - arithmetic on a pinned range with a duration that is not smaller than
//     its unit gives the plain shifted range, no longer pinned (D-3).
//
// In addition, numbers that do not fit in 64 bits and nesting deeper than
// 200 parentheses are parse errors, and results outside the years 1 to 9999
// are evaluation errors. Error messages give 1-based columns.
package timex
