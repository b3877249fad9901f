package stream

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := ParseTime(s)
	if err != nil {
		t.Fatalf("ParseTime(%q): %v", s, err)
	}
	return tm
}

func TestValueOf(t *testing.T) {
	ts := time.Date(2014, 8, 1, 2, 10, 23, 550_000, time.UTC)
	tests := []struct {
		name    string
		in      any
		want    Value
		wantErr error
	}{
		{name: "string", in: "42", want: String("42")},
		{name: "empty string", in: "", want: String("")},
		{name: "int", in: 42, want: Int(42)},
		{name: "int8", in: int8(-8), want: Int(-8)},
		{name: "int16", in: int16(16), want: Int(16)},
		{name: "int32", in: int32(32), want: Int(32)},
		{name: "int64", in: int64(math.MaxInt64), want: Int(math.MaxInt64)},
		{name: "uint8", in: uint8(8), want: Int(8)},
		{name: "uint16", in: uint16(16), want: Int(16)},
		{name: "uint32", in: uint32(32), want: Int(32)},
		{name: "uint", in: uint(7), want: Int(7)},
		{name: "uint64 max int64", in: uint64(math.MaxInt64), want: Int(math.MaxInt64)},
		{name: "uint64 overflow", in: uint64(math.MaxInt64) + 1, wantErr: ErrUnsupported},
		{name: "float64", in: 42.0, want: Float(42)},
		{name: "float32", in: float32(0.5), want: Float(0.5)},
		{name: "time in a zone becomes UTC", in: time.Date(2014, 8, 1, 4, 10, 23, 550_999, time.FixedZone("CEST", 2*3600)), want: Datetime(ts)},
		{name: "json int", in: json.Number("42"), want: Int(42)},
		{name: "json float with point", in: json.Number("42.0"), want: Float(42)},
		{name: "json float with exponent", in: json.Number("4.2E1"), want: Float(42)},
		{name: "json negative zero int", in: json.Number("-0"), want: Int(0)},
		{name: "json int out of range", in: json.Number("9223372036854775808"), wantErr: ErrUnsupported},
		{name: "json float out of range", in: json.Number("1e400"), wantErr: ErrUnsupported},
		{name: "tagged datetime", in: map[string]any{"$datetime": "2014-08-01T02:10:23.000550"}, want: Datetime(ts)},
		{name: "tagged datetime with zone", in: map[string]any{"$datetime": "2014-08-01T03:10:23.000550+01:00"}, want: Datetime(ts)},
		{
			name: "tagged timerange",
			in:   map[string]any{"$timerange": map[string]any{"begin": "2014-08-01T00:00:00", "end": "2014-08-02T00:00:00"}},
			want: TimeRange(time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC), time.Date(2014, 8, 2, 0, 0, 0, 0, time.UTC)),
		},
		{name: "value passes through", in: Float(1.5), want: Float(1.5)},
		{name: "nil", in: nil, wantErr: ErrNull},
		{name: "zero value", in: Value{}, wantErr: ErrNull},
		{name: "bool", in: true, wantErr: ErrUnsupported},
		{name: "list", in: []any{1, 2}, wantErr: ErrUnsupported},
		{name: "plain map", in: map[string]any{"a": 1}, wantErr: ErrUnsupported},
		{name: "tagged map with extra key", in: map[string]any{"$datetime": "2014-08-01", "x": 1}, wantErr: ErrUnsupported},
		{name: "datetime not a string", in: map[string]any{"$datetime": 5}, wantErr: ErrUnsupported},
		{name: "timerange missing end", in: map[string]any{"$timerange": map[string]any{"begin": "2014-08-01"}}, wantErr: ErrUnsupported},
		{name: "timerange not a map", in: map[string]any{"$timerange": "2014-08-01"}, wantErr: ErrUnsupported},
		{name: "struct", in: struct{}{}, wantErr: ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValueOf(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ValueOf(%#v) = %v, %v, want error %v", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ValueOf(%#v): %v", tc.in, err)
			}
			if got.Kind() != tc.want.Kind() || !got.Equal(tc.want) {
				t.Errorf("ValueOf(%#v) = %v (%s), want %v (%s)", tc.in, got, got.Kind(), tc.want, tc.want.Kind())
			}
		})
	}
}

func TestValueOfBadDatetimeIsAnError(t *testing.T) {
	// A tagged datetime that does not parse is reported, not silently
	// turned into a string.
	for _, in := range []map[string]any{
		{"$datetime": "yesterday"},
		{"$timerange": map[string]any{"begin": "2014-08-01", "end": "soon"}},
		{"$timerange": map[string]any{"begin": "then", "end": "2014-08-01"}},
	} {
		if v, err := ValueOf(in); err == nil {
			t.Errorf("ValueOf(%v) = %v, want an error", in, v)
		}
	}
}

// TestTypedEquality checks that 42, 42.0 and "42" are three different
// values, and that Key agrees with Equal.
func TestTypedEquality(t *testing.T) {
	day := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	values := []Value{
		String("42"), Int(42), Float(42), String("4"), Int(4), Float(42.5), String(""),
		Datetime(day), Datetime(day.Add(time.Microsecond)),
		TimeRange(day, day.AddDate(0, 0, 1)), TimeRange(day, day.AddDate(0, 0, 2)), TimeRange(day.AddDate(0, 0, -1), day.AddDate(0, 0, 1)),
		String("i:42"), String("s:42"),
	}
	for i, a := range values {
		for j, b := range values {
			eq := a.Equal(b)
			if eq != (i == j) {
				t.Errorf("%v (%s) Equal %v (%s) = %v, want %v", a, a.Kind(), b, b.Kind(), eq, i == j)
			}
			if keyEq := a.Key() == b.Key(); keyEq != eq {
				t.Errorf("Key(%v)=%q, Key(%v)=%q: key equality %v, Equal %v", a, a.Key(), b, b.Key(), keyEq, eq)
			}
		}
	}
}

func TestFloatZeroKey(t *testing.T) {
	neg := Float(math.Copysign(0, -1))
	if !neg.Equal(Float(0)) {
		t.Fatalf("-0.0 Equal 0.0 = false")
	}
	if neg.Key() != Float(0).Key() {
		t.Errorf("Key(-0.0) = %q, Key(0.0) = %q: equal values must have equal keys", neg.Key(), Float(0).Key())
	}
}

func TestDatetimeNormalisation(t *testing.T) {
	in := time.Date(2014, 8, 1, 4, 10, 23, 123_456_789, time.FixedZone("", 2*3600))
	v := Datetime(in)
	want := time.Date(2014, 8, 1, 2, 10, 23, 123_456_000, time.UTC)
	if !v.Time().Equal(want) || v.Time().Location() != time.UTC {
		t.Errorf("Datetime(%v).Time() = %v, want %v in UTC", in, v.Time(), want)
	}
	b, e := v.Range()
	if !b.Equal(want) || !e.Equal(want) {
		t.Errorf("Range of a datetime = %v, %v, want both %v", b, e, want)
	}
}

func TestAccessors(t *testing.T) {
	tests := []struct {
		v       Value
		text    string
		i       int64
		f       float64
		num     float64
		numeric bool
		str     string
	}{
		{v: String("abc"), text: "abc", str: "abc"},
		{v: Int(-3), i: -3, num: -3, numeric: true, str: "-3"},
		{v: Float(2.5), f: 2.5, num: 2.5, numeric: true, str: "2.5"},
		{v: Float(42), f: 42, num: 42, numeric: true, str: "42.0"},
		{v: Datetime(time.Date(2014, 8, 1, 2, 10, 23, 550_000, time.UTC)), str: "2014-08-01T02:10:23.00055"},
		{v: TimeRange(time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC), time.Date(2014, 8, 2, 0, 0, 0, 0, time.UTC)), str: "[2014-08-01T00:00:00, 2014-08-02T00:00:00)"},
		{v: Value{}, str: "<invalid>"},
	}
	for _, tc := range tests {
		num, numeric := tc.v.Number()
		got := []any{tc.v.Text(), tc.v.IntValue(), tc.v.FloatValue(), num, numeric, tc.v.String()}
		want := []any{tc.text, tc.i, tc.f, tc.num, tc.numeric, tc.str}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("accessors of %s value (-want +got):\n%s", tc.v.Kind(), diff)
		}
	}
	if !(Value{}).IsZero() || Int(0).IsZero() {
		t.Errorf("IsZero wrong")
	}
}

func TestKind(t *testing.T) {
	want := map[Kind]string{KindString: "string", KindInt: "int", KindFloat: "float", KindDatetime: "datetime", KindTimeRange: "timerange", 0: "kind(0)", 9: "kind(9)"}
	for k, name := range want {
		if k.String() != name {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), k.String(), name)
		}
		if valid := k >= 1 && k <= 5; k.Valid() != valid {
			t.Errorf("Kind(%d).Valid() = %v", int(k), k.Valid())
		}
	}
	// Persisted numbers never change.
	if KindString != 1 || KindInt != 2 || KindFloat != 3 || KindDatetime != 4 || KindTimeRange != 5 {
		t.Errorf("kind numbers changed")
	}
}

func TestFormatFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{42, "42.0"},
		{-42, "-42.0"},
		{0, "0.0"},
		{0.1, "0.1"},
		{1e21, "1e+21"},
		{1.5e-7, "1.5e-07"},
		{123456789, "1.23456789e+08"},
	}
	for _, tc := range tests {
		if got := FormatFloat(tc.in); got != tc.want {
			t.Errorf("FormatFloat(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2014, 8, 1, 2, 10, 23, 550_000, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2014-08-01T02:10:23.000550", want},
		{"2014-08-01 02:10:23.000550", want},
		{" 2014-08-01T02:10:23.000550 ", want},
		{"2014-08-01T02:10:23.000550Z", want},
		{"2014-08-01T04:10:23.000550+02:00", want},
		{"2014-08-01T04:10:23.000550+0200", want},
		{"2014-08-01T01:10:23.000550-01", want},
		{"2014-08-01T02:10:23.000550999", want}, // nanoseconds truncated
		{"2014-08-01T02:10:23", time.Date(2014, 8, 1, 2, 10, 23, 0, time.UTC)},
		{"2014-08-01T02:10", time.Date(2014, 8, 1, 2, 10, 0, 0, time.UTC)},
		{"2014-08-01T02:10Z", time.Date(2014, 8, 1, 2, 10, 0, 0, time.UTC)},
		{"2014-08-01", time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		got, err := ParseTime(tc.in)
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v, want %v UTC", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2014-13-01", "2014-02-30T00:00:00", "01/08/2014", "2014-08-01T25:00:00", "1407000000"} {
		if got, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", bad, got)
		} else if !strings.Contains(err.Error(), "ISO 8601") {
			t.Errorf("ParseTime(%q) error %q does not say what is expected", bad, err)
		}
	}
}

// TestParseTimeRange: a time that becomes year 0 or 10000 in UTC would be
// written in a form ParseTime cannot read back, so it is refused.
func TestParseTimeRange(t *testing.T) {
	for _, in := range []string{"9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00", "0000-06-01T00:00:00"} {
		if got, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an out of range error", in, got)
		}
	}
	for _, in := range []string{"9999-12-31T23:59:59.999999", "0001-01-01T00:00:00", "9999-12-31T23:59:59+01:00"} {
		got, err := ParseTime(in)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", in, err)
			continue
		}
		if back, err := ParseTime(FormatTime(got)); err != nil || !back.Equal(got) {
			t.Errorf("ParseTime(FormatTime(%v)) = %v, %v", got, back, err)
		}
	}
}

func TestFormatTime(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2014, 8, 1, 2, 10, 23, 550_000, time.UTC), "2014-08-01T02:10:23.00055"},
		{time.Date(2014, 8, 1, 2, 10, 23, 0, time.UTC), "2014-08-01T02:10:23"},
		{time.Date(2014, 8, 1, 2, 10, 23, 1000, time.UTC), "2014-08-01T02:10:23.000001"},
		{time.Date(2014, 8, 1, 4, 10, 23, 0, time.FixedZone("", 2*3600)), "2014-08-01T02:10:23"},
	}
	for _, tc := range tests {
		got := FormatTime(tc.in)
		if got != tc.want {
			t.Errorf("FormatTime(%v) = %q, want %q", tc.in, got, tc.want)
		}
		back := mustTime(t, got)
		if !back.Equal(tc.in.Truncate(time.Microsecond)) {
			t.Errorf("ParseTime(FormatTime(%v)) = %v", tc.in, back)
		}
	}
}

func TestInterfaceIsInverseOfValueOf(t *testing.T) {
	day := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []Value{String("x"), Int(42), Float(42), Datetime(day.Add(550 * time.Microsecond)), TimeRange(day, day.AddDate(0, 0, 1))} {
		back, err := ValueOf(v.Interface())
		if err != nil || back.Kind() != v.Kind() || !back.Equal(v) {
			t.Errorf("ValueOf(%v.Interface()) = %v (%s), %v", v, back, back.Kind(), err)
		}
	}
	if (Value{}).Interface() != nil {
		t.Errorf("zero Value Interface() != nil")
	}
}
