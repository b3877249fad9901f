package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
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

// decodeJSON decodes one JSON value. Text that CheckJSONText refuses is
// an error.
func decodeJSON(data []byte) (any, error) {
	if err := CheckJSONText(data); err != nil {
		return nil, err
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

// CheckJSONText reports text of a JSON document that encoding/json would
// replace with U+FFFD without a word: invalid UTF-8, and \u escapes of
// UTF-16 surrogates that are not a pair (a high one followed by a low
// one). The changed text could put an event into another stream, so it
// is refused rather than replaced. Other errors are left to the decoder.
func CheckJSONText(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		i++ // the escaped character: a backslash cannot start another escape
		r, ok := unicodeEscape(data, i-1)
		if !ok {
			continue
		}
		at := i - 1
		i += 4 // the last hex digit
		switch {
		case utf16.IsSurrogate(r) && r >= 0xDC00:
		case utf16.IsSurrogate(r):
			if low, ok := unicodeEscape(data, i+1); ok && utf16.DecodeRune(r, low) != utf8.RuneError {
				i += 6
				continue
			}
		default:
			continue
		}
		return fmt.Errorf("\\u%04x at byte %d is a lone UTF-16 surrogate, not a character", r, at)
	}
	return nil
}

// unicodeEscape reads the escape \uXXXX at data[i:].
func unicodeEscape(data []byte, i int) (rune, bool) {
	if i+6 > len(data) || data[i] != '\\' || data[i+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(data[i+2:i+6]), 16, 16)
	return rune(n), err == nil
}
