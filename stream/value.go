package stream

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of a trait value. The numbers are persisted (they are
// the original's Datatype codes) and are never renumbered.
type Kind int

// Trait value kinds. There is no "none" kind: null values never enter the
// system (they are dropped when an event is normalised).
const (
	KindString    Kind = 1
	KindInt       Kind = 2
	KindFloat     Kind = 3
	KindDatetime  Kind = 4
	KindTimeRange Kind = 5 // only for distinguishing traits
)

// String returns the kind's name as used in definitions and messages.
func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindDatetime:
		return "datetime"
	case KindTimeRange:
		return "timerange"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k >= KindString && k <= KindTimeRange }

// Errors returned by ValueOf for values that cannot be traits.
var (
	// ErrNull is returned for a nil value; callers treat it as "absent".
	ErrNull = errors.New("stream: null value")
	// ErrUnsupported is returned for values of a type that is not a trait
	// type (bool, list, map, ...).
	ErrUnsupported = errors.New("stream: unsupported value type")
)

// Value is an immutable typed trait value. The zero Value is invalid
// (Kind 0) and means "no value". Values of different kinds are never equal:
// the string "42", the int 42 and the float 42.0 are three distinct values.
type Value struct {
	kind Kind
	s    string
	i    int64
	f    float64
	t    time.Time // datetime, or range begin
	end  time.Time // range end
}

// String returns a string value.
func String(s string) Value { return Value{kind: KindString, s: s} }

// Int returns an int value.
func Int(i int64) Value { return Value{kind: KindInt, i: i} }

// Float returns a float value.
func Float(f float64) Value { return Value{kind: KindFloat, f: f} }

// Datetime returns a datetime value; t is converted to UTC and truncated to
// microseconds, the precision of storage.
func Datetime(t time.Time) Value { return Value{kind: KindDatetime, t: NormalizeTime(t)} }

// TimeRange returns the half-open range [begin, end) as a value.
func TimeRange(begin, end time.Time) Value {
	return Value{kind: KindTimeRange, t: NormalizeTime(begin), end: NormalizeTime(end)}
}

// NormalizeTime converts t to UTC and truncates it to microseconds.
func NormalizeTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Kind returns the value's kind (0 for the zero Value).
func (v Value) Kind() Kind { return v.kind }

// IsZero reports whether v is the zero (invalid) Value.
func (v Value) IsZero() bool { return v.kind == 0 }

// Text returns the string of a string value, or "".
func (v Value) Text() string { return v.s }

// IntValue returns the integer of an int value, or 0.
func (v Value) IntValue() int64 { return v.i }

// FloatValue returns the float of a float value, or 0.
func (v Value) FloatValue() float64 { return v.f }

// Time returns the instant of a datetime value, the begin of a range, or the
// zero time.
func (v Value) Time() time.Time { return v.t }

// Range returns begin and end of a timerange value (for a datetime both are
// the instant).
func (v Value) Range() (begin, end time.Time) {
	if v.kind == KindDatetime {
		return v.t, v.t
	}
	return v.t, v.end
}

// Number returns the value as a float64 for numeric comparisons and whether
// v is numeric (int or float).
func (v Value) Number() (float64, bool) {
	switch v.kind {
	case KindInt:
		return float64(v.i), true
	case KindFloat:
		return v.f, true
	}
	return 0, false
}

// Equal reports typed equality: same kind and same value. Timeranges
// compare begin and end.
func (v Value) Equal(o Value) bool {
	if v.kind != o.kind {
		return false
	}
	switch v.kind {
	case KindString:
		return v.s == o.s
	case KindInt:
		return v.i == o.i
	case KindFloat:
		return v.f == o.f || (math.IsNaN(v.f) && math.IsNaN(o.f))
	case KindDatetime:
		return v.t.Equal(o.t)
	case KindTimeRange:
		return v.t.Equal(o.t) && v.end.Equal(o.end)
	}
	return true
}

// Key returns a canonical, type-tagged text form of v, used to build stream
// keys: two values have the same Key exactly when they are Equal.
func (v Value) Key() string {
	switch v.kind {
	case KindString:
		return "s:" + v.s
	case KindInt:
		return "i:" + strconv.FormatInt(v.i, 10)
	case KindFloat:
		f := v.f
		if f == 0 {
			f = 0 // -0.0 is Equal to 0.0, so it must have the same key
		}
		return "f:" + strconv.FormatFloat(f, 'g', -1, 64)
	case KindDatetime:
		return "d:" + strconv.FormatInt(v.t.UnixMicro(), 10)
	case KindTimeRange:
		return "r:" + strconv.FormatInt(v.t.UnixMicro(), 10) + "/" + strconv.FormatInt(v.end.UnixMicro(), 10)
	}
	return "?"
}

// String renders v for humans and logs: strings as is, numbers in Go
// syntax (floats always with a decimal point), times in ISO 8601.
func (v Value) String() string {
	switch v.kind {
	case KindString:
		return v.s
	case KindInt:
		return strconv.FormatInt(v.i, 10)
	case KindFloat:
		return FormatFloat(v.f)
	case KindDatetime:
		return FormatTime(v.t)
	case KindTimeRange:
		return "[" + FormatTime(v.t) + ", " + FormatTime(v.end) + ")"
	}
	return "<invalid>"
}

// FormatFloat formats f so that it always reads back as a float (it keeps a
// decimal point or an exponent: 42 is written "42.0").
func FormatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") { // not NaN/Inf, no point, no exponent
		s += ".0"
	}
	return s
}

// TimeLayout is the ISO 8601 layout used everywhere times are written:
// naive UTC, microseconds shown only when not zero.
const TimeLayout = "2006-01-02T15:04:05.999999"

// FormatTime writes t (in UTC) with TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime reads an ISO 8601 date-time: "T" or space separator, optional
// fraction, optional zone ("Z" or ±hh:mm; no zone means UTC), or a date
// alone (midnight). The result is UTC, truncated to microseconds.
func ParseTime(s string) (time.Time, error) {
	str := strings.TrimSpace(s)
	if len(str) > 10 && str[10] == ' ' {
		str = str[:10] + "T" + str[11:]
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, str); err == nil {
			t = NormalizeTime(t)
			if y := t.Year(); y < 1 || y > 9999 {
				// FormatTime could not write it back as ISO 8601.
				return time.Time{}, fmt.Errorf("date-time %q is out of range (years 1 to 9999 in UTC)", s)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid date-time %q (want ISO 8601, e.g. 2014-08-01T02:10:23.000550)", s)
}

var timeLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02T15:04",
	"2006-01-02T15:04Z07:00",
	"2006-01-02",
}

// ValueOf converts a Go value into a trait Value. It accepts strings, all
// integer types, float32/64, time.Time and numbers decoded by encoding/json
// with UseNumber (a literal with '.', 'e' or 'E' is a float), plus the
// encoded forms {"$datetime": ISO} and {"$timerange": {"begin","end"}}. A nil
// value gives ErrNull; bool, lists and other maps give ErrUnsupported.
func ValueOf(x any) (Value, error) {
	switch x := x.(type) {
	case nil:
		return Value{}, ErrNull
	case Value:
		if x.IsZero() {
			return Value{}, ErrNull
		}
		return x, nil
	case string:
		return String(x), nil
	case int:
		return Int(int64(x)), nil
	case int8:
		return Int(int64(x)), nil
	case int16:
		return Int(int64(x)), nil
	case int32:
		return Int(int64(x)), nil
	case int64:
		return Int(x), nil
	case uint8:
		return Int(int64(x)), nil
	case uint16:
		return Int(int64(x)), nil
	case uint32:
		return Int(int64(x)), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return Value{}, fmt.Errorf("%w: integer %d out of range", ErrUnsupported, x)
		}
		return Int(int64(x)), nil
	case uint64:
		if x > math.MaxInt64 {
			return Value{}, fmt.Errorf("%w: integer %d out of range", ErrUnsupported, x)
		}
		return Int(int64(x)), nil
	case float32:
		return Float(float64(x)), nil
	case float64:
		return Float(x), nil
	case time.Time:
		return Datetime(x), nil
	case interface{ String() string }:
		if n, ok := x.(jsonNumber); ok {
			return numberValue(n.String())
		}
	case map[string]any:
		return taggedValue(x)
	}
	return Value{}, fmt.Errorf("%w: %T", ErrUnsupported, x)
}

// jsonNumber matches encoding/json.Number without importing it here.
type jsonNumber interface {
	String() string
	Float64() (float64, error)
	Int64() (int64, error)
}

func numberValue(s string) (Value, error) {
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return Value{}, fmt.Errorf("%w: number %s: %v", ErrUnsupported, s, err)
		}
		return Float(f), nil
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return Value{}, fmt.Errorf("%w: integer %s out of range", ErrUnsupported, s)
	}
	return Int(i), nil
}

func taggedValue(m map[string]any) (Value, error) {
	if len(m) != 1 {
		return Value{}, fmt.Errorf("%w: map", ErrUnsupported)
	}
	if raw, ok := m[tagDatetime]; ok {
		s, ok := raw.(string)
		if !ok {
			return Value{}, fmt.Errorf("%w: %s must be an ISO 8601 string", ErrUnsupported, tagDatetime)
		}
		t, err := ParseTime(s)
		if err != nil {
			return Value{}, fmt.Errorf("%s: %w", tagDatetime, err)
		}
		return Datetime(t), nil
	}
	if raw, ok := m[tagTimeRange]; ok {
		r, ok := raw.(map[string]any)
		if !ok {
			return Value{}, fmt.Errorf("%w: %s must be {begin, end}", ErrUnsupported, tagTimeRange)
		}
		bs, _ := r["begin"].(string)
		es, _ := r["end"].(string)
		if len(r) != 2 || bs == "" || es == "" {
			return Value{}, fmt.Errorf("%w: %s must be {begin, end} ISO 8601 strings", ErrUnsupported, tagTimeRange)
		}
		b, err := ParseTime(bs)
		if err != nil {
			return Value{}, fmt.Errorf("%s begin: %w", tagTimeRange, err)
		}
		e, err := ParseTime(es)
		if err != nil {
			return Value{}, fmt.Errorf("%s end: %w", tagTimeRange, err)
		}
		return TimeRange(b, e), nil
	}
	return Value{}, fmt.Errorf("%w: map", ErrUnsupported)
}

// Keys of the tagged JSON forms of datetime and timerange values.
const (
	tagDatetime  = "$datetime"
	tagTimeRange = "$timerange"
)

// Interface returns v in its plain encoded form: string, int64, float64,
// map{"$datetime": ISO} or map{"$timerange": {begin, end}}. It is the
// inverse of ValueOf and the basis of the JSON encoding.
func (v Value) Interface() any {
	switch v.kind {
	case KindString:
		return v.s
	case KindInt:
		return v.i
	case KindFloat:
		return v.f
	case KindDatetime:
		return map[string]any{tagDatetime: FormatTime(v.t)}
	case KindTimeRange:
		return map[string]any{tagTimeRange: map[string]any{"begin": FormatTime(v.t), "end": FormatTime(v.end)}}
	}
	return nil
}
