package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger/timex"
)

func init() { registerArea("timex.yaml") }

// timexCase holds the inputs of a timex.yaml case.
type timexCase struct {
	Expr string            `yaml:"expr"`
	Vars map[string]string `yaml:"vars"`
}

// timexOutcome is an expected or recommended outcome.
type timexOutcome struct {
	Error  string `yaml:"error"`
	Result *struct {
		Type   string `yaml:"type"`
		Value  string `yaml:"value"`
		Begin  string `yaml:"begin"`
		End    string `yaml:"end"`
		Pinned *struct {
			Unit string `yaml:"unit"`
			To   string `yaml:"to"`
		} `yaml:"pinned"`
	} `yaml:"result"`
	Contains []struct {
		Time string `yaml:"time"`
		In   bool   `yaml:"in"`
	} `yaml:"contains"`
}

// timexGot is the comparable shape of an evaluated result.
type timexGot struct {
	Type        string
	Value       string
	Begin, End  string
	PinUnit     string
	PinTo       string
	Error       string
	ErrorDetail string
}

func TestTimex(t *testing.T) {
	runFile(t, "timex.yaml", func(t *testing.T, c *vectorCase) {
		t.Parallel()
		var in timexCase
		c.decode(t, &in)
		node, noteOnly := c.outcome(t)
		var want timexOutcome
		if err := node.Decode(&want); err != nil {
			t.Fatalf("decode outcome: %v", err)
		}
		vars := map[string]time.Time{}
		for name, s := range in.Vars {
			v, err := stream.ParseTime(s)
			if err != nil {
				t.Fatalf("var %s: %v", name, err)
			}
			vars[name] = v
		}
		// No case relies on the implicit "now"; a far-away now makes a
		// wrong fallback visible.
		now := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

		res, err := evalTimex(in.Expr, now, vars)
		if noteOnly {
			return // only "no crash" is asserted
		}
		if want.Error == "internal" {
			t.Fatalf("case expects an internal error and has no recommended outcome")
		}
		got := timexGot{}
		if err != nil {
			got.Error, got.ErrorDetail = timexErrorKind(err), err.Error()
		} else {
			got = describeResult(res)
		}
		wantGot := timexGot{Error: want.Error, ErrorDetail: got.ErrorDetail}
		if want.Result != nil {
			r := want.Result
			wantGot.Type = r.Type
			if r.Type == "timestamp" {
				wantGot.Value = canonTime(t, r.Value)
			} else {
				wantGot.Begin, wantGot.End = canonTime(t, r.Begin), canonTime(t, r.End)
			}
			if r.Pinned != nil {
				wantGot.PinUnit, wantGot.PinTo = r.Pinned.Unit, canonTime(t, r.Pinned.To)
			}
		}
		if diff := cmp.Diff(wantGot, got); diff != "" {
			t.Fatalf("%q with %v: result mismatch (-want +got):\n%s", in.Expr, in.Vars, diff)
		}
		for _, cc := range want.Contains {
			tm, err := stream.ParseTime(cc.Time)
			if err != nil {
				t.Fatalf("contains time %q: %v", cc.Time, err)
			}
			if g := res.Contains(tm); g != cc.In {
				t.Errorf("%q: Contains(%s) = %v, want %v", in.Expr, cc.Time, g, cc.In)
			}
		}
	})
}

// evalTimex parses and evaluates an expression.
func evalTimex(src string, now time.Time, vars map[string]time.Time) (timex.Result, error) {
	e, err := timex.Parse(src)
	if err != nil {
		return timex.Result{}, err
	}
	return e.Eval(now, vars)
}

// timexErrorKind maps an error to the vector's error kinds.
func timexErrorKind(err error) string {
	var se *timex.SyntaxError
	var ee *timex.EvalError
	switch {
	case errors.As(err, &se) && se.Lexical:
		return "lexer"
	case errors.As(err, &se):
		return "parse"
	case errors.As(err, &ee):
		return "expression"
	}
	return "internal"
}

func describeResult(r timex.Result) timexGot {
	if !r.IsRange {
		return timexGot{Type: "timestamp", Value: stream.FormatTime(r.Begin)}
	}
	g := timexGot{Type: "range", Begin: stream.FormatTime(r.Begin), End: stream.FormatTime(r.End)}
	if r.Pinned() {
		g.PinUnit, g.PinTo = r.Unit.String(), stream.FormatTime(r.PinnedTo)
	}
	return g
}

// canonTime re-renders an ISO time of the vectors in stream.TimeLayout.
func canonTime(t *testing.T, s string) string {
	t.Helper()
	v, err := stream.ParseTime(s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return stream.FormatTime(v)
}
