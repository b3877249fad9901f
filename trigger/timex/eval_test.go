package timex_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/trigger/timex"
)

// ts builds a UTC time; us is microseconds.
func ts(y int, mo time.Month, d, h, mi, s, us int) time.Time {
	return time.Date(y, mo, d, h, mi, s, us*1000, time.UTC)
}

// base is the reference time of most vectors: 2014-08-01T02:10:23.000550.
var base = ts(2014, 8, 1, 2, 10, 23, 550)

// outcome is the comparable form of an evaluation.
type outcome struct {
	Begin, End time.Time
	IsRange    bool
	Unit       timex.Unit
	PinnedTo   time.Time
	EvalError  bool
}

func stamp(t time.Time) outcome { return outcome{Begin: t, End: t} }

func span(b, e time.Time) outcome { return outcome{Begin: b, End: e, IsRange: true} }

func pinned(b, e time.Time, u timex.Unit, to time.Time) outcome {
	return outcome{Begin: b, End: e, IsRange: true, Unit: u, PinnedTo: to}
}

var evalError = outcome{EvalError: true}

func TestEval(t *testing.T) {
	t.Parallel()
	now := ts(2020, 5, 17, 9, 30, 0, 0)
	tests := []struct {
		name string
		expr string
		vars map[string]time.Time
		want outcome
	}{
		// Calendar arithmetic.
		{name: "leap day plus a year", expr: "$t + 1y",
			vars: map[string]time.Time{"t": ts(2012, 2, 29, 0, 0, 0, 0)}, want: evalError},
		{name: "leap day plus twelve months", expr: "$t + 12mo",
			vars: map[string]time.Time{"t": ts(2012, 2, 29, 0, 0, 0, 0)}, want: evalError},
		{name: "leap day plus four years", expr: "$t + 48mo",
			vars: map[string]time.Time{"t": ts(2012, 2, 29, 0, 0, 0, 0)}, want: stamp(ts(2016, 2, 29, 0, 0, 0, 0))},
		{name: "month end minus a month", expr: "$t - 1mo",
			vars: map[string]time.Time{"t": ts(2014, 3, 31, 0, 0, 0, 0)}, want: evalError},
		{name: "days before months", expr: "$t + 1mo 2d",
			vars: map[string]time.Time{"t": ts(2014, 1, 30, 0, 0, 0, 0)}, want: stamp(ts(2014, 3, 1, 0, 0, 0, 0))},
		{name: "months before years", expr: "$t - 1y 2mo",
			vars: map[string]time.Time{"t": base}, want: stamp(ts(2013, 6, 1, 2, 10, 23, 550))},
		{name: "all units", expr: "$t + 1y 1mo 1d 1h 1m 1s 1us",
			vars: map[string]time.Time{"t": base}, want: stamp(ts(2015, 9, 2, 3, 11, 24, 551))},
		{name: "microsecond borrow", expr: "$t - 551us",
			vars: map[string]time.Time{"t": base}, want: stamp(ts(2014, 8, 1, 2, 10, 22, 999999))},
		{name: "last year", expr: "$t + 7985y",
			vars: map[string]time.Time{"t": base}, want: stamp(ts(9999, 8, 1, 2, 10, 23, 550))},
		{name: "beyond the year 9999", expr: "$t + 7986y",
			vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "before the year 1", expr: "$t - 2014y",
			vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "huge delta", expr: "$t + 9223372036854775807h",
			vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "huge month count", expr: "$t - 9223372036854775807mo",
			vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "huge year count", expr: "$t + 9223372036854775807y",
			vars: map[string]time.Time{"t": base}, want: evalError},

		// Replace.
		{name: "replace components at once", expr: "$t @ 29d 2mo 2016y",
			vars: map[string]time.Time{"t": base}, want: stamp(ts(2016, 2, 29, 2, 10, 23, 550))},
		{name: "replace impossible day", expr: "$t @ 2mo",
			vars: map[string]time.Time{"t": ts(2014, 1, 31, 0, 0, 0, 0)}, want: evalError},
		{name: "replace hour out of range", expr: "$t @ 24h", vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "replace year zero", expr: "$t @ 0y", vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "replace month zero", expr: "$t @ 0mo", vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "replace day zero", expr: "$t @ 0d", vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "replace second 60", expr: "$t @ 60s", vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "replace microseconds", expr: "$t @ 999999us",
			vars: map[string]time.Time{"t": base}, want: stamp(ts(2014, 8, 1, 2, 10, 23, 999999))},
		{name: "replace microseconds out of range", expr: "$t @ 1000000us",
			vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "replace on a range", expr: "($a to $b) @ 15d",
			vars: map[string]time.Time{"a": base, "b": ts(2014, 9, 3, 0, 0, 0, 0)},
			want: span(ts(2014, 8, 15, 2, 10, 23, 550), ts(2014, 9, 15, 0, 0, 0, 0))},

		// Sub-microsecond precision and zones.
		{name: "nanoseconds kept by arithmetic", expr: "$t + 1s",
			vars: map[string]time.Time{"t": base.Add(123)}, want: stamp(ts(2014, 8, 1, 2, 10, 24, 550).Add(123))},
		{name: "nanoseconds dropped by replacing microseconds", expr: "$t @ 5us",
			vars: map[string]time.Time{"t": base.Add(123)}, want: stamp(ts(2014, 8, 1, 2, 10, 23, 5))},
		{name: "zone converted to UTC", expr: "day($t)",
			vars: map[string]time.Time{"t": time.Date(2014, 8, 2, 0, 30, 0, 0, time.FixedZone("plus1", 3600))},
			want: pinned(ts(2014, 8, 1, 0, 0, 0, 0), ts(2014, 8, 2, 0, 0, 0, 0), timex.Day, ts(2014, 8, 1, 23, 30, 0, 0))},
		{name: "variable beyond the year 9999", expr: "$t",
			vars: map[string]time.Time{"t": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, want: evalError},

		// $timestamp.
		{name: "timestamp defaults to now", expr: "$timestamp", want: stamp(now)},
		{name: "range function defaults to now", expr: "hour",
			want: pinned(ts(2020, 5, 17, 9, 0, 0, 0), ts(2020, 5, 17, 10, 0, 0, 0), timex.Hour, now)},
		{name: "timestamp variable wins over now", expr: "$timestamp",
			vars: map[string]time.Time{"timestamp": base}, want: stamp(base)},

		// Range functions.
		{name: "hour at the end of time", expr: "hour($t)",
			vars: map[string]time.Time{"t": ts(9999, 12, 31, 23, 30, 0, 0)}, want: evalError},
		{name: "year of a leap year", expr: "year($t)", vars: map[string]time.Time{"t": ts(2016, 7, 1, 0, 0, 0, 0)},
			want: pinned(ts(2016, 1, 1, 0, 0, 0, 0), ts(2017, 1, 1, 0, 0, 0, 0), timex.Year, ts(2016, 7, 1, 0, 0, 0, 0))},
		{name: "month of december", expr: "month($t)", vars: map[string]time.Time{"t": ts(2014, 12, 31, 23, 0, 0, 0)},
			want: pinned(ts(2014, 12, 1, 0, 0, 0, 0), ts(2015, 1, 1, 0, 0, 0, 0), timex.Month, ts(2014, 12, 31, 23, 0, 0, 0))},
		{name: "unknown function", expr: "Day($t)", vars: map[string]time.Time{"t": base}, want: evalError},
		{name: "undefined variable on the right of to", expr: "$t to $nope",
			vars: map[string]time.Time{"t": base}, want: evalError},

		// Pinning and re-alignment.
		{name: "wrap back over many days", expr: "day + 100000h",
			vars: map[string]time.Time{"timestamp": base},
			want: pinned(ts(2014, 7, 31, 16, 0, 0, 0), ts(2014, 8, 1, 16, 0, 0, 0), timex.Day, base)},
		{name: "wrap forward", expr: "day - 25h",
			vars: map[string]time.Time{"timestamp": base},
			want: pinned(ts(2014, 7, 31, 23, 0, 0, 0), ts(2014, 8, 1, 23, 0, 0, 0), timex.Day, base)},
		{name: "wrap forward over many days", expr: "day($t) - 3000h",
			vars: map[string]time.Time{"t": base},
			want: pinned(ts(2014, 8, 1, 0, 0, 0, 0), ts(2014, 8, 2, 0, 0, 0, 0), timex.Day, base)},
		{name: "pinned to the exact begin", expr: "day($t) + 2h",
			vars: map[string]time.Time{"t": ts(2014, 8, 1, 2, 0, 0, 0)},
			want: pinned(ts(2014, 8, 1, 2, 0, 0, 0), ts(2014, 8, 2, 2, 0, 0, 0), timex.Day, ts(2014, 8, 1, 2, 0, 0, 0))},
		{name: "pinned to just before the end", expr: "day($t) + 2h",
			vars: map[string]time.Time{"t": ts(2014, 8, 1, 1, 59, 59, 999999)},
			want: pinned(ts(2014, 7, 31, 2, 0, 0, 0), ts(2014, 8, 1, 2, 0, 0, 0), timex.Day, ts(2014, 8, 1, 1, 59, 59, 999999))},
		{name: "pin with nanoseconds", expr: "day($t) + 2h",
			vars: map[string]time.Time{"t": ts(2014, 8, 1, 1, 59, 59, 999999).Add(999)},
			want: pinned(ts(2014, 7, 31, 2, 0, 0, 0), ts(2014, 8, 1, 2, 0, 0, 0), timex.Day, ts(2014, 8, 1, 1, 59, 59, 999999).Add(999))},
		{name: "year plus thirteen months is smaller than a year", expr: "year + 13mo",
			vars: map[string]time.Time{"timestamp": base},
			want: pinned(ts(2014, 2, 1, 0, 0, 0, 0), ts(2015, 2, 1, 0, 0, 0, 0), timex.Year, base)},
		{name: "zero duration stays pinned", expr: "day - 0h",
			vars: map[string]time.Time{"timestamp": base},
			want: pinned(ts(2014, 8, 1, 0, 0, 0, 0), ts(2014, 8, 2, 0, 0, 0, 0), timex.Day, base)},
		{name: "zero day stays pinned", expr: "day + 0d",
			vars: map[string]time.Time{"timestamp": base},
			want: pinned(ts(2014, 8, 1, 0, 0, 0, 0), ts(2014, 8, 2, 0, 0, 0, 0), timex.Day, base)},
		{name: "two days unpins", expr: "day($t) - 2d",
			vars: map[string]time.Time{"t": base}, want: span(ts(2014, 7, 30, 0, 0, 0, 0), ts(2014, 7, 31, 0, 0, 0, 0))},
		{name: "month unpins a day", expr: "day($t) + 1mo",
			vars: map[string]time.Time{"t": base}, want: span(ts(2014, 9, 1, 0, 0, 0, 0), ts(2014, 9, 2, 0, 0, 0, 0))},
		{name: "replacing the pinned unit unpins", expr: "day @ 5d",
			vars: map[string]time.Time{"timestamp": base}, want: span(ts(2014, 8, 5, 0, 0, 0, 0), ts(2014, 8, 5, 0, 0, 0, 0))},
		{name: "unpinned range stays unpinned", expr: "day + 1d - 1h",
			vars: map[string]time.Time{"timestamp": base}, want: span(ts(2014, 8, 1, 23, 0, 0, 0), ts(2014, 8, 2, 23, 0, 0, 0))},
		{name: "hour minus 1 is minutes", expr: "hour - 1",
			vars: map[string]time.Time{"timestamp": base},
			want: pinned(ts(2014, 8, 1, 1, 59, 0, 0), ts(2014, 8, 1, 2, 59, 0, 0), timex.Hour, base)},
		{name: "hour replace unitless", expr: "hour @ 15",
			vars: map[string]time.Time{"timestamp": base},
			want: pinned(ts(2014, 8, 1, 1, 15, 0, 0), ts(2014, 8, 1, 2, 15, 0, 0), timex.Hour, base)},
		{name: "month minus 1 is a day", expr: "month - 1",
			vars: map[string]time.Time{"timestamp": base},
			want: pinned(ts(2014, 7, 31, 0, 0, 0, 0), ts(2014, 8, 31, 0, 0, 0, 0), timex.Month, base)},
		{name: "unitless count adds to its unit", expr: "month + 1 1d",
			vars: map[string]time.Time{"timestamp": base},
			want: pinned(ts(2014, 7, 3, 0, 0, 0, 0), ts(2014, 8, 3, 0, 0, 0, 0), timex.Month, base)},
		{name: "february month is days", expr: "month($t) + 1",
			vars: map[string]time.Time{"t": ts(2015, 2, 10, 0, 0, 0, 0)},
			want: pinned(ts(2015, 2, 2, 0, 0, 0, 0), ts(2015, 3, 2, 0, 0, 0, 0), timex.Month, ts(2015, 2, 10, 0, 0, 0, 0))},
		{name: "impossible day in a pinned range", expr: "month($t) @ 31",
			vars: map[string]time.Time{"t": base}, want: evalError},

		// Unitless numbers on explicit ranges.
		{name: "range of a year or more", expr: "($a to $b) + 1",
			vars: map[string]time.Time{"a": base, "b": base.AddDate(0, 0, 365)},
			want: span(ts(2014, 9, 1, 2, 10, 23, 550), ts(2015, 9, 1, 2, 10, 23, 550))},
		{name: "range of 28 days or more", expr: "($a to $b) + 1",
			vars: map[string]time.Time{"a": base, "b": base.AddDate(0, 0, 28)},
			want: span(ts(2014, 8, 2, 2, 10, 23, 550), ts(2014, 8, 30, 2, 10, 23, 550))},
		{name: "range of an hour", expr: "($a to $b) + 1",
			vars: map[string]time.Time{"a": base, "b": base.Add(time.Hour)},
			want: span(ts(2014, 8, 1, 2, 11, 23, 550), ts(2014, 8, 1, 3, 11, 23, 550))},
		{name: "range of a minute", expr: "($a to $b) + 1",
			vars: map[string]time.Time{"a": base, "b": base.Add(time.Minute)},
			want: span(ts(2014, 8, 1, 2, 10, 24, 550), ts(2014, 8, 1, 2, 11, 24, 550))},
		{name: "range under a minute", expr: "($a to $b) + 1",
			vars: map[string]time.Time{"a": base, "b": base.Add(59 * time.Second)},
			want: span(ts(2014, 8, 1, 2, 10, 23, 551), ts(2014, 8, 1, 2, 11, 22, 551))},
		{name: "reversed range uses the absolute length", expr: "($b to $a) + 1",
			vars: map[string]time.Time{"a": base, "b": base.AddDate(0, 0, 1)},
			want: span(ts(2014, 8, 2, 3, 10, 23, 550), ts(2014, 8, 1, 3, 10, 23, 550))},
		{name: "unitless count with explicit part", expr: "($a to $b) + 1 2h",
			vars: map[string]time.Time{"a": base, "b": base.AddDate(0, 0, 1)},
			want: span(ts(2014, 8, 1, 5, 10, 23, 550), ts(2014, 8, 2, 5, 10, 23, 550))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := timex.Parse(tc.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.expr, err)
			}
			r, err := e.Eval(now, tc.vars)
			var got outcome
			if err != nil {
				var ee *timex.EvalError
				if !errors.As(err, &ee) {
					t.Fatalf("Eval(%q) error %T %v, want *timex.EvalError", tc.expr, err, err)
				}
				got.EvalError = true
			} else {
				got = outcome{Begin: r.Begin, End: r.End, IsRange: r.IsRange, Unit: r.Unit, PinnedTo: r.PinnedTo}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Eval(%q) with %v mismatch (-want +got):\n%s (error: %v)", tc.expr, tc.vars, diff, err)
			}
		})
	}
}

func TestEvalErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want string
	}{
		{expr: "$nope", want: `timex: evaluate "$nope": variable nope not defined`},
		{expr: "week", want: `timex: evaluate "week": unknown function week (known: day, hour, month, year)`},
		{expr: "fortnight($zzz)", want: `timex: evaluate "fortnight($zzz)": variable zzz not defined`},
		{expr: "$t + 1mo", want: `timex: evaluate "$t + 1mo": 2014-01-31T00:00:00 + 1mo: day 31 does not exist in 2014-02`},
		{expr: "$t @ 25h", want: `timex: evaluate "$t @ 25h": 2014-01-31T00:00:00 @ 25h: hour 25 out of range 0..23`},
	}
	vars := map[string]time.Time{"t": ts(2014, 1, 31, 0, 0, 0, 0)}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			t.Parallel()
			_, err := timex.MustParse(tc.expr).Eval(base, vars)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Eval(%q) error = %v, want %s", tc.expr, err, tc.want)
			}
		})
	}
}

func TestResultContains(t *testing.T) {
	t.Parallel()
	r := timex.Result{Begin: ts(2014, 8, 1, 0, 0, 0, 0), End: ts(2014, 8, 2, 0, 0, 0, 0), IsRange: true}
	s := timex.Result{Begin: base, End: base}
	tests := []struct {
		name string
		r    timex.Result
		t    time.Time
		want bool
	}{
		{name: "range begin is inside", r: r, t: r.Begin, want: true},
		{name: "range end is outside", r: r, t: r.End, want: false},
		{name: "just before the end", r: r, t: r.End.Add(-time.Nanosecond), want: true},
		{name: "just before the begin", r: r, t: r.Begin.Add(-time.Nanosecond), want: false},
		{name: "same instant in another zone", r: s, t: base.In(time.FixedZone("minus5", -5*3600)), want: true},
		{name: "timestamp differs by a microsecond", r: s, t: base.Add(time.Microsecond), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.r.Contains(tc.t); got != tc.want {
				t.Errorf("%+v.Contains(%v) = %v, want %v", tc.r, tc.t, got, tc.want)
			}
		})
	}
	if got, want := r.String(), "[2014-08-01T00:00:00, 2014-08-02T00:00:00)"; got != want {
		t.Errorf("range String() = %q, want %q", got, want)
	}
	if got, want := s.String(), "2014-08-01T02:10:23.00055"; got != want {
		t.Errorf("timestamp String() = %q, want %q", got, want)
	}
	if got := r.Timestamp(); !got.Equal(r.Begin) {
		t.Errorf("range Timestamp() = %v, want its begin %v", got, r.Begin)
	}
}

func TestUnitString(t *testing.T) {
	t.Parallel()
	want := []string{"microsecond", "second", "minute", "hour", "day", "month", "year"}
	var got []string
	for u := timex.Microsecond; u <= timex.Year; u++ {
		got = append(got, u.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Unit names mismatch (-want +got):\n%s", diff)
	}
}

// TestConcurrentEval evaluates shared expressions from many goroutines; run
// with -race.
func TestConcurrentEval(t *testing.T) {
	t.Parallel()
	exprs := []*timex.Expr{
		timex.MustParse("day($a) + 1h - 8h"),
		timex.MustParse("($a to $b) @ 1"),
		timex.MustParse("$a + 1mo"),
		timex.MustParse("month + 1"),
	}
	vars := map[string]time.Time{"a": base, "b": base.AddDate(0, 0, 1)}
	want := make([]timex.Result, len(exprs))
	wantErr := make([]bool, len(exprs))
	for i, e := range exprs {
		r, err := e.Eval(base, vars)
		want[i], wantErr[i] = r, err != nil
	}
	const workers = 8
	errs := make(chan string, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range 200 {
				for i, e := range exprs {
					r, err := e.Eval(base, vars)
					if r != want[i] || (err != nil) != wantErr[i] {
						errs <- e.String()
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Errorf("concurrent Eval(%q) gave a different result", s)
	}
}

func BenchmarkEval(b *testing.B) {
	exprs := []string{"$last + 1h", "day($first) + 1d", "day @ 6h", "($timestamp + 1d) @ 0h 0m 0s 0us"}
	vars := map[string]time.Time{"first": base, "last": base.Add(time.Hour), "timestamp": base}
	for _, src := range exprs {
		e := timex.MustParse(src)
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Eval(base, vars); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := timex.Parse("day($a + 1h) - 2 3h"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		vars []string
		want []timex.NameError // without Expr
	}{
		{name: "known names", src: "day($last) + 1d", vars: []string{"first", "last"}},
		{name: "timestamp is always there", src: "$timestamp + 1h", vars: []string{}},
		{name: "range function on timestamp", src: "hour", vars: []string{}},
		{name: "unknown function", src: "fortnight", vars: []string{},
			want: []timex.NameError{{Name: "fortnight", Func: true, Known: []string{"day", "hour", "month", "year"}}}},
		{name: "misspelled function", src: "dya($last) + 1d", vars: []string{"first", "last"},
			want: []timex.NameError{{Name: "dya", Func: true, Known: []string{"day", "hour", "month", "year"}}}},
		{name: "unknown variable", src: "$lsat + 1h", vars: []string{"first", "last"},
			want: []timex.NameError{{Name: "lsat", Known: []string{"first", "last", "timestamp"}}}},
		{name: "functions first", src: "wk($b) + 1d", vars: []string{"first"},
			want: []timex.NameError{
				{Name: "wk", Func: true, Known: []string{"day", "hour", "month", "year"}},
				{Name: "b", Known: []string{"first", "timestamp"}},
			}},
		{name: "variables sorted", src: "$b to $a", vars: []string{"first"},
			want: []timex.NameError{
				{Name: "a", Known: []string{"first", "timestamp"}},
				{Name: "b", Known: []string{"first", "timestamp"}},
			}},
		{name: "nil vars checks functions only", src: "wk($launched_at)", vars: nil,
			want: []timex.NameError{{Name: "wk", Func: true, Known: []string{"day", "hour", "month", "year"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := timex.MustParse(tc.src).Check(tc.vars)
			var got []timex.NameError
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					ne, ok := e.(*timex.NameError)
					if !ok {
						t.Fatalf("Check(%q) problem %v (%T) is not a *NameError", tc.src, e, e)
					}
					if ne.Expr != tc.src {
						t.Errorf("NameError.Expr = %q, want %q", ne.Expr, tc.src)
					}
					c := *ne
					c.Expr = ""
					got = append(got, c)
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Check(%q, %v) mismatch (-want +got):\n%s", tc.src, tc.vars, d)
			}
			// What Check accepts, Eval does not reject for its names.
			if err == nil && tc.vars != nil {
				vars := map[string]time.Time{}
				for _, v := range tc.vars {
					vars[v] = time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
				}
				if _, err := timex.MustParse(tc.src).Eval(time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC), vars); err != nil {
					t.Errorf("Eval(%q) after a clean Check: %v", tc.src, err)
				}
			}
		})
	}
	msgs := []struct {
		err  *timex.NameError
		want string
	}{
		{&timex.NameError{Expr: "wk", Name: "wk", Func: true, Known: []string{"day", "hour"}}, `timex: check "wk": unknown function wk (known: day, hour)`},
		{&timex.NameError{Expr: "$x", Name: "x", Known: []string{"last", "timestamp"}}, `timex: check "$x": variable $x is not available here (available: $last, $timestamp)`},
	}
	for _, m := range msgs {
		if got := m.err.Error(); got != m.want {
			t.Errorf("Error() = %q, want %q", got, m.want)
		}
	}
}
