package stream

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewEventEnvelope(t *testing.T) {
	ts := time.Date(2014, 8, 1, 2, 10, 23, 550_000, time.UTC)
	base := func() map[string]any {
		return map[string]any{"message_id": "m1", "event_type": "compute.instance.exists", "timestamp": "2014-08-01T02:10:23.000550"}
	}
	with := func(k string, v any) map[string]any {
		m := base()
		m[k] = v
		return m
	}
	without := func(k string) map[string]any {
		m := base()
		delete(m, k)
		return m
	}
	tests := []struct {
		name      string
		raw       map[string]any
		wantTS    time.Time
		wantField string // "" = valid
	}{
		{name: "valid", raw: base(), wantTS: ts},
		{name: "timestamp as time.Time", raw: with("timestamp", ts.In(time.FixedZone("", -5*3600))), wantTS: ts},
		{name: "timestamp as tagged datetime", raw: with("timestamp", map[string]any{"$datetime": "2014-08-01T02:10:23.000550"}), wantTS: ts},
		{name: "timestamp with zone", raw: with("timestamp", "2014-08-01T04:10:23.000550+02:00"), wantTS: ts},
		{name: "timestamp as Value", raw: with("timestamp", Datetime(ts)), wantTS: ts},
		{name: "message_id as Value", raw: with("message_id", String("m1")), wantTS: ts},
		{name: "missing message_id", raw: without("message_id"), wantField: "message_id"},
		{name: "null message_id", raw: with("message_id", nil), wantField: "message_id"},
		{name: "empty message_id", raw: with("message_id", ""), wantField: "message_id"},
		{name: "numeric message_id", raw: with("message_id", 42), wantField: "message_id"},
		{name: "missing event_type", raw: without("event_type"), wantField: "event_type"},
		{name: "null event_type", raw: with("event_type", nil), wantField: "event_type"},
		{name: "list event_type", raw: with("event_type", []any{"a"}), wantField: "event_type"},
		{name: "missing timestamp", raw: without("timestamp"), wantField: "timestamp"},
		{name: "null timestamp", raw: with("timestamp", nil), wantField: "timestamp"},
		{name: "bad timestamp", raw: with("timestamp", "yesterday"), wantField: "timestamp"},
		{name: "numeric timestamp", raw: with("timestamp", 1407000000), wantField: "timestamp"},
		{name: "timerange timestamp", raw: with("timestamp", TimeRange(ts, ts.Add(time.Hour))), wantField: "timestamp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, dropped, err := NewEvent(tc.raw)
			if tc.wantField != "" {
				var fe *FieldError
				if !errors.Is(err, ErrInvalidEvent) || !errors.As(err, &fe) || fe.Field != tc.wantField {
					t.Fatalf("NewEvent(%v) error = %v, want ErrInvalidEvent with a FieldError on %q", tc.raw, err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewEvent(%v): %v", tc.raw, err)
			}
			if ev.MessageID != "m1" || ev.Type != "compute.instance.exists" || !ev.Timestamp.Equal(tc.wantTS) || ev.Timestamp.Location() != time.UTC {
				t.Errorf("NewEvent = %+v, want m1, compute.instance.exists, %v UTC", ev, tc.wantTS)
			}
			if len(ev.Traits) != 0 || len(dropped) != 0 {
				t.Errorf("traits %v dropped %v, want none", ev.Traits, dropped)
			}
		})
	}
}

func TestNewEventTraits(t *testing.T) {
	raw := map[string]any{
		"message_id": "m1", "event_type": "t", "timestamp": "2014-08-01T00:00:00",
		"s": "42", "i": 42, "f": 42.0, "empty": "",
		"launched_at": map[string]any{"$datetime": "2014-07-31T23:00:00-01:00"},
		"day":         map[string]any{"$timerange": map[string]any{"begin": "2014-08-01T00:00:00", "end": "2014-08-02T00:00:00"}},
		"null":        nil,
		"flag":        true,
		"list":        []any{1},
		"obj":         map[string]any{"a": 1},
	}
	ev, dropped, err := NewEvent(raw)
	if err != nil {
		t.Fatalf("NewEvent: %v", err)
	}
	day := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	want := map[string]Value{
		"s": String("42"), "i": Int(42), "f": Float(42), "empty": String(""),
		"launched_at": Datetime(day),
		"day":         TimeRange(day, day.AddDate(0, 0, 1)),
	}
	if diff := cmp.Diff(want, ev.Traits); diff != "" {
		t.Errorf("traits (-want +got):\n%s", diff)
	}
	for name, v := range want {
		if got := ev.Traits[name]; got.Kind() != v.Kind() {
			t.Errorf("trait %s kind %s, want %s", name, got.Kind(), v.Kind())
		}
	}
	var names []string
	for _, d := range dropped {
		names = append(names, d.Trait)
		if d.Reason == "" {
			t.Errorf("dropped %s without a reason", d.Trait)
		}
	}
	// null is silently absent; the others are reported, sorted by name.
	if diff := cmp.Diff([]string{"flag", "list", "obj"}, names); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

func TestEventLookupAndDatetimes(t *testing.T) {
	ts := time.Date(2014, 8, 1, 2, 0, 0, 0, time.UTC)
	launched := time.Date(2014, 7, 1, 0, 0, 0, 0, time.UTC)
	ev := Event{MessageID: "m1", Type: "t", Timestamp: ts, Traits: map[string]Value{
		"launched_at": Datetime(launched), "n": Int(1),
		"day": TimeRange(ts, ts.Add(time.Hour)),
	}}
	lookups := []struct {
		name string
		want Value
		ok   bool
	}{
		{"message_id", String("m1"), true},
		{"event_type", String("t"), true},
		{"timestamp", Datetime(ts), true},
		{"launched_at", Datetime(launched), true},
		{"n", Int(1), true},
		{"missing", Value{}, false},
	}
	for _, l := range lookups {
		got, ok := ev.Lookup(l.name)
		if ok != l.ok || !got.Equal(l.want) {
			t.Errorf("Lookup(%q) = %v, %v, want %v, %v", l.name, got, ok, l.want, l.ok)
		}
	}
	want := map[string]time.Time{"timestamp": ts, "launched_at": launched}
	if diff := cmp.Diff(want, ev.Datetimes()); diff != "" {
		t.Errorf("Datetimes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"day", "launched_at", "n"}, ev.TraitNames()); diff != "" {
		t.Errorf("TraitNames (-want +got):\n%s", diff)
	}
}

func TestEventClone(t *testing.T) {
	ev := Event{MessageID: "m", Type: "t", Traits: map[string]Value{"a": Int(1)}}
	c := ev.Clone()
	c.Traits["a"] = Int(2)
	if !ev.Traits["a"].Equal(Int(1)) {
		t.Errorf("Clone shares the trait map")
	}
	if (Event{}).Clone().Traits == nil {
		t.Errorf("Clone of an event without traits has a nil map")
	}
}

func TestEventMapIsInverseOfNewEvent(t *testing.T) {
	ts := time.Date(2014, 8, 1, 2, 10, 23, 550_000, time.UTC)
	ev := Event{MessageID: "m1", Type: "t", Timestamp: ts, Traits: map[string]Value{
		"s": String("42"), "i": Int(42), "f": Float(42), "d": Datetime(ts), "r": TimeRange(ts, ts.Add(time.Hour)),
	}}
	m := ev.Map()
	if m["timestamp"] != "2014-08-01T02:10:23.00055" {
		t.Errorf("Map timestamp = %#v, want the plain ISO string", m["timestamp"])
	}
	back, dropped, err := NewEvent(m)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("NewEvent(Map()) = %v, %v", dropped, err)
	}
	if diff := cmp.Diff(ev, back); diff != "" {
		t.Errorf("NewEvent(Map()) (-want +got):\n%s", diff)
	}
}

func TestState(t *testing.T) {
	// The numbers are persisted: they never change.
	want := map[State]string{1: "active", 2: "firing", 3: "expiring", 4: "error", 5: "expire_error", 6: "completed", 7: "retry_fire", 8: "retry_expire"}
	for s, name := range want {
		if s.String() != name || !s.Valid() {
			t.Errorf("State(%d) = %q valid %v, want %q", int(s), s.String(), s.Valid(), name)
		}
		back, err := ParseState(name)
		if err != nil || back != s {
			t.Errorf("ParseState(%q) = %v, %v", name, back, err)
		}
	}
	if State(0).Valid() || State(9).Valid() || State(9).String() != "state(9)" {
		t.Errorf("invalid states: %v %v %q", State(0).Valid(), State(9).Valid(), State(9).String())
	}
	if _, err := ParseState("fired"); err == nil {
		t.Errorf("ParseState(fired) = nil error")
	}
}

func TestStreamKey(t *testing.T) {
	day := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	sets := []map[string]Value{
		{},
		{"instance_id": String("42")},
		{"instance_id": Int(42)},
		{"instance_id": Float(42)},
		{"instance_id": String("42"), "timestamp": TimeRange(day, day.AddDate(0, 0, 1))},
		{"instance_id": String("42"), "timestamp": TimeRange(day, day.AddDate(0, 0, 2))},
		{"instance_id": String("42"), "timestamp": Datetime(day)},
		{"a": String("1b:2"), "c": String("")},
		{"a": String("1"), "b": String("2:c0:")},
		{"a": String("")},
		{"b": String("")},
	}
	for i, a := range sets {
		for j, b := range sets {
			if same := Key(a) == Key(b); same != (i == j) {
				t.Errorf("Key(%v)=%q, Key(%v)=%q: same %v, want %v", a, Key(a), b, Key(b), same, i == j)
			}
		}
	}
	// Order of insertion does not matter.
	x := map[string]Value{"b": Int(2), "a": Int(1)}
	y := map[string]Value{"a": Int(1), "b": Int(2)}
	if Key(x) != Key(y) {
		t.Errorf("Key depends on map order")
	}
}

func TestSystemClock(t *testing.T) {
	now := SystemClock{}.Now()
	if now.Location() != time.UTC || now.Nanosecond()%1000 != 0 {
		t.Errorf("SystemClock.Now() = %v, want UTC with microsecond precision", now)
	}
}
