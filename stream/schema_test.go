package stream

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testSchema = `strict: true
events:
  compute.instance.create.*:
    traits:
      instance_id: {type: string}
      memory_mb: {type: int, min: 1, max: 1024}
      state: {type: string, values: [active, error]}
      host: {required: false, type: string}
  "*.ping": {}
`

func declaredEvent(typ string, traits map[string]Value) Event {
	return Event{MessageID: "m", Type: typ, Timestamp: time.Unix(1, 0), Traits: traits}
}

func TestSchemaCheck(t *testing.T) {
	s, err := ParseSchema("schema.yaml", []byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]Value{"instance_id": String("i"), "memory_mb": Int(512), "state": String("active")}
	with := func(k string, v Value) map[string]Value {
		m := map[string]Value{}
		for n, x := range good {
			m[n] = x
		}
		if v.IsZero() {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name, typ string
		traits    map[string]Value
		field     string // "" accepted
		msg       string
	}{
		{"valid", "compute.instance.create.end", good, "", ""},
		{"optional present", "compute.instance.create.end", with("host", String("h")), "", ""},
		{"other declared", "a.ping", nil, "", ""},
		{"missing", "compute.instance.create.end", with("instance_id", Value{}), "instance_id", "required trait is missing"},
		{"wrong type", "compute.instance.create.end", with("memory_mb", String("x")), "memory_mb", "must be of type int, not string"},
		{"below", "compute.instance.create.end", with("memory_mb", Int(0)), "memory_mb", "below the minimum 1"},
		{"above", "compute.instance.create.end", with("memory_mb", Int(2048)), "memory_mb", "above the maximum 1024"},
		{"not allowed", "compute.instance.create.end", with("state", String("gone")), "state", "not one of the allowed values (active, error)"},
		{"optional wrong type", "compute.instance.create.end", with("host", Int(1)), "host", "must be of type string"},
		{"undeclared", "compute.instance.delete.end", good, "event_type", "There is no event named compute.instance.delete.end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Limits{Schema: s}.CheckEvent(declaredEvent(tc.typ, tc.traits))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrSchema) || !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("err = %v, want a schema FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Msg, tc.msg) {
				t.Fatalf("field %q msg %q, want %q containing %q", fe.Field, fe.Msg, tc.field, tc.msg)
			}
		})
	}
	s.Strict = false
	if err := (Limits{Schema: s}).CheckEvent(declaredEvent("undeclared", nil)); err != nil {
		t.Fatalf("not strict: %v", err)
	}
}

func TestParseSchemaErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"bad yaml", "events: [\n", []string{"s.yaml:1: invalid YAML"}},
		{"unknown key", "strict: true\nevnts: {}\n", []string{"s.yaml:2: evnts: unknown key (did you mean events?)"}},
		{"unknown trait key", "events:\n  a:\n    traits:\n      x: {typ: string}\n", []string{"s.yaml:4: events.a.traits.x.typ: unknown key (did you mean type?)"}},
		{"bad type", "events:\n  a:\n    traits:\n      x:\n        type: strng\n", []string{"s.yaml:5: events.a.traits.x.type: unknown type \"strng\" (did you mean string?)"}},
		{"bad range", "events:\n  a:\n    traits:\n      x:\n        type: int\n        min: 5\n        max: 1\n", []string{"s.yaml:6: events.a.traits.x.min: min 5 is above max 1"}},
		{"range on string", "events:\n  a:\n    traits:\n      x:\n        type: string\n        max: 1\n", []string{"s.yaml:6: events.a.traits.x.max: a range needs a number type, not string"}},
		{"value of wrong type", "events:\n  a:\n    traits:\n      x:\n        type: int\n        values: [1, b]\n", []string{"s.yaml:6: events.a.traits.x.values[1]: b is not of type int"}},
		{"bad pattern", "events:\n  \"[z-a]\": {}\n", []string{"s.yaml:2: events.[z-a]:"}},
		{"all at once", "strict: maybe\nevents:\n  a:\n    traits:\n      x: {type: bool}\n      y: {type: int, min: 3, max: 2}\n",
			[]string{"s.yaml:1: strict: must be true or false", "s.yaml:5: events.a.traits.x.type: unknown type", "s.yaml:6: events.a.traits.y.min: min 3 is above max 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSchema("s.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

// TestSampleSchema: the shipped sample is valid and accepts the sample
// event it was written for.
func TestSampleSchema(t *testing.T) {
	s, err := LoadSchema("../etc/event_schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ev := declaredEvent("compute.instance.create.end", map[string]Value{"instance_id": String("i"), "tenant_id": String("t"), "state": String("active")})
	if err := s.Check(ev); err != nil {
		t.Errorf("sample event rejected: %v", err)
	}
	delete(ev.Traits, "tenant_id")
	if err := s.Check(ev); err == nil {
		t.Error("event without tenant_id accepted")
	}
}
