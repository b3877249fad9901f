package timex

import (
	"fmt"
	"strings"
	"time"
)

// Times are limited to the years 1 to 9999 (those of the original's
// datetime). Every result is checked against these bounds, which also keeps
// microsecond arithmetic far from int64 overflow.
var (
	minMicros = time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxMicros = time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC).UnixMicro() // exclusive
)

// funcUnits maps the range functions to the unit they pin to.
var funcUnits = map[string]Unit{
	"hour":  Hour,
	"day":   Day,
	"month": Month,
	"year":  Year,
}

// value is an intermediate result.
type value struct {
	begin, end time.Time
	isRange    bool
	unit       Unit // pinned unit, 0 when not pinned
	pin        time.Time
}

// evaluator holds the inputs of one Eval call.
type evaluator struct {
	src  string
	now  time.Time
	vars map[string]time.Time
}

func (ev *evaluator) errorf(format string, args ...any) error {
	return &EvalError{Expr: ev.src, Msg: fmt.Sprintf(format, args...)}
}

func (ev *evaluator) eval(n node) (value, error) {
	switch n := n.(type) {
	case *varNode:
		t, err := ev.lookup(n.name)
		if err != nil {
			return value{}, err
		}
		return value{begin: t, end: t}, nil
	case *funcNode:
		return ev.evalFunc(n)
	case *toNode:
		a, err := ev.eval(n.left)
		if err != nil {
			return value{}, err
		}
		b, err := ev.eval(n.right)
		if err != nil {
			return value{}, err
		}
		return value{begin: a.begin, end: b.begin, isRange: true}, nil
	case *opNode:
		v, err := ev.eval(n.left)
		if err != nil {
			return value{}, err
		}
		return ev.evalOp(v, n.op, n.dur)
	}
	return value{}, ev.errorf("unknown expression node %T", n)
}

// lookup returns the value of $name.
func (ev *evaluator) lookup(name string) (time.Time, error) {
	t, ok := ev.vars[name]
	if !ok {
		if name != timestampVar {
			return time.Time{}, ev.errorf("variable %s not defined", name)
		}
		t = ev.now
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, ev.errorf("variable %s: %s is outside the years 1 to 9999", name, t.Format(time.RFC3339Nano))
	}
	return t, nil
}

func (ev *evaluator) evalFunc(n *funcNode) (value, error) {
	var x time.Time
	if n.arg == nil {
		t, err := ev.lookup(timestampVar)
		if err != nil {
			return value{}, err
		}
		x = t
	} else {
		v, err := ev.eval(n.arg)
		if err != nil {
			return value{}, err
		}
		x = v.begin
	}
	unit, ok := funcUnits[n.name]
	if !ok {
		return value{}, ev.errorf("unknown function %s (known: day, hour, month, year)", n.name)
	}
	begin, end := pinnedRange(x, unit)
	if end.UnixMicro() >= maxMicros {
		return value{}, ev.errorf("%s(%s): range ends after the year 9999", n.name, formatTime(x))
	}
	return value{begin: begin, end: end, isRange: true, unit: unit, pin: x}, nil
}

// pinnedRange returns the hour, day, month or year containing x.
func pinnedRange(x time.Time, u Unit) (begin, end time.Time) {
	y, mo, d := x.Date()
	switch u {
	case Hour:
		begin = time.Date(y, mo, d, x.Hour(), 0, 0, 0, time.UTC)
		return begin, begin.Add(time.Hour)
	case Day:
		begin = time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
		return begin, begin.AddDate(0, 0, 1)
	case Month:
		begin = time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
		return begin, begin.AddDate(0, 1, 0)
	default: // Year
		begin = time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC)
		return begin, begin.AddDate(1, 0, 0)
	}
}

// evalOp applies "v op d".
func (ev *evaluator) evalOp(v value, op byte, d duration) (value, error) {
	if !v.isRange {
		if d.hasAmbig { // excluded by the parser
			return value{}, ev.errorf("duration without unit applied to a timestamp")
		}
		t, err := ev.apply(v.begin, op, d)
		if err != nil {
			return value{}, err
		}
		return value{begin: t, end: t}, nil
	}
	rd, ok := d.resolve(v.end.UnixMicro() - v.begin.UnixMicro())
	if !ok {
		return value{}, ev.errorf("duration out of range")
	}
	begin, err := ev.apply(v.begin, op, rd)
	if err != nil {
		return value{}, err
	}
	end, err := ev.apply(v.end, op, rd)
	if err != nil {
		return value{}, err
	}
	r := value{begin: begin, end: end, isRange: true}
	if v.unit == 0 || !rd.smallerThan(v.unit) {
		return r, nil // plain range, or no longer pinned (defect D-3 fixed)
	}
	r.unit, r.pin = v.unit, v.pin
	return ev.realign(r)
}

// realign shifts a pinned range by whole multiples of its length until it
// contains its pin: back while it begins after the pin, then forward while
// it ends at or before it. The ends of a pinned range are whole
// microseconds, so the arithmetic is exact.
func (ev *evaluator) realign(r value) (value, error) {
	b, e := r.begin.UnixMicro(), r.end.UnixMicro()
	x := r.pin.UnixMicro() // floor: begin > pin ⇔ b > x, end <= pin ⇔ e <= x
	length := e - b
	if length <= 0 {
		return r, nil // cannot contain anything; shifting would not help
	}
	var shift int64
	switch {
	case b > x:
		shift = -((b - x + length - 1) / length) * length
	case e <= x:
		shift = ((x-e)/length + 1) * length
	default:
		return r, nil
	}
	b, e = b+shift, e+shift
	if b < minMicros || e >= maxMicros {
		return value{}, ev.errorf("re-aligned range is outside the years 1 to 9999")
	}
	r.begin, r.end = time.UnixMicro(b).UTC(), time.UnixMicro(e).UTC()
	return r, nil
}

// apply computes "t op d" for a timestamp.
func (ev *evaluator) apply(t time.Time, op byte, d duration) (time.Time, error) {
	if op == '@' {
		return ev.replace(t, d)
	}
	sign := int64(1)
	if op == '-' {
		sign = -1
	}
	// Days and smaller first, as an exact delta.
	us, ok := d.exactMicros()
	if !ok {
		return time.Time{}, ev.errorf("%s %c %s: duration out of range", formatTime(t), op, formatDuration(d))
	}
	r, ok := addMicros(t, sign*us)
	if !ok {
		return time.Time{}, ev.errorf("%s %c %s: result outside the years 1 to 9999", formatTime(t), op, formatDuration(d))
	}
	// Then months with year carry, then years; the day must exist.
	for _, u := range []Unit{Month, Year} {
		if d.n[u] == 0 {
			continue
		}
		months := d.n[u]
		if u == Year {
			if months > (1<<62)/12 {
				return time.Time{}, ev.errorf("%s %c %s: result outside the years 1 to 9999", formatTime(t), op, formatDuration(d))
			}
			months *= 12
		}
		total, ok := addInt(int64(r.Year())*12+int64(r.Month())-1, sign*months)
		if !ok {
			return time.Time{}, ev.errorf("%s %c %s: result outside the years 1 to 9999", formatTime(t), op, formatDuration(d))
		}
		y, m := floorDiv(total, 12), total-floorDiv(total, 12)*12+1
		if y < 1 || y > 9999 {
			return time.Time{}, ev.errorf("%s %c %s: result outside the years 1 to 9999", formatTime(t), op, formatDuration(d))
		}
		if r.Day() > daysIn(int(y), time.Month(m)) {
			return time.Time{}, ev.errorf("%s %c %s: day %d does not exist in %04d-%02d",
				formatTime(t), op, formatDuration(d), r.Day(), y, m)
		}
		r = time.Date(int(y), time.Month(m), r.Day(), r.Hour(), r.Minute(), r.Second(), r.Nanosecond(), time.UTC)
	}
	return r, nil
}

// replace computes "t @ d": each given component is set to its count.
func (ev *evaluator) replace(t time.Time, d duration) (time.Time, error) {
	fields := [...]struct {
		u        Unit
		cur      int64
		min, max int64
	}{
		{Year, int64(t.Year()), 1, 9999},
		{Month, int64(t.Month()), 1, 12},
		{Day, int64(t.Day()), 1, 31},
		{Hour, int64(t.Hour()), 0, 23},
		{Minute, int64(t.Minute()), 0, 59},
		{Second, int64(t.Second()), 0, 59},
		{Microsecond, int64(t.Nanosecond() / 1000), 0, 999999},
	}
	var v [Year + 1]int64
	for _, f := range fields {
		v[f.u] = f.cur
		if !d.set[f.u] {
			continue
		}
		if n := d.n[f.u]; n < f.min || n > f.max {
			return time.Time{}, ev.errorf("%s @ %s: %s %d out of range %d..%d",
				formatTime(t), formatDuration(d), f.u, n, f.min, f.max)
		}
		v[f.u] = d.n[f.u]
	}
	if max := daysIn(int(v[Year]), time.Month(v[Month])); v[Day] > int64(max) {
		return time.Time{}, ev.errorf("%s @ %s: day %d does not exist in %04d-%02d",
			formatTime(t), formatDuration(d), v[Day], v[Year], v[Month])
	}
	ns := int64(t.Nanosecond() % 1000) // below a microsecond: kept
	if d.set[Microsecond] {
		ns = 0
	}
	return time.Date(int(v[Year]), time.Month(v[Month]), int(v[Day]), int(v[Hour]), int(v[Minute]), int(v[Second]),
		int(v[Microsecond]*1000+ns), time.UTC), nil
}

// addMicros adds us microseconds to t (which lies within the years 1 to
// 9999), keeping its sub-microsecond part; false when the result leaves
// those years.
func addMicros(t time.Time, us int64) (time.Time, bool) {
	m, ok := addInt(t.UnixMicro(), us)
	if !ok || m < minMicros || m >= maxMicros {
		return time.Time{}, false
	}
	return time.UnixMicro(m).Add(time.Duration(t.Nanosecond() % 1000)).UTC(), true
}

// daysIn returns the number of days of a month.
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// formatTime renders a time for messages.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.999999999")
}

// formatDuration renders a duration for messages.
func formatDuration(d duration) string {
	var b strings.Builder
	d.format(&b)
	return b.String()
}
