package timex

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want SyntaxError // Expr is filled in from src
	}{
		{name: "bad character", src: "$a.day",
			want: SyntaxError{Line: 1, Pos: 3, Lexical: true, Msg: "unexpected character '.' at column 3"}},
		{name: "bad character at end", src: "$a + 1h!",
			want: SyntaxError{Line: 1, Pos: 8, Lexical: true, Msg: "unexpected character '!' at column 8"}},
		{name: "carriage return", src: "$a\n + 1h\r",
			want: SyntaxError{Line: 2, Pos: 6, Lexical: true, Msg: `unexpected character '\r' at line 2, column 6`}},
		{name: "non-ASCII", src: "$a + é",
			want: SyntaxError{Line: 1, Pos: 6, Lexical: true, Msg: "unexpected character 'é' at column 6"}},
		{name: "invalid UTF-8", src: "$a\xff",
			want: SyntaxError{Line: 1, Pos: 3, Lexical: true, Msg: "unexpected byte 0xff (invalid UTF-8) at column 3"}},
		{name: "grammar error before bad character", src: "1h.",
			want: SyntaxError{Line: 1, Pos: 1, Msg: "unexpected number 1 at column 1"}},
		{name: "leading number", src: "1h",
			want: SyntaxError{Line: 1, Pos: 1, Msg: "unexpected number 1 at column 1"}},
		{name: "empty", src: "",
			want: SyntaxError{Line: 1, Pos: 1, Msg: "empty expression"}},
		{name: "blank", src: " \t\n ",
			want: SyntaxError{Line: 2, Pos: 2, Msg: "empty expression"}},
		{name: "premature end after operator", src: "$last +",
			want: SyntaxError{Line: 1, Pos: 8, Msg: "unexpected end of expression"}},
		{name: "premature end in function", src: "day($a",
			want: SyntaxError{Line: 1, Pos: 7, Msg: "unexpected end of expression"}},
		{name: "premature end after dollar", src: "$",
			want: SyntaxError{Line: 1, Pos: 2, Msg: "unexpected end of expression"}},
		{name: "premature end in parens", src: "($a to",
			want: SyntaxError{Line: 1, Pos: 7, Msg: "unexpected end of expression"}},
		{name: "unknown unit", src: "$a + 1w",
			want: SyntaxError{Line: 1, Pos: 7, Msg: `unknown unit "w" at column 7 (units: us, s, sec, m, min, h, hr, d, mo, y, yr)`}},
		{name: "units are case-sensitive", src: "$a + 1H",
			want: SyntaxError{Line: 1, Pos: 7, Msg: `unknown unit "H" at column 7 (units: us, s, sec, m, min, h, hr, d, mo, y, yr)`}},
		{name: "units need a separator", src: "$a + 1d2h",
			want: SyntaxError{Line: 1, Pos: 7, Msg: `unknown unit "d2h" at column 7 (units: us, s, sec, m, min, h, hr, d, mo, y, yr)`}},
		{name: "variable named like a unit", src: "$d + 1h",
			want: SyntaxError{Line: 1, Pos: 2, Msg: `"d" at column 2 is a reserved word and cannot be a variable name`}},
		{name: "variable named to", src: "$ to",
			want: SyntaxError{Line: 1, Pos: 3, Msg: `"to" at column 3 is a reserved word and cannot be a variable name`}},
		{name: "range on the left of to", src: "day($a) to $b",
			want: SyntaxError{Line: 1, Pos: 9, Msg: `unexpected "to" at column 9: its left operand is a range, not a timestamp`}},
		{name: "chained to", src: "$a to $b to $c",
			want: SyntaxError{Line: 1, Pos: 10, Msg: `unexpected "to" at column 10: "to" cannot be chained`}},
		{name: "range on the right of to", src: "$a to day",
			want: SyntaxError{Line: 1, Pos: 7, Msg: `unexpected range function "day" at column 7: a timestamp expression is required here`}},
		{name: "parenthesized range on the right of to", src: "$a to ($b to $c)",
			want: SyntaxError{Line: 1, Pos: 11, Msg: `unexpected "to" at column 11: a timestamp expression is required here`}},
		{name: "range as function argument", src: "day(day)",
			want: SyntaxError{Line: 1, Pos: 5, Msg: `unexpected range function "day" at column 5: a timestamp expression is required here`}},
		{name: "explicit range as function argument", src: "day($a to $b)",
			want: SyntaxError{Line: 1, Pos: 8, Msg: `unexpected "to" at column 8: a timestamp expression is required here`}},
		{name: "empty function call", src: "day()",
			want: SyntaxError{Line: 1, Pos: 5, Msg: `unexpected ")" at column 5`}},
		{name: "unitless number on a timestamp", src: "$t + 2",
			want: SyntaxError{Line: 1, Pos: 6, Msg: `number 2 at column 6 has no unit: a unitless number applies only directly to "a to b" or a range function`}},
		{name: "unitless number mixed with units on a timestamp", src: "$t + 1h 2",
			want: SyntaxError{Line: 1, Pos: 9, Msg: `number 2 at column 9 has no unit: a unitless number applies only directly to "a to b" or a range function`}},
		{name: "unitless number after an operation on a range", src: "(day + 1h) + 6",
			want: SyntaxError{Line: 1, Pos: 14, Msg: `number 6 at column 14 has no unit: a unitless number applies only directly to "a to b" or a range function`}},
		{name: "unitless number on the right of to", src: "$a to $b + 1",
			want: SyntaxError{Line: 1, Pos: 12, Msg: `number 1 at column 12 has no unit: a unitless number applies only directly to "a to b" or a range function`}},
		{name: "negative number", src: "$a + -1h",
			want: SyntaxError{Line: 1, Pos: 6, Msg: `unexpected "-" at column 6`}},
		{name: "operator without duration", src: "$a + + 1h",
			want: SyntaxError{Line: 1, Pos: 6, Msg: `unexpected "+" at column 6`}},
		{name: "unit without number", src: "$a + h",
			want: SyntaxError{Line: 1, Pos: 6, Msg: `unexpected unit "h" at column 6`}},
		{name: "trailing identifier", src: "$a + 1h foo",
			want: SyntaxError{Line: 1, Pos: 9, Msg: `unexpected identifier "foo" at column 9`}},
		{name: "unbalanced parenthesis", src: "$a)",
			want: SyntaxError{Line: 1, Pos: 3, Msg: `unexpected ")" at column 3`}},
		{name: "number too large", src: "$a + 99999999999999999999h",
			want: SyntaxError{Line: 1, Pos: 6, Msg: "number 99999999999999999999 at column 6 is too large"}},
		{name: "sum too large", src: "$a + 9223372036854775807h 1h",
			want: SyntaxError{Line: 1, Pos: 27, Msg: "duration too large at column 27"}},
		{name: "error on a later line", src: "$a\n+\n1w",
			want: SyntaxError{Line: 3, Pos: 2, Msg: `unknown unit "w" at line 3, column 2 (units: us, s, sec, m, min, h, hr, d, mo, y, yr)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := Parse(tc.src)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tc.src, e.Canonical())
			}
			var got *SyntaxError
			if !errors.As(err, &got) {
				t.Fatalf("Parse(%q) error = %T %v, want *SyntaxError", tc.src, err, err)
			}
			want := tc.want
			want.Expr = tc.src
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("Parse(%q) error mismatch (-want +got):\n%s", tc.src, diff)
			}
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := Parse("$a.day")
	want := `timex: parse "$a.day": unexpected character '.' at column 3`
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v, want %s", err, want)
	}
}

func TestParseDepthLimit(t *testing.T) {
	t.Parallel()
	ok := "day(" + repeat("(", maxDepth-1) + "$a" + repeat(")", maxDepth-1) + ")"
	if _, err := Parse(ok); err != nil {
		t.Errorf("Parse at depth %d: %v", maxDepth, err)
	}
	deep := repeat("(", 100000) + "$a" + repeat(")", 100000)
	_, err := Parse(deep)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Pos != maxDepth+1 {
		t.Errorf("Parse of 100000 nested parentheses = %v, want a syntax error at column %d", err, maxDepth+1)
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string
	}{
		{name: "spaces", src: "$ a  +\t1 d", want: "$a + 1d"},
		{name: "newlines", src: "$a\n + 1d", want: "$a + 1d"},
		{name: "juxtaposed parts are summed", src: "$a + 1h 1h 30m", want: "$a + 2h 30m"},
		{name: "unit aliases and order", src: "$a + 1hr 2min 3sec 4yr 5us 6mo", want: "$a + 4y 6mo 1h 2m 3s 5us"},
		{name: "leading zeros", src: "$a - 007m", want: "$a - 7m"},
		{name: "zero parts are kept", src: "$a @ 0h 0m 0s 0us", want: "$a @ 0h 0m 0s 0us"},
		{name: "redundant parentheses dropped", src: "(($a))", want: "$a"},
		{name: "parentheses kept around to", src: "(($a to $b)) + 1", want: "($a to $b) + 1"},
		{name: "parenthesized function", src: "(day) @ 2", want: "day @ 2"},
		{name: "unitless part last", src: "day(($a + 1h)) - 2 3h", want: "day($a + 1h) - 3h 2"},
		{name: "right operand of to", src: "$a to ($b + 1h)", want: "$a to $b + 1h"},
		{name: "left operand of to", src: "($a + 1h) to $b", want: "$a + 1h to $b"},
		{name: "chain", src: "(($a + 1h) @ 0m) - 1s", want: "$a + 1h @ 0m - 1s"},
		{name: "unknown function", src: "fortnight ( $a )", want: "fortnight($a)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := Parse(tc.src)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.src, err)
			}
			if got := e.Canonical(); got != tc.want {
				t.Errorf("Parse(%q).Canonical() = %q, want %q", tc.src, got, tc.want)
			}
			if got := e.String(); got != tc.src {
				t.Errorf("Parse(%q).String() = %q, want the source", tc.src, got)
			}
			e2, err := Parse(tc.want)
			if err != nil {
				t.Fatalf("Parse(%q) of the canonical form: %v", tc.want, err)
			}
			if !reflect.DeepEqual(e.root, e2.root) {
				t.Errorf("Parse(%q) and Parse(%q) differ", tc.src, tc.want)
			}
		})
	}
}

func TestExprInspection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src     string
		isRange bool
		vars    []string
		funcs   []string
	}{
		{src: "$last + 1h", isRange: false, vars: []string{"last"}, funcs: []string{}},
		{src: "$first to $last", isRange: true, vars: []string{"first", "last"}, funcs: []string{}},
		{src: "day", isRange: true, vars: []string{"timestamp"}, funcs: []string{"day"}},
		{src: "day($a) + 1d", isRange: true, vars: []string{"a"}, funcs: []string{"day"}},
		{src: "fortnight($a) @ 2", isRange: true, vars: []string{"a"}, funcs: []string{"fortnight"}},
		{src: "($a to $a + 1h) - 1h", isRange: true, vars: []string{"a"}, funcs: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			t.Parallel()
			e := MustParse(tc.src)
			if got := e.IsRange(); got != tc.isRange {
				t.Errorf("Parse(%q).IsRange() = %v, want %v", tc.src, got, tc.isRange)
			}
			if diff := cmp.Diff(tc.vars, e.Vars()); diff != "" {
				t.Errorf("Parse(%q).Vars() mismatch (-want +got):\n%s", tc.src, diff)
			}
			if diff := cmp.Diff(tc.funcs, e.Funcs()); diff != "" {
				t.Errorf("Parse(%q).Funcs() mismatch (-want +got):\n%s", tc.src, diff)
			}
		})
	}
	for name, want := range map[string]bool{"hour": true, "day": true, "month": true, "year": true, "week": false, "Day": false} {
		if got := KnownFunc(name); got != want {
			t.Errorf("KnownFunc(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestMustParsePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil {
			t.Errorf("MustParse(%q) did not panic", "$a +")
		}
	}()
	MustParse("$a +")
}

// fuzzVars are the variables FuzzParse evaluates with.
var fuzzVars = map[string]time.Time{
	"a":         time.Date(2014, 8, 1, 2, 10, 23, 550000, time.UTC),
	"b":         time.Date(2014, 8, 7, 3, 20, 0, 0, time.UTC),
	"last":      time.Date(2016, 2, 29, 23, 59, 59, 999999000, time.UTC),
	"timestamp": time.Date(2014, 1, 31, 12, 0, 0, 0, time.UTC),
}

// FuzzParse checks that nothing panics, that syntax errors carry a
// position, and that the canonical form parses back to the same expression
// (and evaluates the same).
func FuzzParse(f *testing.F) {
	f.Add("$a + 1d 2h")
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T %v, want *SyntaxError", src, err, err)
			}
			if se.Line < 1 || se.Pos < 1 || se.Msg == "" || se.Expr != src {
				t.Fatalf("Parse(%q) = %#v: bad position or message", src, se)
			}
			return
		}
		canon := e.Canonical()
		e2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q).Canonical() = %q, which does not parse: %v", src, canon, err)
		}
		if !reflect.DeepEqual(e.root, e2.root) {
			t.Fatalf("Parse(%q) and Parse(%q) differ", src, canon)
		}
		if got := e2.Canonical(); got != canon {
			t.Fatalf("Canonical is not stable: %q then %q", canon, got)
		}
		now := time.Date(2020, 2, 29, 12, 0, 0, 0, time.UTC)
		r1, err1 := e.Eval(now, fuzzVars)
		r2, err2 := e2.Eval(now, fuzzVars)
		if (err1 == nil) != (err2 == nil) || r1 != r2 {
			t.Fatalf("Eval of %q = %v, %v; of %q = %v, %v", src, r1, err1, canon, r2, err2)
		}
		if err1 != nil {
			var ee *EvalError
			if !errors.As(err1, &ee) {
				t.Fatalf("Eval(%q) error %T %v, want *EvalError", src, err1, err1)
			}
			return
		}
		if r1.IsRange != e.IsRange() {
			t.Fatalf("Eval(%q).IsRange = %v, IsRange() = %v", src, r1.IsRange, e.IsRange())
		}
		if r1.Pinned() && !r1.Contains(r1.PinnedTo) {
			t.Fatalf("Eval(%q) = %v: pinned range does not contain its pin", src, r1)
		}
	})
}
