package stream

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits are the sizes an event may have to enter the system, in bytes of
// UTF-8 text (counts for Traits). They are the one place that decides
// whether an event is valid: the trigger manager checks every event with
// CheckEvent before anything reaches a store, and every store checks what
// it is given with StorageLimits, so both drivers accept and refuse the same
// events. A zero field takes its default (DefaultLimits).
type Limits struct {
	// MessageIDBytes bounds message_id (default DefaultMessageIDBytes, at
	// most MaxIndexedBytes: the column is indexed).
	MessageIDBytes int
	// EventTypeBytes bounds event_type (default DefaultEventTypeBytes, at
	// most MaxIndexedBytes: the column is indexed).
	EventTypeBytes int
	// TraitNameBytes bounds each trait name (default DefaultTraitNameBytes).
	TraitNameBytes int
	// TraitValueBytes bounds each string trait value (default
	// DefaultTraitValueBytes).
	TraitValueBytes int
	// Traits bounds the number of traits of an event (default
	// DefaultTraits).
	Traits int
	// KeyBytes bounds the distinguishing key of a stream (Key of its
	// distinguishing values) an event would go to (default DefaultKeyBytes).
	KeyBytes int
	// Schema declares events (nil: none). CheckEvent applies it after
	// the limits; see Schema.Check.
	Schema *Schema
}

// Defaults of Limits.
const (
	DefaultMessageIDBytes  = 512
	DefaultEventTypeBytes  = 255
	DefaultTraitNameBytes  = 255
	DefaultTraitValueBytes = 64 << 10 // 64 KiB
	DefaultTraits          = 1000
	DefaultKeyBytes        = 1 << 20 // 1 MiB
)

// MaxIndexedBytes is the largest MessageIDBytes and EventTypeBytes may be:
// those columns are indexed, and a PostgreSQL btree entry holds at most
// about 2.7 KB.
const MaxIndexedBytes = 2048

// DefaultLimits returns the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{
		MessageIDBytes:  DefaultMessageIDBytes,
		EventTypeBytes:  DefaultEventTypeBytes,
		TraitNameBytes:  DefaultTraitNameBytes,
		TraitValueBytes: DefaultTraitValueBytes,
		Traits:          DefaultTraits,
		KeyBytes:        DefaultKeyBytes,
	}
}

// StorageLimits returns the limits every store accepts: what the stores
// check when they are given events directly. Sizes beyond the indexed
// columns' are not bounded there (the text columns hold up to 1 GB).
func StorageLimits() Limits {
	return Limits{
		MessageIDBytes:  MaxIndexedBytes,
		EventTypeBytes:  MaxIndexedBytes,
		TraitNameBytes:  math.MaxInt,
		TraitValueBytes: math.MaxInt,
		Traits:          math.MaxInt,
		KeyBytes:        math.MaxInt,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&l.MessageIDBytes, d.MessageIDBytes)
	set(&l.EventTypeBytes, d.EventTypeBytes)
	set(&l.TraitNameBytes, d.TraitNameBytes)
	set(&l.TraitValueBytes, d.TraitValueBytes)
	set(&l.Traits, d.Traits)
	set(&l.KeyBytes, d.KeyBytes)
	return l
}

// Validate reports a limit that is negative or, for the indexed columns,
// larger than MaxIndexedBytes. Zero fields are valid (they take defaults).
func (l Limits) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{
		{"message_id_bytes", l.MessageIDBytes, MaxIndexedBytes},
		{"event_type_bytes", l.EventTypeBytes, MaxIndexedBytes},
		{"trait_name_bytes", l.TraitNameBytes, math.MaxInt},
		{"trait_value_bytes", l.TraitValueBytes, math.MaxInt},
		{"traits", l.Traits, math.MaxInt},
		{"distinguishing_key_bytes", l.KeyBytes, math.MaxInt},
	} {
		switch {
		case f.v < 0:
			errs = append(errs, fmt.Errorf("%s: %d is negative", f.name, f.v))
		case f.v > f.max:
			errs = append(errs, fmt.Errorf("%s: %d is more than %d (the column is indexed, and a PostgreSQL index entry holds about 2.7 KB)", f.name, f.v, f.max))
		}
	}
	return errors.Join(errs...)
}

// CheckEvent reports why ev cannot enter the system, or nil. The error
// wraps ErrInvalidEvent and a *FieldError naming the field (message_id,
// event_type, timestamp, a trait's name, or "traits" for their number).
// It rejects:
//
//   - an empty message_id or event_type and a zero timestamp;
//   - a NUL character or invalid UTF-8 in the message_id, the event_type,
//     a trait name or a string value (invalid UTF-8 is never replaced:
//     that would silently change stream keys);
//   - a zero (absent) Value, a NaN or infinite float;
//   - text longer than its limit, and more traits than Traits;
//   - an event the Schema refuses (the error wraps ErrSchema too).
//
// When several traits are wrong, the first by name is reported.
func (l Limits) CheckEvent(ev Event) error {
	l = l.WithDefaults()
	if err := checkText(KeyMessageID, ev.MessageID, l.MessageIDBytes); err != nil {
		return err
	}
	if err := checkText(KeyEventType, ev.Type, l.EventTypeBytes); err != nil {
		return err
	}
	if ev.Timestamp.IsZero() {
		return invalid(KeyTimestamp, "missing")
	}
	if len(ev.Traits) > l.Traits {
		return invalid("traits", fmt.Sprintf("%d traits, more than the limit of %d", len(ev.Traits), l.Traits))
	}
	if err := l.CheckTraits(ev.Traits); err != nil {
		return err
	}
	return l.Schema.Check(ev)
}

// CheckTraits applies the trait rules of CheckEvent to traits (for
// example an event's, or a stream's distinguishing values).
func (l Limits) CheckTraits(traits map[string]Value) error {
	l = l.WithDefaults()
	for name, v := range traits {
		if l.checkTrait(name, v) != nil {
			// Report the first bad trait by name, whatever the map order.
			for _, name := range slices.Sorted(maps.Keys(traits)) {
				if err := l.checkTrait(name, traits[name]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (l Limits) checkTrait(name string, v Value) error {
	if name == "" {
		return invalid("", "empty trait name")
	}
	if msg := textProblem(name, l.TraitNameBytes); msg != "" {
		return invalid(name, "trait name "+msg)
	}
	switch v.kind {
	case 0:
		return invalid(name, "no value")
	case KindString:
		if msg := textProblem(v.s, l.TraitValueBytes); msg != "" {
			return invalid(name, msg)
		}
	case KindFloat:
		if math.IsNaN(v.f) || math.IsInf(v.f, 0) {
			return invalid(name, fmt.Sprintf("float %v cannot be stored", v.f))
		}
	}
	return nil
}

// CheckKey reports a distinguishing key longer than KeyBytes: the field
// is the trigger's name.
func (l Limits) CheckKey(trigger, key string) error {
	l = l.WithDefaults()
	if len(key) > l.KeyBytes {
		return invalid("distinguished_by", fmt.Sprintf("the distinguishing values for trigger %q make a key of %d bytes, more than the limit of %d", trigger, len(key), l.KeyBytes))
	}
	return nil
}

func checkText(field, s string, limit int) error {
	if s == "" {
		return invalid(field, "missing or empty")
	}
	if msg := textProblem(s, limit); msg != "" {
		return invalid(field, msg)
	}
	return nil
}

// textProblem says what is wrong with s as stored text, or "".
func textProblem(s string, limit int) string {
	switch {
	case len(s) > limit:
		return fmt.Sprintf("%d bytes, more than the limit of %d", len(s), limit)
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL character"
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	return ""
}

// invalid returns the error of CheckEvent for field.
func invalid(field, msg string) error {
	return fmt.Errorf("%w: %w", ErrInvalidEvent, &FieldError{Field: shortField(field), Msg: msg})
}

// shortField keeps a field name readable in messages: a name longer than
// 64 bytes is cut (at a rune boundary when it is valid UTF-8).
func shortField(name string) string {
	const keep = 64
	if len(name) <= keep {
		return name
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", name[:cut], len(name))
}
