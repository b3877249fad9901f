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

// TestEventJSONRoundTrip checks the exact encoding of every value type and
// that decoding gives the same event back.
func TestEventJSONRoundTrip(t *testing.T) {
	ts := time.Date(2014, 8, 1, 2, 10, 23, 550_000, time.UTC)
	day := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		traits map[string]Value
		want   string // the encoded traits after the envelope
	}{
		{name: "no traits", want: ``},
		{name: "string that looks like a number", traits: map[string]Value{"a": String("42")}, want: `,"a":"42"`},
		{name: "int", traits: map[string]Value{"a": Int(42)}, want: `,"a":42`},
		{name: "whole float keeps its point", traits: map[string]Value{"a": Float(42)}, want: `,"a":42.0`},
		{name: "negative zero float", traits: map[string]Value{"a": Float(math.Copysign(0, -1))}, want: `,"a":-0.0`},
		{name: "fractional float", traits: map[string]Value{"a": Float(0.1)}, want: `,"a":0.1`},
		{name: "large float", traits: map[string]Value{"a": Float(1e21)}, want: `,"a":1e+21`},
		{name: "large int", traits: map[string]Value{"a": Int(math.MaxInt64)}, want: `,"a":9223372036854775807`},
		{name: "negative int", traits: map[string]Value{"a": Int(math.MinInt64)}, want: `,"a":-9223372036854775808`},
		{name: "datetime with microseconds", traits: map[string]Value{"a": Datetime(ts.Add(time.Microsecond))}, want: `,"a":{"$datetime":"2014-08-01T02:10:23.000551"}`},
		{name: "datetime whole second", traits: map[string]Value{"a": Datetime(day)}, want: `,"a":{"$datetime":"2014-08-01T00:00:00"}`},
		{
			name:   "timerange",
			traits: map[string]Value{"a": TimeRange(day, day.AddDate(0, 0, 1))},
			want:   `,"a":{"$timerange":{"begin":"2014-08-01T00:00:00","end":"2014-08-02T00:00:00"}}`,
		},
		{
			name:   "traits sorted, strings escaped",
			traits: map[string]Value{"z": String("é\"\n<"), "a": Int(1), "m": String("")},
			want:   `,"a":1,"m":"","z":"é\"\n\u003c"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := Event{MessageID: "m1", Type: "compute.instance.exists", Timestamp: ts, Traits: tc.traits}
			if ev.Traits == nil {
				ev.Traits = map[string]Value{}
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			want := `{"message_id":"m1","event_type":"compute.instance.exists","timestamp":"2014-08-01T02:10:23.00055"` + tc.want + `}`
			if string(b) != want {
				t.Errorf("Marshal =\n%s\nwant\n%s", b, want)
			}
			back, dropped, err := DecodeEvent(b)
			if err != nil || len(dropped) != 0 {
				t.Fatalf("DecodeEvent(%s) = %v, %v", b, dropped, err)
			}
			if diff := cmp.Diff(ev, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			for k, v := range ev.Traits {
				if back.Traits[k].Kind() != v.Kind() {
					t.Errorf("trait %s: kind %s after the round trip, want %s", k, back.Traits[k].Kind(), v.Kind())
				}
			}
			var strict Event
			if err := json.Unmarshal(b, &strict); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if diff := cmp.Diff(ev, strict); diff != "" {
				t.Errorf("Unmarshal (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeEventTypes checks that the three spellings 42, 42.0 and "42"
// stay three types, that zones become UTC and microseconds are kept.
func TestDecodeEventTypes(t *testing.T) {
	in := `{
		"message_id": "m1", "event_type": "t", "timestamp": "2014-08-01T04:10:23.123456789+02:00",
		"int": 42, "float": 42.0, "exp": 4.2e1, "string": "42",
		"dt": {"$datetime": "2014-08-01 02:10:23.000550Z"},
		"null": null, "bool": false, "list": [1], "obj": {"a": 1}, "big": 18446744073709551616
	}`
	ev, dropped, err := DecodeEvent([]byte(in))
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	wantTS := time.Date(2014, 8, 1, 2, 10, 23, 123_456_000, time.UTC)
	if !ev.Timestamp.Equal(wantTS) || ev.Timestamp.Location() != time.UTC {
		t.Errorf("timestamp = %v, want %v UTC", ev.Timestamp, wantTS)
	}
	wantTraits := map[string]Value{
		"int": Int(42), "float": Float(42), "exp": Float(42), "string": String("42"),
		"dt": Datetime(time.Date(2014, 8, 1, 2, 10, 23, 550_000, time.UTC)),
	}
	if diff := cmp.Diff(wantTraits, ev.Traits); diff != "" {
		t.Errorf("traits (-want +got):\n%s", diff)
	}
	kinds := map[string]Kind{}
	for k, v := range ev.Traits {
		kinds[k] = v.Kind()
	}
	wantKinds := map[string]Kind{"int": KindInt, "float": KindFloat, "exp": KindFloat, "string": KindString, "dt": KindDatetime}
	if diff := cmp.Diff(wantKinds, kinds); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
	var names []string
	for _, d := range dropped {
		names = append(names, d.Trait)
	}
	if diff := cmp.Diff([]string{"big", "bool", "list", "obj"}, names); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}

	// The strict decoder refuses the same input, naming the first bad trait.
	var strict Event
	err = json.Unmarshal([]byte(in), &strict)
	if err == nil || !strings.Contains(err.Error(), `trait "big"`) {
		t.Errorf("Unmarshal error = %v, want one naming trait \"big\"", err)
	}
}

// TestCheckJSONText: surrogate pairs and escaped backslashes before "u"
// are text, not lone surrogates.
func TestCheckJSONText(t *testing.T) {
	for _, ok := range []string{`"\ud83d\ude00"`, `"\\ud800"`, `"\\\\ud800"`, `"\u00e9\\"`, `"\ud83d\ude00\ud83d\ude00"`} {
		if err := CheckJSONText([]byte(ok)); err != nil {
			t.Errorf("CheckJSONText(%s) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{`"\ud800"`, `"\\\ud800"`, `"\ude00\ud83d"`, `"\ud83d\ude00\udfff"`} {
		if err := CheckJSONText([]byte(bad)); err == nil || !strings.Contains(err.Error(), "lone UTF-16 surrogate") {
			t.Errorf("CheckJSONText(%s) = %v, want a lone surrogate", bad, err)
		}
	}
}

func TestDecodeEventErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"not json", `{"message_id": `},
		{"not an object", `["m1"]`},
		{"null", `null`},
		{"trailing data", `{"message_id":"m","event_type":"t","timestamp":"2014-08-01"} {}`},
		{"missing message_id", `{"event_type":"t","timestamp":"2014-08-01"}`},
		{"null event_type", `{"message_id":"m","event_type":null,"timestamp":"2014-08-01"}`},
		{"numeric timestamp", `{"message_id":"m","event_type":"t","timestamp":1407000000}`},
		{"bad timestamp", `{"message_id":"m","event_type":"t","timestamp":"2014-08-01T25:00"}`},
		// encoding/json would turn these bytes into U+FFFD.
		{"invalid UTF-8 in a trait", "{\"message_id\":\"m\",\"event_type\":\"t\",\"timestamp\":\"2014-08-01\",\"k\":\"a\xffb\"}"},
		{"invalid UTF-8 in message_id", "{\"message_id\":\"m\xc3(\",\"event_type\":\"t\",\"timestamp\":\"2014-08-01\"}"},
		// And these escapes, lone UTF-16 surrogates, into U+FFFD too.
		{"lone high surrogate in a trait", `{"message_id":"m","event_type":"t","timestamp":"2014-08-01","k":"a\ud800b"}`},
		{"lone low surrogate in message_id", `{"message_id":"m\udc00","event_type":"t","timestamp":"2014-08-01"}`},
		{"high surrogate before a non-surrogate", `{"message_id":"m\uD800\u0041","event_type":"t","timestamp":"2014-08-01"}`},
		{"two high surrogates", `{"message_id":"m\ud800\ud800","event_type":"t","timestamp":"2014-08-01"}`},
		{"lone surrogate at the end", `{"message_id":"m","event_type":"t","timestamp":"2014-08-01","k":"\ud800"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeEvent([]byte(tc.in))
			if !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("DecodeEvent(%s) error = %v, want ErrInvalidEvent", tc.in, err)
			}
		})
	}
}

func TestValueJSON(t *testing.T) {
	day := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v    Value
		want string
	}{
		{String("42"), `"42"`},
		{Int(42), `42`},
		{Float(42), `42.0`},
		{Datetime(day), `{"$datetime":"2014-08-01T00:00:00"}`},
		{TimeRange(day, day.Add(time.Hour)), `{"$timerange":{"begin":"2014-08-01T00:00:00","end":"2014-08-01T01:00:00"}}`},
		{Value{}, `null`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal(%v) = %s, %v, want %s", tc.v, b, err, tc.want)
			continue
		}
		if tc.v.IsZero() {
			var v Value
			if err := json.Unmarshal(b, &v); !errors.Is(err, ErrNull) {
				t.Errorf("Unmarshal(null) error = %v, want ErrNull", err)
			}
			continue
		}
		var back Value
		if err := json.Unmarshal(b, &back); err != nil || back.Kind() != tc.v.Kind() || !back.Equal(tc.v) {
			t.Errorf("Unmarshal(%s) = %v (%s), %v, want %v", b, back, back.Kind(), err, tc.v)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if b, err := json.Marshal(Float(f)); err == nil {
			t.Errorf("Marshal(Float(%v)) = %s, want an error", f, b)
		}
	}
	var v Value
	if err := json.Unmarshal([]byte(`true`), &v); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Unmarshal(true) error = %v, want ErrUnsupported", err)
	}
}

// FuzzDecodeEvent: decoding arbitrary input never panics, and whatever
// decodes encodes and decodes again to the same event and the same bytes.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"message_id":"m1","event_type":"compute.instance.exists","timestamp":"2014-08-01T02:10:23.00055","a":42,"b":42.0,"c":"42"}`))
	f.Add([]byte(`{"message_id":"m","event_type":"t","timestamp":"2014-08-01T04:10:23+02:00","d":{"$datetime":"2014-08-01"},"r":{"$timerange":{"begin":"2014-08-01","end":"2014-08-02"}}}`))
	f.Add([]byte(`{"message_id":"m","event_type":"t","timestamp":"2014-08-01","n":null,"x":[1,{"a":true}],"f":-0.0,"e":1e308}`))
	f.Add([]byte(`{"message_id":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, _, err := DecodeEvent(data)
		if err != nil {
			return
		}
		b1, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", ev, err)
		}
		back, dropped, err := DecodeEvent(b1)
		if err != nil || len(dropped) != 0 {
			t.Fatalf("DecodeEvent(%s) = %v, %v after a successful decode of %q", b1, dropped, err, data)
		}
		if diff := cmp.Diff(ev, back); diff != "" {
			t.Fatalf("decode→encode→decode changed the event (-first +second):\n%s", diff)
		}
		b2, err := json.Marshal(back)
		if err != nil || string(b1) != string(b2) {
			t.Fatalf("encoding not stable:\n%s\n%s (%v)", b1, b2, err)
		}
	})
}
