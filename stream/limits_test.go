package stream

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestLimitsCheckEvent(t *testing.T) {
	ts := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	ev := func(mid, typ string, traits map[string]Value) Event {
		return Event{MessageID: mid, Type: typ, Timestamp: ts, Traits: traits}
	}
	one := func(k string, v Value) map[string]Value { return map[string]Value{k: v} }
	small := Limits{MessageIDBytes: 8, EventTypeBytes: 8, TraitNameBytes: 4, TraitValueBytes: 5, Traits: 2}
	many := map[string]Value{"a": Int(1), "b": Int(2), "c": Int(3)}
	tests := []struct {
		name   string
		limits Limits
		ev     Event
		field  string // "" = valid
		msg    string
	}{
		{name: "valid", ev: ev("m", "t", one("a", String("héllo")))},
		{name: "valid at every limit", limits: small, ev: ev("12345678", "12345678", map[string]Value{"abcd": String("12345"), "b": Float(1)})},
		{name: "empty message_id", ev: ev("", "t", nil), field: "message_id", msg: "missing or empty"},
		{name: "empty event_type", ev: ev("m", "", nil), field: "event_type", msg: "missing or empty"},
		{name: "no timestamp", ev: Event{MessageID: "m", Type: "t"}, field: "timestamp", msg: "missing"},
		{name: "NUL in message_id", ev: ev("a\x00", "t", nil), field: "message_id", msg: "NUL"},
		{name: "invalid UTF-8 in message_id", ev: ev("a\xff", "t", nil), field: "message_id", msg: "not valid UTF-8"},
		{name: "NUL in event_type", ev: ev("m", "t\x00", nil), field: "event_type", msg: "NUL"},
		{name: "invalid UTF-8 in event_type", ev: ev("m", "\xc3(", nil), field: "event_type", msg: "not valid UTF-8"},
		{name: "NUL in trait name", ev: ev("m", "t", one("a\x00", Int(1))), field: "a\x00", msg: "trait name contains a NUL"},
		{name: "invalid UTF-8 in trait name", ev: ev("m", "t", one("\xff", Int(1))), field: "\xff", msg: "trait name is not valid UTF-8"},
		{name: "empty trait name", ev: ev("m", "t", one("", Int(1))), field: "", msg: "empty trait name"},
		{name: "NUL in value", ev: ev("m", "t", one("a", String("x\x00"))), field: "a", msg: "NUL"},
		{name: "surrogate in value", ev: ev("m", "t", one("a", String("\xed\xa0\x80"))), field: "a", msg: "not valid UTF-8"},
		{name: "NaN", ev: ev("m", "t", one("f", Float(math.NaN()))), field: "f", msg: "NaN"},
		{name: "+Inf", ev: ev("m", "t", one("f", Float(math.Inf(1)))), field: "f", msg: "+Inf"},
		{name: "-Inf", ev: ev("m", "t", one("f", Float(math.Inf(-1)))), field: "f", msg: "-Inf"},
		{name: "zero value", ev: ev("m", "t", one("z", Value{})), field: "z", msg: "no value"},
		{name: "message_id too long", limits: small, ev: ev("123456789", "t", nil), field: "message_id", msg: "9 bytes, more than the limit of 8"},
		{name: "event_type too long", limits: small, ev: ev("m", "123456789", nil), field: "event_type", msg: "more than the limit of 8"},
		{name: "trait name too long", limits: small, ev: ev("m", "t", one("abcde", Int(1))), field: "abcde", msg: "trait name 5 bytes"},
		{name: "value too long", limits: small, ev: ev("m", "t", one("a", String("123456"))), field: "a", msg: "6 bytes, more than the limit of 5"},
		{name: "too many traits", limits: small, ev: ev("m", "t", many), field: "traits", msg: "3 traits, more than the limit of 2"},
		{name: "first bad trait by name", ev: ev("m", "t", map[string]Value{"z": Float(math.NaN()), "b": String("\x00"), "a": Int(1)}), field: "b", msg: "NUL"},
		{name: "default message_id limit", ev: ev(strings.Repeat("m", DefaultMessageIDBytes+1), "t", nil), field: "message_id", msg: "more than the limit of 512"},
		{name: "long field names are cut", ev: ev("m", "t", one(strings.Repeat("n", 300)+"\x00", Int(1))), field: strings.Repeat("n", 64) + "…(301 bytes)", msg: "trait name 301 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.limits.CheckEvent(tc.ev)
			if tc.field == "" && tc.msg == "" {
				if err != nil {
					t.Fatalf("CheckEvent = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.Is(err, ErrInvalidEvent) || !errors.As(err, &fe) {
				t.Fatalf("CheckEvent = %v, want ErrInvalidEvent with a *FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Msg, tc.msg) {
				t.Errorf("CheckEvent = field %q, %q; want field %q, a message containing %q", fe.Field, fe.Msg, tc.field, tc.msg)
			}
		})
	}
}

func TestLimitsCheckKey(t *testing.T) {
	l := Limits{KeyBytes: 10}
	if err := l.CheckKey("trig", strings.Repeat("k", 10)); err != nil {
		t.Errorf("CheckKey(10 bytes, limit 10) = %v, want nil", err)
	}
	err := l.CheckKey("trig", strings.Repeat("k", 11))
	var fe *FieldError
	if !errors.Is(err, ErrInvalidEvent) || !errors.As(err, &fe) || fe.Field != "distinguished_by" || !strings.Contains(fe.Msg, `trigger "trig"`) {
		t.Errorf("CheckKey(11 bytes, limit 10) = %v, want ErrInvalidEvent naming distinguished_by and the trigger", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := (Limits{}).Validate(); err != nil {
		t.Errorf("Limits{}.Validate() = %v, want nil (zero fields take defaults)", err)
	}
	if err := DefaultLimits().Validate(); err != nil {
		t.Errorf("DefaultLimits().Validate() = %v, want nil", err)
	}
	if err := StorageLimits().Validate(); err != nil {
		t.Errorf("StorageLimits().Validate() = %v, want nil", err)
	}
	err := Limits{MessageIDBytes: MaxIndexedBytes + 1, EventTypeBytes: MaxIndexedBytes + 1, Traits: -1}.Validate()
	for _, want := range []string{"message_id_bytes: 2049 is more than 2048", "event_type_bytes: 2049", "traits: -1 is negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want an error containing %q", err, want)
		}
	}
	if got := (Limits{Traits: 7}).WithDefaults(); got.Traits != 7 || got.MessageIDBytes != DefaultMessageIDBytes || got.KeyBytes != DefaultKeyBytes {
		t.Errorf("WithDefaults() = %+v, want Traits 7 and the other defaults", got)
	}
}
