package stream

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Names of the three envelope keys every event has.
const (
	KeyMessageID = "message_id"
	KeyEventType = "event_type"
	KeyTimestamp = "timestamp"
)

// Event is a flat, normalised event: the envelope (message id, type,
// timestamp) plus typed traits. Traits never hold the envelope keys and
// never hold zero Values. An Event is a value; Traits is shared by copies,
// so use Clone before modifying a trait map you did not build.
type Event struct {
	MessageID string
	Type      string
	Timestamp time.Time // UTC, microsecond precision
	Traits    map[string]Value
}

// Lookup returns the value of a trait or of an envelope key
// ("message_id" and "event_type" as strings, "timestamp" as a datetime).
func (e Event) Lookup(name string) (Value, bool) {
	switch name {
	case KeyMessageID:
		return String(e.MessageID), true
	case KeyEventType:
		return String(e.Type), true
	case KeyTimestamp:
		return Datetime(e.Timestamp), true
	}
	v, ok := e.Traits[name]
	return v, ok
}

// Datetimes returns every datetime-valued trait, including "timestamp",
// keyed by name. These are the variables of criteria time expressions.
func (e Event) Datetimes() map[string]time.Time {
	out := map[string]time.Time{KeyTimestamp: e.Timestamp}
	for k, v := range e.Traits {
		if v.kind == KindDatetime {
			out[k] = v.t
		}
	}
	return out
}

// Clone returns a copy of e with its own trait map.
func (e Event) Clone() Event {
	e.Traits = maps.Clone(e.Traits)
	if e.Traits == nil {
		e.Traits = map[string]Value{}
	}
	return e
}

// TraitNames returns the trait names in sorted order.
func (e Event) TraitNames() []string {
	return slices.Sorted(maps.Keys(e.Traits))
}

// FieldError says which field of an event is wrong and why.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("event field %q: %s", e.Field, e.Msg) }

// ErrInvalidEvent is wrapped by every error NewEvent returns for an event
// that cannot enter the system (missing or null envelope key, wrong type).
var ErrInvalidEvent = errors.New("invalid event")

// Dropped describes a trait removed while normalising an event: its value was
// of a type that is not a trait type (bool, list, map, ...).
type Dropped struct {
	Trait  string
	Reason string
}

// NewEvent normalises a raw flat map into an Event: it decides the shape
// of an event (what its text, sizes and values may be is decided by
// Limits.CheckEvent, which the trigger manager applies to every event):
//
//   - message_id, event_type and timestamp must be present and not null; an
//     absent and a null key are the same (the event is rejected with an
//     error wrapping ErrInvalidEvent and a *FieldError);
//   - message_id and event_type must be non-empty strings; timestamp a
//     time.Time, an ISO 8601 string or {"$datetime": ISO};
//   - null traits are removed silently (null is the same as absent);
//   - traits of unsupported types (bool, list, other maps) are removed and
//     reported in the returned Dropped list so callers can log them;
//   - timeranges are accepted (they appear in distinguishing traits).
//
// Matching, fire criteria and storage all see the same normalised event.
func NewEvent(raw map[string]any) (Event, []Dropped, error) {
	var ev Event
	mid, err := envelopeString(raw, KeyMessageID)
	if err != nil {
		return ev, nil, err
	}
	typ, err := envelopeString(raw, KeyEventType)
	if err != nil {
		return ev, nil, err
	}
	ts, err := envelopeTime(raw)
	if err != nil {
		return ev, nil, err
	}
	ev = Event{MessageID: mid, Type: typ, Timestamp: ts, Traits: make(map[string]Value, len(raw))}
	var dropped []Dropped
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if k == KeyMessageID || k == KeyEventType || k == KeyTimestamp {
			continue
		}
		v, err := ValueOf(raw[k])
		switch {
		case errors.Is(err, ErrNull):
			continue
		case err != nil:
			dropped = append(dropped, Dropped{Trait: k, Reason: err.Error()})
			continue
		}
		ev.Traits[k] = v
	}
	return ev, dropped, nil
}

func envelopeString(raw map[string]any, key string) (string, error) {
	x, ok := raw[key]
	if !ok || x == nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidEvent, &FieldError{Field: key, Msg: "missing or null"})
	}
	s, ok := x.(string)
	if !ok {
		if v, isVal := x.(Value); isVal && v.kind == KindString {
			s, ok = v.s, true
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: %w", ErrInvalidEvent, &FieldError{Field: key, Msg: fmt.Sprintf("must be a string, not %T", x)})
	}
	if s == "" {
		return "", fmt.Errorf("%w: %w", ErrInvalidEvent, &FieldError{Field: key, Msg: "empty"})
	}
	return s, nil
}

func envelopeTime(raw map[string]any) (time.Time, error) {
	x, ok := raw[KeyTimestamp]
	if !ok || x == nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrInvalidEvent, &FieldError{Field: KeyTimestamp, Msg: "missing or null"})
	}
	if s, ok := x.(string); ok {
		t, err := ParseTime(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %w", ErrInvalidEvent, &FieldError{Field: KeyTimestamp, Msg: err.Error()})
		}
		return t, nil
	}
	v, err := ValueOf(x)
	if err != nil || v.kind != KindDatetime {
		return time.Time{}, fmt.Errorf("%w: %w", ErrInvalidEvent, &FieldError{Field: KeyTimestamp, Msg: fmt.Sprintf("must be a date-time, not %T", x)})
	}
	return v.t, nil
}

// Map returns the event as a flat map in the encoded form of Value.Interface
// with "timestamp" as a plain ISO string: the inverse of NewEvent.
func (e Event) Map() map[string]any {
	m := make(map[string]any, len(e.Traits)+3)
	for k, v := range e.Traits {
		m[k] = v.Interface()
	}
	m[KeyMessageID] = e.MessageID
	m[KeyEventType] = e.Type
	m[KeyTimestamp] = FormatTime(e.Timestamp)
	return m
}
