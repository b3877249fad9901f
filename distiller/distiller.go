package distiller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/winchester-go/winchester/stream"
)

// Config holds the optional settings of a Distiller.
type Config struct {
	// CatchAll is catch_all_notifications: when no definition is itself a
	// catch-all ("*" without exclusions), one with no traits of its own is
	// added with the lowest priority, so every notification with an
	// envelope becomes an event carrying at least the default traits that
	// are present.
	CatchAll bool
	// Plugins resolves plugin names when Load reads a file. Nil: the
	// built-in plugins.
	Plugins *PluginRegistry
	// Clock gives the timestamp of notifications without one. Nil: the
	// system clock.
	Clock stream.Clock
	// Logger receives a warning for every trait Event omits because its
	// value does not convert. Nil: discard.
	Logger *slog.Logger
}

// Distiller turns notifications into events. It is immutable and safe for
// concurrent use.
type Distiller struct {
	defs  []*compiled // in search order: the last definition of the file first
	clock stream.Clock
	log   *slog.Logger
}

// compiled is a definition with the default traits it does not redefine.
type compiled struct {
	def    *Definition
	traits []*TraitDefinition
}

// defaultTraits returns the traits every definition starts with.
func defaultTraits() []*TraitDefinition {
	specs := []struct {
		name   string
		fields []string
	}{
		{"service", []string{"publisher_id"}},
		{"request_id", []string{"_context_request_id"}},
		{"tenant_id", []string{"payload.tenant_id", "_context_tenant"}},
	}
	out := make([]*TraitDefinition, len(specs))
	for i, s := range specs {
		paths := make([]*Path, len(s.fields))
		for j, f := range s.fields {
			p, err := ParsePath(f)
			if err != nil {
				panic("distiller: default trait path: " + err.Error()) // a constant: cannot happen
			}
			paths[j] = p
		}
		out[i] = &TraitDefinition{Name: s.name, Type: TypeText, Fields: s.fields, path: unionPaths(paths)}
	}
	return out
}

// New returns a Distiller over definitions compiled by ParseDefinitions or
// LoadDefinitions (definitions and traits built otherwise are ignored: their
// patterns and paths are not compiled). As in the original, definitions
// are searched from the last to the first and only the first matching one
// is used; every definition also extracts the default traits service
// (publisher_id), request_id (_context_request_id) and tenant_id
// (payload.tenant_id, then _context_tenant) unless it defines a trait of
// that name.
func New(defs []*Definition, cfg Config) *Distiller {
	d := &Distiller{clock: cfg.Clock, log: cfg.Logger}
	if d.clock == nil {
		d.clock = stream.SystemClock{}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	defaults := defaultTraits()
	hasCatchAll := false
	for _, def := range slices.Backward(defs) {
		if def == nil || def.types == nil {
			continue // not built by ParseDefinitions: it could match nothing
		}
		d.defs = append(d.defs, withDefaults(def, defaults))
		hasCatchAll = hasCatchAll || def.types.catchAll()
	}
	if cfg.CatchAll && !hasCatchAll {
		types, _ := newTypeMatcher([]string{"*"}) // a constant: cannot fail
		all := &Definition{EventTypes: []string{"*"}, types: types}
		d.defs = append(d.defs, withDefaults(all, defaults))
	}
	return d
}

func withDefaults(def *Definition, defaults []*TraitDefinition) *compiled {
	c := &compiled{def: def}
	for _, t := range def.Traits {
		if t != nil && t.path != nil {
			c.traits = append(c.traits, t)
		}
	}
	for _, t := range defaults {
		if !slices.ContainsFunc(def.Traits, func(u *TraitDefinition) bool { return u.Name == t.Name }) {
			c.traits = append(c.traits, t)
		}
	}
	slices.SortFunc(c.traits, func(a, b *TraitDefinition) int { return strings.Compare(a.Name, b.Name) })
	return c
}

// Load reads an event definitions file and returns a Distiller over it.
func Load(path string, cfg Config) (*Distiller, error) {
	defs, err := LoadDefinitions(path, cfg.Plugins)
	if err != nil {
		return nil, err
	}
	return New(defs, cfg), nil
}

// Reason says why a notification was dropped. The names are stable: use
// them as metric labels.
type Reason int

// Reasons for dropping a notification.
const (
	// ReasonNoDefinition: no definition matches the event type (and
	// catch-all is off).
	ReasonNoDefinition Reason = iota + 1
	// ReasonInvalid: the definition extracted no trait.
	ReasonInvalid
	// ReasonNotObject: the body is not a JSON object.
	ReasonNotObject
	// ReasonMissingEnvelope: event_type or message_id is absent or null.
	ReasonMissingEnvelope
	// ReasonBadEnvelope: event_type or message_id is not a non-empty
	// string, or the timestamp does not parse.
	ReasonBadEnvelope
)

// String returns the reason's stable name (no_definition, invalid,
// not_object, missing_envelope, bad_envelope).
func (r Reason) String() string {
	switch r {
	case ReasonNoDefinition:
		return "no_definition"
	case ReasonInvalid:
		return "invalid"
	case ReasonNotObject:
		return "not_object"
	case ReasonMissingEnvelope:
		return "missing_envelope"
	case ReasonBadEnvelope:
		return "bad_envelope"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// DropError is the only error Distill returns: the notification does not
// become an event. Callers count it by Reason and log it.
type DropError struct {
	Reason    Reason
	MessageID string // when known
	EventType string // when known
	Msg       string
}

func (e *DropError) Error() string {
	var b strings.Builder
	b.WriteString("drop notification")
	if e.MessageID != "" {
		fmt.Fprintf(&b, " %s", e.MessageID)
	}
	if e.EventType != "" {
		fmt.Fprintf(&b, " (%s)", e.EventType)
	}
	fmt.Fprintf(&b, ": %s: %s", e.Reason, e.Msg)
	return b.String()
}

// TraitError reports a trait omitted because its value did not convert to
// the trait's type.
type TraitError struct {
	Trait string
	Type  TraitType
	Value any // the matched value or the plugin's result
	Err   error
}

func (e *TraitError) Error() string {
	return fmt.Sprintf("trait %s (%s): %v", e.Trait, e.Type, e.Err)
}

func (e *TraitError) Unwrap() error { return e.Err }

// Result tells how a notification was distilled.
type Result struct {
	// Definition is the definition used; nil when none matched. The
	// catch-all added by Config.CatchAll has File "" and Line 0.
	Definition *Definition
	// Failed lists the traits omitted because their value did not convert
	// (the notification is still distilled from the others).
	Failed []*TraitError
}

// Distill decodes one JSON notification and turns it into an event. The
// body is parsed once (numbers keep their literal form, so integers stay
// integers). A notification that does not become an event gives a
// *DropError; no input makes Distill panic.
func (d *Distiller) Distill(body []byte) (stream.Event, Result, error) {
	n, err := decodeObject(body)
	if err != nil {
		return stream.Event{}, Result{}, &DropError{Reason: ReasonNotObject, Msg: err.Error()}
	}
	return d.DistillMap(n)
}

// Event distills body like Distill and logs each trait it omitted
// (Config.Logger): the form of trigger.DistillFunc, so that a manager
// takes d.Event as it is.
func (d *Distiller) Event(body []byte) (stream.Event, error) {
	ev, res, err := d.Distill(body)
	for _, f := range res.Failed {
		d.log.Warn("omitted a trait whose value does not convert", "message_id", ev.MessageID,
			"event_type", ev.Type, "trait", f.Trait, "error", f.Err)
	}
	return ev, err
}

// decodeObject decodes a single JSON object with json.Number numbers.
// Text that encoding/json would silently replace (invalid UTF-8, lone
// surrogate escapes) is an error, as it is for events.
func decodeObject(body []byte) (map[string]any, error) {
	if err := stream.CheckJSONText(body); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return nil, errors.New("invalid JSON: data after the object")
	}
	m, ok := x.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a JSON object but %s", describe(x))
	}
	return m, nil
}

// DistillMap turns an already decoded notification into an event. Numbers
// may be json.Number (decoded with UseNumber), float64 or Go integers. n is
// not modified; the event shares nothing with it.
func (d *Distiller) DistillMap(n map[string]any) (stream.Event, Result, error) {
	var res Result
	typ, derr := envelopeString(n, stream.KeyEventType)
	if derr != nil {
		derr.MessageID, _ = n[stream.KeyMessageID].(string)
		return stream.Event{}, res, derr
	}
	mid, derr := envelopeString(n, stream.KeyMessageID)
	if derr != nil {
		derr.EventType = typ
		return stream.Event{}, res, derr
	}
	var def *compiled
	for _, c := range d.defs {
		if c.def.types.match(typ) {
			def = c
			break
		}
	}
	if def == nil {
		return stream.Event{}, res, &DropError{Reason: ReasonNoDefinition, MessageID: mid, EventType: typ, Msg: "no event definition matches the event type"}
	}
	res.Definition = def.def
	when, werr := d.when(n)
	if werr != nil {
		return stream.Event{}, res, &DropError{Reason: ReasonBadEnvelope, MessageID: mid, EventType: typ, Msg: werr.Error()}
	}
	ev := stream.Event{MessageID: mid, Type: typ, Timestamp: when, Traits: make(map[string]stream.Value, len(def.traits))}
	extracted := 0
	for _, t := range def.traits {
		v, ok, terr := t.extract(n)
		if terr != nil {
			res.Failed = append(res.Failed, terr)
			continue
		}
		if !ok {
			continue
		}
		extracted++
		switch t.Name {
		case stream.KeyMessageID, stream.KeyEventType, stream.KeyTimestamp:
			// The envelope wins over a trait of the same name.
		default:
			ev.Traits[t.Name] = v
		}
	}
	if extracted == 0 {
		return stream.Event{}, res, &DropError{Reason: ReasonInvalid, MessageID: mid, EventType: typ, Msg: "no trait extracted"}
	}
	return ev, res, nil
}

// envelopeString reads event_type or message_id.
func envelopeString(n map[string]any, key string) (string, *DropError) {
	x, ok := n[key]
	if !ok || x == nil {
		return "", &DropError{Reason: ReasonMissingEnvelope, Msg: key + " is missing"}
	}
	s, ok := x.(string)
	if !ok || s == "" {
		return "", &DropError{Reason: ReasonBadEnvelope, Msg: fmt.Sprintf("%s must be a non-empty string, not %s", key, describe(x))}
	}
	return s, nil
}

// when returns the notification's time: timestamp if the key is present,
// else _context_timestamp; a missing or empty value means now.
func (d *Distiller) when(n map[string]any) (time.Time, error) {
	x, ok := n[stream.KeyTimestamp]
	if !ok {
		x = n["_context_timestamp"]
	}
	if falsy(x) {
		return stream.NormalizeTime(d.clock.Now()), nil
	}
	s, ok := x.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("timestamp must be an ISO 8601 string, not %s", describe(x))
	}
	t, err := stream.ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp: %v", err)
	}
	return t, nil
}

// falsy reports the values Python treats as false: null, "", 0, false,
// empty lists and objects.
func falsy(x any) bool {
	switch x := x.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	f, ok := number(x)
	return ok && f == 0
}

// extract computes one trait: ok is false when there is no value. err is
// set when a value was found but did not convert.
func (t *TraitDefinition) extract(n map[string]any) (stream.Value, bool, *TraitError) {
	var v any
	if t.plugin != nil {
		var err *TraitError
		if v, err = t.runPlugin(t.path.nonNullMatches(n)); err != nil {
			return stream.Value{}, false, err
		}
	} else {
		v, _ = t.path.First(n)
	}
	if v == nil {
		return stream.Value{}, false, nil
	}
	if s, ok := v.(string); ok && s == "" && t.Type != TypeText {
		return stream.Value{}, false, nil // Nova writes "" for unset dates
	}
	val, err := convert(t.Type, v)
	if err != nil {
		return stream.Value{}, false, &TraitError{Trait: t.Name, Type: t.Type, Value: v, Err: err}
	}
	return val, true, nil
}

// runPlugin calls the plugin; a plugin that panics costs the trait, not
// the process.
func (t *TraitDefinition) runPlugin(matches []Match) (v any, terr *TraitError) {
	defer func() {
		if r := recover(); r != nil {
			v, terr = nil, &TraitError{Trait: t.Name, Type: t.Type, Err: fmt.Errorf("plugin %s panicked: %v", t.Plugin, r)}
		}
	}()
	return t.plugin(matches), nil
}
