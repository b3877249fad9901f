package distiller

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/winchester-go/winchester/stream"
)

func TestConvert(t *testing.T) {
	day := func(s string) stream.Value {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("bad test time %s: %v", s, err)
		}
		return stream.Datetime(tm)
	}
	tests := []struct {
		name    string
		typ     TraitType
		in      any
		want    stream.Value
		wantErr bool
	}{
		{name: "text string", typ: TypeText, in: "abc", want: stream.String("abc")},
		{name: "text empty string", typ: TypeText, in: "", want: stream.String("")},
		{name: "text int", typ: TypeText, in: json.Number("50"), want: stream.String("50")},
		{name: "text float", typ: TypeText, in: json.Number("3.140"), want: stream.String("3.14")},
		{name: "text float with exponent", typ: TypeText, in: json.Number("1e3"), want: stream.String("1000.0")},
		{name: "text large float", typ: TypeText, in: json.Number("1e16"), want: stream.String("1e+16")},
		{name: "text small float", typ: TypeText, in: 0.00001, want: stream.String("1e-05")},
		{name: "text true", typ: TypeText, in: true, want: stream.String("True")},
		{name: "text false", typ: TypeText, in: false, want: stream.String("False")},
		{name: "text object as compact JSON", typ: TypeText, in: map[string]any{"b": json.Number("1"), "a": []any{"<x>", nil}}, want: stream.String(`{"a":["<x>",null],"b":1}`)},
		{name: "text list", typ: TypeText, in: []any{"a", json.Number("2")}, want: stream.String(`["a",2]`)},
		{name: "text non-ASCII", typ: TypeText, in: "café-über", want: stream.String("café-über")},
		{name: "int string", typ: TypeInt, in: "20", want: stream.Int(20)},
		{name: "int string with blanks and sign", typ: TypeInt, in: " -20 ", want: stream.Int(-20)},
		{name: "int decimal string", typ: TypeInt, in: "20.5", wantErr: true},
		{name: "int word", typ: TypeInt, in: "many", wantErr: true},
		{name: "int number", typ: TypeInt, in: json.Number("2048"), want: stream.Int(2048)},
		{name: "int float truncates", typ: TypeInt, in: json.Number("20.7"), want: stream.Int(20)},
		{name: "int negative float truncates toward zero", typ: TypeInt, in: -20.7, want: stream.Int(-20)},
		{name: "int huge", typ: TypeInt, in: json.Number("123456789012345678901234567890"), wantErr: true},
		{name: "int huge float", typ: TypeInt, in: json.Number("1e300"), wantErr: true},
		{name: "int bool", typ: TypeInt, in: true, want: stream.Int(1)},
		{name: "int object", typ: TypeInt, in: map[string]any{}, wantErr: true},
		{name: "int go int64", typ: TypeInt, in: int64(7), want: stream.Int(7)},
		{name: "float string", typ: TypeFloat, in: "20", want: stream.Float(20)},
		{name: "float number", typ: TypeFloat, in: json.Number("2.5"), want: stream.Float(2.5)},
		{name: "float int number", typ: TypeFloat, in: json.Number("2"), want: stream.Float(2)},
		{name: "float nan", typ: TypeFloat, in: "nan", wantErr: true},
		{name: "float inf", typ: TypeFloat, in: "inf", wantErr: true},
		{name: "float hex", typ: TypeFloat, in: "0x1p-2", wantErr: true},
		{name: "float list", typ: TypeFloat, in: []any{}, wantErr: true},
		{name: "datetime space and fraction", typ: TypeDatetime, in: "2014-08-11 21:31:52.653102", want: day("2014-08-11T21:31:52.653102Z")},
		{name: "datetime T", typ: TypeDatetime, in: "2014-08-11T21:32:09.000000", want: day("2014-08-11T21:32:09Z")},
		{name: "datetime zone", typ: TypeDatetime, in: "2014-08-11T01:00:00-05:00", want: day("2014-08-11T06:00:00Z")},
		{name: "datetime utc offset", typ: TypeDatetime, in: "2014-08-11 21:31:52+00:00", want: day("2014-08-11T21:31:52Z")},
		{name: "datetime Z", typ: TypeDatetime, in: "2014-08-11T21:31:52Z", want: day("2014-08-11T21:31:52Z")},
		{name: "datetime date only", typ: TypeDatetime, in: "2014-08-11", want: day("2014-08-11T00:00:00Z")},
		{name: "datetime word", typ: TypeDatetime, in: "yesterday", wantErr: true},
		{name: "datetime number", typ: TypeDatetime, in: json.Number("1407792712"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := convert(tc.typ, tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("convert(%s, %#v) = %v, want an error", tc.typ, tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("convert(%s, %#v): %v", tc.typ, tc.in, err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("convert(%s, %#v) = %v (%s), want %v (%s)", tc.typ, tc.in, got, got.Kind(), tc.want, tc.want.Kind())
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{patterns: []string{"compute.instance.*"}, typ: "compute.instance.create.end", want: true},
		{patterns: []string{"compute.instance.*"}, typ: "compute.instancex", want: false},
		{patterns: []string{"*"}, typ: "anything.at.all", want: true},
		{patterns: []string{"compute.instance.exists"}, typ: "compute.instance.exists.verified", want: false},
		{patterns: []string{"compute.*.end"}, typ: "compute.instance.create.end", want: true},
		{patterns: []string{"compute.?.end"}, typ: "compute.x.end", want: true},
		{patterns: []string{"compute.[ab].end"}, typ: "compute.b.end", want: true},
		{patterns: []string{"compute.[!ab].end"}, typ: "compute.b.end", want: false},
		{patterns: []string{"compute.[!ab].end"}, typ: "compute.c.end", want: true},
		{patterns: []string{"compute.[x"}, typ: "compute.[x", want: true},
		{patterns: []string{"a+b(c)"}, typ: "a+b(c)", want: true},
		{patterns: []string{"Compute.*"}, typ: "compute.x", want: false},
		{patterns: []string{"compute.instance.create.*", "!compute.instance.create.error"}, typ: "compute.instance.create.error", want: false},
		{patterns: []string{"compute.instance.create.*", "!compute.instance.create.error"}, typ: "compute.instance.create.end", want: true},
		{patterns: []string{"!compute.*"}, typ: "image.upload", want: true},
		{patterns: []string{"!compute.*"}, typ: "compute.x", want: false},
		{patterns: []string{}, typ: "compute.x", want: false},
	}
	for _, tc := range tests {
		m, err := newTypeMatcher(tc.patterns)
		if err != nil {
			t.Fatalf("newTypeMatcher(%q): %v", tc.patterns, err)
		}
		if got := m.match(tc.typ); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.patterns, tc.typ, got, tc.want)
		}
	}
}

func TestPyFloat(t *testing.T) {
	tests := map[float64]string{
		0: "0.0", 1: "1.0", -2.5: "-2.5", 3.14: "3.14", 123456789: "123456789.0",
		1e15: "1000000000000000.0", 1e16: "1e+16", 1.5e16: "1.5e+16", 0.0001: "0.0001", 0.00001: "1e-05",
	}
	tests[math.Inf(1)] = "inf"
	tests[math.Inf(-1)] = "-inf"
	if got := pyFloat(math.NaN()); got != "nan" {
		t.Errorf("pyFloat(NaN) = %q, want nan", got)
	}
	for in, want := range tests {
		if got := pyFloat(in); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", in, got, want)
		}
	}
}
