package timex

import (
	"math"
	"strconv"
	"strings"
)

// duration is a set of (unit → count) parts plus an optional ambiguous
// (unitless) count. Juxtaposed parts add up per unit. A part written with a
// zero count is still present: "@ 0h" sets the hour.
type duration struct {
	n        [Year + 1]int64 // indexed by Unit
	set      [Year + 1]bool
	ambig    int64
	hasAmbig bool
}

// add adds count to unit u (0 = the ambiguous count); false on overflow.
func (d *duration) add(u Unit, count int64) bool {
	p := &d.ambig
	if u == 0 {
		d.hasAmbig = true
	} else {
		p = &d.n[u]
		d.set[u] = true
	}
	s, ok := addInt(*p, count)
	if !ok {
		return false
	}
	*p = s
	return true
}

// resolve returns d with its ambiguous count moved to the unit one step
// below a range of the given length in microseconds (section 3.6). ok is
// false when the count overflows.
func (d duration) resolve(lengthUS int64) (duration, bool) {
	if !d.hasAmbig {
		return d, true
	}
	u := ambiguousUnit(lengthUS)
	count := d.ambig
	d.ambig, d.hasAmbig = 0, false
	ok := d.add(u, count)
	return d, ok
}

// ambiguousUnit picks the unit of a unitless number applied to a range of
// the given length (absolute, microseconds).
func ambiguousUnit(lengthUS int64) Unit {
	if lengthUS < 0 {
		lengthUS = -lengthUS // never overflows: lengths are bounded by the year range
	}
	const day = 24 * 60 * 60 * 1_000_000
	switch {
	case lengthUS >= 365*day:
		return Month
	case lengthUS >= 28*day:
		return Day
	case lengthUS >= day:
		return Hour
	case lengthUS >= 60*60*1_000_000:
		return Minute
	case lengthUS >= 60*1_000_000:
		return Second
	}
	return Microsecond
}

// smallerThan reports whether d is smaller than one u: the counts are
// compared unit by unit from years down, as a tuple (so 25h is smaller than
// 1d, and 1d 6h is not).
func (d duration) smallerThan(u Unit) bool {
	for v := Year; v >= Microsecond; v-- {
		var one int64
		if v == u {
			one = 1
		}
		if d.n[v] != one {
			return d.n[v] < one
		}
	}
	return false
}

// exactMicros returns the non-calendar part (days and smaller) in
// microseconds; ok is false on overflow.
func (d duration) exactMicros() (int64, bool) {
	factors := [...]struct {
		u Unit
		f int64
	}{
		{Day, 24 * 60 * 60 * 1_000_000},
		{Hour, 60 * 60 * 1_000_000},
		{Minute, 60 * 1_000_000},
		{Second, 1_000_000},
		{Microsecond, 1},
	}
	var total int64
	for _, x := range factors {
		if d.n[x.u] > math.MaxInt64/x.f {
			return 0, false
		}
		var ok bool
		if total, ok = addInt(total, d.n[x.u]*x.f); !ok {
			return 0, false
		}
	}
	return total, true
}

// format writes the canonical form: parts from years down, then the
// ambiguous count.
func (d duration) format(b *strings.Builder) {
	first := true
	sep := func() {
		if !first {
			b.WriteByte(' ')
		}
		first = false
	}
	for u := Year; u >= Microsecond; u-- {
		if d.set[u] {
			sep()
			b.WriteString(strconv.FormatInt(d.n[u], 10))
			b.WriteString(u.symbol())
		}
	}
	if d.hasAmbig {
		sep()
		b.WriteString(strconv.FormatInt(d.ambig, 10))
	}
}

// addInt adds two int64 values, reporting overflow.
func addInt(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
