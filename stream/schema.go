package stream

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/internal/yamlfile"
)

// ErrSchema is wrapped (with ErrInvalidEvent) by the error of an event
// that the declared events of a Schema refuse.
var ErrSchema = errors.New("event does not match its declaration")

// Schema declares events, as eventlib does: per event type (an fnmatch
// pattern, see Pattern) the traits an event must carry, their types and
// their allowed values or ranges. Every declaration whose pattern matches
// an event's type applies to it. With Strict, an event whose type no
// declaration matches is refused. Limits.CheckEvent applies the schema of
// its Limits, so every way into the system (library, HTTP, AMQP, replay)
// gets it.
type Schema struct {
	// File is the file the schema was read from, for messages.
	File string
	// Strict refuses event types that no declaration matches.
	Strict bool
	// Events are the declarations in file order.
	Events []EventDecl
}

// EventDecl declares the events whose type matches Pattern.
type EventDecl struct {
	Pattern Pattern
	Line    int
	// Traits are the declared traits by name.
	Traits map[string]TraitRule
}

// TraitRule is what a declared trait must be.
type TraitRule struct {
	// Optional traits may be absent; declared traits are required
	// otherwise.
	Optional bool
	// Type is the trait's type: "" (any), "string", "int", "float",
	// "number" (int or float) or "datetime".
	Type string
	// Values, when not empty, are the only values allowed.
	Values []Value
	// Min and Max bound a number (int, float or number), inclusive.
	Min, Max *float64
}

// schemaTypes are the trait types a schema may name.
var schemaTypes = []string{"string", "int", "float", "number", "datetime"}

// Check reports why ev does not match the schema, or nil: an error
// wrapping ErrInvalidEvent, ErrSchema and a *FieldError naming the trait
// (or event_type for an undeclared type under Strict). A nil schema
// accepts every event. When several traits are wrong, the first by name
// is reported.
func (s *Schema) Check(ev Event) error {
	if s == nil {
		return nil
	}
	declared := false
	for _, d := range s.Events {
		if !d.Pattern.Match(ev.Type) {
			continue
		}
		declared = true
		for _, name := range slices.Sorted(maps.Keys(d.Traits)) {
			if msg := d.Traits[name].problem(ev.Traits, name); msg != "" {
				return schemaError(name, msg)
			}
		}
	}
	if !declared && s.Strict {
		return schemaError(KeyEventType, fmt.Sprintf("There is no event named %s", ev.Type))
	}
	return nil
}

// problem says what is wrong with the trait name of traits, or "".
func (r TraitRule) problem(traits map[string]Value, name string) string {
	v, ok := traits[name]
	if !ok || v.IsZero() {
		if r.Optional {
			return ""
		}
		return "required trait is missing"
	}
	if !typeAllows(r.Type, v.Kind()) {
		return fmt.Sprintf("must be of type %s, not %s", r.Type, v.Kind())
	}
	if len(r.Values) > 0 && !slices.ContainsFunc(r.Values, func(a Value) bool { return sameValue(a, v) }) {
		list := make([]string, len(r.Values))
		for i, a := range r.Values {
			list[i] = a.String()
		}
		return fmt.Sprintf("value %s is not one of the allowed values (%s)", v, strings.Join(list, ", "))
	}
	if f, isNum := v.Number(); isNum {
		if r.Min != nil && f < *r.Min {
			return fmt.Sprintf("value %s is below the minimum %s", v, formatBound(*r.Min))
		}
		if r.Max != nil && f > *r.Max {
			return fmt.Sprintf("value %s is above the maximum %s", v, formatBound(*r.Max))
		}
	}
	return ""
}

// formatBound writes a bound as it is written in a schema file.
func formatBound(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func typeAllows(typ string, k Kind) bool {
	switch typ {
	case "":
		return true
	case "number":
		return k == KindInt || k == KindFloat
	}
	return typ == k.String()
}

// sameValue compares an allowed value with a trait's: numbers by value
// (1 allows 1.0), the rest by Equal.
func sameValue(a, v Value) bool {
	fa, okA := a.Number()
	fv, okV := v.Number()
	if okA && okV {
		return fa == fv
	}
	return a.Equal(v)
}

func schemaError(field, msg string) error {
	return fmt.Errorf("%w: %w: %w", ErrInvalidEvent, ErrSchema, &FieldError{Field: shortField(field), Msg: msg})
}

// SchemaError is a problem of a schema file: File and Line locate it
// (Line 0 when unknown), Field is the path of the value at fault.
type SchemaError struct {
	File  string
	Line  int
	Field string
	Err   error
}

// Error returns "file:line: field: problem", leaving out what is unknown.
func (e *SchemaError) Error() string {
	msg := yamlfile.Where(e.File, e.Line)
	if e.Field != "" {
		msg += e.Field + ": "
	}
	return msg + e.Err.Error()
}

// Unwrap returns the problem.
func (e *SchemaError) Unwrap() error { return e.Err }

// LoadSchema reads the schema file at path; see ParseSchema.
func LoadSchema(path string) (*Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &SchemaError{File: path, Err: err}
	}
	return ParseSchema(path, data)
}

// schemaFile is the form of a schema file.
type schemaFile struct {
	Strict bool                   `yaml:"strict"`
	Events map[string]schemaEvent `yaml:"events"`
}

type schemaEvent struct {
	Traits map[string]schemaTrait `yaml:"traits"`
}

type schemaTrait struct {
	Type     string   `yaml:"type"`
	Required *bool    `yaml:"required"`
	Values   []any    `yaml:"values"`
	Min      *float64 `yaml:"min"`
	Max      *float64 `yaml:"max"`
}

// ParseSchema reads a schema file (file names it in messages):
//
//	strict: true
//	events:
//	  compute.instance.create.*:
//	    traits:
//	      instance_id: {type: string}
//	      memory_mb: {type: int, min: 1, max: 1048576}
//	      state: {type: string, values: [active, error]}
//	      host: {required: false}
//
// Every problem is reported at once, each a *SchemaError with its line:
// bad YAML, unknown keys (with the closest known key), unknown types,
// ranges on types that are not numbers or with min above max, allowed
// values of the wrong type, and patterns that do not compile.
func ParseSchema(file string, data []byte) (*Schema, error) {
	s := &Schema{File: file}
	root, perr := yamlfile.Parse(data)
	if perr != nil {
		return nil, &SchemaError{File: file, Line: perr.Line, Err: perr.Err}
	}
	if root == nil {
		return s, nil
	}
	var errs []error
	fail := func(line int, field string, err error) {
		errs = append(errs, &SchemaError{File: file, Line: line, Field: field, Err: err})
	}
	var f schemaFile
	lines := map[string]int{}
	dec := yamlfile.Decoder{Field: func(path string, key *yaml.Node) { lines[path] = key.Line }}
	for _, e := range dec.Decode(root, &f) {
		fail(e.Line, e.Key, e.Err)
	}
	s.Strict = f.Strict
	patterns := slices.Collect(maps.Keys(f.Events))
	slices.SortFunc(patterns, func(a, b string) int { return lines["events."+a] - lines["events."+b] })
	for _, pat := range patterns {
		path := "events." + pat
		line := lines[path]
		p, err := CompilePattern(pat)
		if err != nil {
			fail(line, path, err)
			continue
		}
		d := EventDecl{Pattern: p, Line: line, Traits: map[string]TraitRule{}}
		for name, t := range f.Events[pat].Traits {
			tpath := path + ".traits." + name
			if r, ok := t.rule(lines, tpath, fail); ok {
				d.Traits[name] = r
			}
		}
		s.Events = append(s.Events, d)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b error) int {
			return a.(*SchemaError).Line - b.(*SchemaError).Line
		})
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// rule checks t and returns its TraitRule; problems go to fail.
func (t schemaTrait) rule(lines map[string]int, path string, fail func(int, string, error)) (TraitRule, bool) {
	ok := true
	bad := func(key string, err error) {
		base, _, _ := strings.Cut(key, "[") // values[1]: the line of values
		line := lines[path+"."+base]
		if line == 0 {
			line = lines[path]
		}
		fail(line, path+"."+key, err)
		ok = false
	}
	r := TraitRule{Type: t.Type, Min: t.Min, Max: t.Max, Optional: t.Required != nil && !*t.Required}
	if t.Type != "" && !slices.Contains(schemaTypes, t.Type) {
		msg := fmt.Sprintf("unknown type %q (types: %s)", t.Type, strings.Join(schemaTypes, ", "))
		if guess := yamlfile.Closest(t.Type, schemaTypes); guess != "" {
			msg = fmt.Sprintf("unknown type %q (did you mean %s?)", t.Type, guess)
		}
		bad("type", errors.New(msg))
	}
	numeric := t.Type == "" || t.Type == "int" || t.Type == "float" || t.Type == "number"
	for _, key := range []string{"min", "max"} {
		v := t.Min
		if key == "max" {
			v = t.Max
		}
		switch {
		case v == nil:
		case !numeric:
			bad(key, fmt.Errorf("a range needs a number type, not %s", t.Type))
		case math.IsNaN(*v) || math.IsInf(*v, 0):
			bad(key, fmt.Errorf("%v is not a bound", *v))
		}
	}
	if t.Min != nil && t.Max != nil && *t.Min > *t.Max {
		bad("min", fmt.Errorf("min %s is above max %s", formatBound(*t.Min), formatBound(*t.Max)))
	}
	for i, x := range t.Values {
		key := fmt.Sprintf("values[%d]", i)
		v, err := ValueOf(x)
		switch {
		case err != nil || (v.Kind() != KindString && v.Kind() != KindInt && v.Kind() != KindFloat):
			bad(key, fmt.Errorf("an allowed value must be a string or a number, not %v", x))
		case !typeAllows(t.Type, v.Kind()):
			bad(key, fmt.Errorf("%s is not of type %s", v, t.Type))
		default:
			r.Values = append(r.Values, v)
		}
	}
	return r, ok
}
