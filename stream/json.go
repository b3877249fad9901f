package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// MarshalJSON encodes a value in the project's event JSON encoding (see
// docs/EVENT_JSON.md): strings and ints as JSON strings and integers,
// floats always with a decimal point or exponent so they read back as
// floats, datetimes as {"$datetime": ISO}, ranges as
// {"$timerange": {"begin": ISO, "end": ISO}}.
func (v Value) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := v.appendJSON(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (v Value) appendJSON(b *bytes.Buffer) error {
	switch v.kind {
	case KindString:
		s, err := json.Marshal(v.s)
		if err != nil {
			return err
		}
		b.Write(s)
	case KindInt:
		b.WriteString(strconv.FormatInt(v.i, 10))
	case KindFloat:
		if math.IsNaN(v.f) || math.IsInf(v.f, 0) {
			return fmt.Errorf("stream: float %v has no JSON encoding", v.f)
		}
		b.WriteString(FormatFloat(v.f))
	case KindDatetime:
		b.WriteString(`{"$datetime":"` + FormatTime(v.t) + `"}`)
	case KindTimeRange:
		b.WriteString(`{"$timerange":{"begin":"` + FormatTime(v.t) + `","end":"` + FormatTime(v.end) + `"}}`)
	default:
		b.WriteString("null")
	}
	return nil
}

// UnmarshalJSON decodes the encoding written by MarshalJSON. JSON null and
// unsupported types (bool, list, other objects) are errors.
func (v *Value) UnmarshalJSON(data []byte) error {
	x, err := decodeJSON(data)
	if err != nil {
		return err
	}
	val, err := ValueOf(x)
	if err != nil {
		return err
	}
	*v = val
	return nil
}

// MarshalJSON encodes the event as one JSON object: message_id, event_type
// and timestamp (a plain ISO string) first, then the traits sorted by name,
// each in the Value encoding.
func (e Event) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	writeKV := func(k string, raw []byte) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(raw)
	}
	mid, _ := json.Marshal(e.MessageID)
	typ, _ := json.Marshal(e.Type)
	writeKV(KeyMessageID, mid)
	writeKV(KeyEventType, typ)
	writeKV(KeyTimestamp, []byte(`"`+FormatTime(e.Timestamp)+`"`))
	for _, k := range e.TraitNames() {
		raw, err := e.Traits[k].MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("trait %q: %w", k, err)
		}
		writeKV(k, raw)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes an event strictly: the envelope must be valid and
// every trait must be of a supported type (a null trait is skipped). Use
// DecodeEvent to accept events with unsupported traits, which are dropped.
func (e *Event) UnmarshalJSON(data []byte) error {
	ev, dropped, err := DecodeEvent(data)
	if err != nil {
		return err
	}
	if len(dropped) > 0 {
		return fmt.Errorf("trait %q: %s", dropped[0].Trait, dropped[0].Reason)
	}
	*e = ev
	return nil
}

// DecodeEvent decodes one JSON object into a normalised Event with the
// rules of NewEvent, reporting dropped traits instead of failing on them.
func DecodeEvent(data []byte) (Event, []Dropped, error) {
	x, err := decodeJSON(data)
	if err != nil {
		return Event{}, nil, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	m, ok := x.(map[string]any)
	if !ok {
		return Event{}, nil, fmt.Errorf("%w: not a JSON object", ErrInvalidEvent)
	}
	return NewEvent(m)
}

// decodeJSON decodes one JSON value. Text that is not valid UTF-8 is an
// error: encoding/json would replace it with U+FFFD without a word, and
// the changed text could put an event into another stream.
func decodeJSON(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return x, nil
}
