package distiller

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Plugin computes a trait's value from the non-null matches of the trait's
// fields, in path order (it is called even when there are none). It returns
// nil for "no value"; any other result is converted to the trait's type
// like a matched value. A Plugin must be safe for concurrent use and must
// not modify the matches or the values they hold.
type Plugin func(matches []Match) any

// PluginFactory builds a plugin from the "parameters" mapping of a trait
// definition (nil when there is none), decoded from YAML: ints are int,
// floats float64, lists []any and mappings map[string]any. As in the
// original, parameters a plugin does not know are ignored; a parameter of
// the wrong type or value is an error, reported with the definition's file
// and line.
type PluginFactory func(params map[string]any) (Plugin, error)

// ErrUnknownPlugin is wrapped by the error for a plugin name a registry
// does not hold.
var ErrUnknownPlugin = errors.New("distiller: unknown trait plugin")

// Names of the built-in trait plugins.
const (
	PluginSplit    = "split"
	PluginBitfield = "bitfield"
)

// PluginRegistry maps plugin names to factories. Register plugins before
// the registry is used; lookups are then safe for concurrent use.
type PluginRegistry struct {
	factories map[string]PluginFactory
}

// NewPluginRegistry returns a registry holding the built-in plugins, split
// and bitfield.
func NewPluginRegistry() *PluginRegistry {
	r := &PluginRegistry{factories: map[string]PluginFactory{}}
	r.Register(PluginSplit, newSplit)
	r.Register(PluginBitfield, newBitfield)
	return r
}

// Register adds a plugin. It panics when name is empty, f is nil or the
// name is taken: these are programming errors.
func (r *PluginRegistry) Register(name string, f PluginFactory) {
	if name == "" || f == nil {
		panic("distiller: Register of a plugin with an empty name or a nil factory")
	}
	if _, dup := r.factories[name]; dup {
		panic("distiller: Register called twice for plugin " + name)
	}
	r.factories[name] = f
}

// Names returns the registered plugin names, sorted.
func (r *PluginRegistry) Names() []string { return slices.Sorted(maps.Keys(r.factories)) }

// Select returns a registry with the built-in plugins plus the named ones
// of r: the names of distiller_trait_plugins in winchester.yaml. A name r
// does not hold is an error.
func (r *PluginRegistry) Select(names []string) (*PluginRegistry, error) {
	out := NewPluginRegistry()
	for _, n := range names {
		if _, ok := out.factories[n]; ok {
			continue
		}
		f, ok := r.factories[n]
		if !ok {
			return nil, r.unknown(n)
		}
		out.factories[n] = f
	}
	return out, nil
}

// Lookup returns the factory registered under name.
func (r *PluginRegistry) Lookup(name string) (PluginFactory, bool) {
	f, ok := r.factories[name]
	return f, ok
}

// New builds the named plugin with its parameters.
func (r *PluginRegistry) New(name string, params map[string]any) (Plugin, error) {
	f, ok := r.factories[name]
	if !ok {
		return nil, r.unknown(name)
	}
	return f(params)
}

func (r *PluginRegistry) unknown(name string) error {
	return fmt.Errorf("%w %q (known: %s)", ErrUnknownPlugin, name, strings.Join(r.Names(), ", "))
}

// ---- parameter helpers ----

func intParam(params map[string]any, name string, def int64) (int64, error) {
	v, ok := params[name]
	if !ok || v == nil {
		return def, nil
	}
	switch v := v.(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), nil
		}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), nil
		}
	}
	return 0, fmt.Errorf("parameter %s: want an integer, got %v", name, params[name])
}

// ---- split ----

// newSplit builds the split plugin: the first match as text, split on
// separator (default ".") at most max_split times (default: no limit), and
// the segment'th part (default 0; negative counts from the end), or no
// value when there is no such part or no match.
func newSplit(params map[string]any) (Plugin, error) {
	sep := "."
	if v, ok := params["separator"]; ok {
		s, isStr := v.(string)
		if !isStr || s == "" {
			return nil, fmt.Errorf("parameter separator: want a non-empty string, got %v", v)
		}
		sep = s
	}
	segment, err := intParam(params, "segment", 0)
	if err != nil {
		return nil, err
	}
	maxSplit, err := intParam(params, "max_split", -1)
	if err != nil {
		return nil, err
	}
	n := -1 // strings.SplitN: no limit
	if maxSplit >= 0 && maxSplit < math.MaxInt32 {
		n = int(maxSplit) + 1
	}
	return func(matches []Match) any {
		if len(matches) == 0 {
			return nil
		}
		s, err := text(matches[0].Value)
		if err != nil {
			return nil
		}
		parts := strings.SplitN(s, sep, n)
		i := segment
		if i < 0 {
			i += int64(len(parts))
		}
		if i < 0 || i >= int64(len(parts)) {
			return nil
		}
		return parts[i]
	}, nil
}

// ---- bitfield ----

type bitFlag struct {
	path     string
	bit      uint
	value    any
	hasValue bool
}

// newBitfield builds the bitfield plugin: starting from initial_bitfield
// (default 0), for every entry of flags ({path, bit, value?}) whose path
// matched, set bit 2^bit when the flag has no value or the matched value
// equals it. Later matches of the same path win. The result is always an
// integer.
func newBitfield(params map[string]any) (Plugin, error) {
	initial, err := intParam(params, "initial_bitfield", 0)
	if err != nil {
		return nil, err
	}
	var flags []bitFlag
	if raw, ok := params["flags"]; ok && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			return nil, fmt.Errorf("parameter flags: want a list of {path, bit, value}, got %v", raw)
		}
		for i, x := range list {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("parameter flags[%d]: want a mapping {path, bit, value}, got %v", i, x)
			}
			path, ok := m["path"].(string)
			if !ok {
				return nil, fmt.Errorf("parameter flags[%d]: path: want a string, got %v", i, m["path"])
			}
			if _, ok := m["bit"]; !ok {
				return nil, fmt.Errorf("parameter flags[%d]: bit is required", i)
			}
			bit, err := intParam(m, "bit", 0)
			if err != nil || bit < 0 || bit > 62 {
				return nil, fmt.Errorf("parameter flags[%d]: bit: want an integer from 0 to 62, got %v", i, m["bit"])
			}
			v, hasValue := m["value"]
			flags = append(flags, bitFlag{path: path, bit: uint(bit), value: v, hasValue: hasValue})
		}
	}
	return func(matches []Match) any {
		bits := initial
		for _, f := range flags {
			// Later matches of the same path win.
			var v any
			found := false
			for i := len(matches) - 1; i >= 0; i-- {
				if matches[i].Path == f.path {
					v, found = matches[i].Value, true
					break
				}
			}
			if found && (!f.hasValue || looselyEqual(v, f.value)) {
				bits |= 1 << f.bit
			}
		}
		return bits
	}, nil
}

// looselyEqual compares a matched JSON value with a value from YAML the way
// Python's == does for these types: numbers by value (12 == 12.0), strings
// exactly, lists and mappings by content.
func looselyEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	switch a := a.(type) {
	case string:
		s, ok := b.(string)
		return ok && a == s
	case map[string]any, []any:
		switch b.(type) {
		case map[string]any, []any:
			ta, errA := text(a)
			tb, errB := text(b)
			return errA == nil && errB == nil && ta == tb
		}
	}
	return false
}

// number returns a numeric (or boolean, as Python counts it) value as a
// float64.
func number(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		return f, err == nil
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
