package distiller

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/internal/yamlfile"
)

// Definition is one entry of event_definitions.yaml: the event types it
// applies to and the traits it extracts. Definitions are built by
// ParseDefinitions or LoadDefinitions, which compile every path and plugin;
// they are immutable afterwards.
type Definition struct {
	// EventTypes are the patterns of event_type as written ("!" prefix:
	// exclusion).
	EventTypes []string
	// Traits are the trait definitions sorted by name (defaults not included).
	Traits []*TraitDefinition
	// File and Line locate the definition ("" and 0 for built ones).
	File string
	Line int

	types *typeMatcher
}

// TraitDefinition is one trait of a definition.
type TraitDefinition struct {
	Name   string
	Type   TraitType
	Fields []string // the paths as written
	Plugin string   // the plugin's name, "" for none
	Line   int

	path   *Path
	plugin Plugin
}

// DefinitionError reports a problem in an event definitions file. Index is
// the 1-based position of the definition in the file (0 when the problem
// is with the file itself); Trait is empty for problems outside traits.
type DefinitionError struct {
	File      string
	Line      int
	Index     int
	EventType string // the definition's event_type as written, when known
	Trait     string
	Field     string // the offending key: event_type, traits, type, fields, plugin, ...
	Err       error
}

func (e *DefinitionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d", e.File, e.Line)
	if e.Index > 0 {
		fmt.Fprintf(&b, ": definition %d", e.Index)
		if e.EventType != "" {
			fmt.Fprintf(&b, " (%s)", e.EventType)
		}
	}
	if e.Trait != "" {
		fmt.Fprintf(&b, ": trait %s", e.Trait)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *DefinitionError) Unwrap() error { return e.Err }

// LoadDefinitions reads and compiles an event definitions file. Plugins are
// looked up in plugins (nil: the built-in ones).
func LoadDefinitions(path string, plugins *PluginRegistry) ([]*Definition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read event definitions: %w", err)
	}
	return ParseDefinitions(path, data, plugins)
}

// ParseDefinitions compiles the content of an event definitions file
// (file names it in errors). YAML anchors, aliases and merge keys are
// resolved; unknown keys are errors, with the closest known key suggested.
// Every problem found is reported: the error joins one *DefinitionError
// per problem. Plugins are looked up in plugins (nil: the built-in ones).
func ParseDefinitions(file string, data []byte, plugins *PluginRegistry) ([]*Definition, error) {
	if plugins == nil {
		plugins = NewPluginRegistry()
	}
	root, perr := yamlfile.Parse(data)
	if perr != nil {
		return nil, &DefinitionError{File: file, Line: perr.Line, Err: perr.Err}
	}
	if root == nil {
		return nil, nil // empty file: no definitions
	}
	if root.Kind != yaml.SequenceNode {
		return nil, &DefinitionError{File: file, Line: root.Line, Err: fmt.Errorf("want a list of event definitions, not %s", yamlfile.Describe(root))}
	}
	l := &loader{file: file, plugins: plugins}
	var defs []*Definition
	for i, n := range root.Content {
		if d := l.definition(i+1, yamlfile.Resolve(n)); d != nil {
			defs = append(defs, d)
		}
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return defs, nil
}

type loader struct {
	file    string
	plugins *PluginRegistry
	errs    []error
}

// owner is what a problem belongs to: the definition (1-based index and
// event_type as written) and the trait ("" for none).
type owner struct {
	index     int
	eventType string
	trait     string
}

func (l *loader) fail(line int, o owner, field string, err error) {
	l.errs = append(l.errs, &DefinitionError{File: l.file, Line: line, Index: o.index, EventType: o.eventType, Trait: o.trait, Field: field, Err: err})
}

// keyErrors reports the problems of yamlfile.Mapping, their keys under
// prefix.
func (l *loader) keyErrors(errs []*yamlfile.Error, o owner, prefix string) {
	for _, e := range errs {
		field := e.Key
		if prefix != "" {
			field = strings.TrimSuffix(prefix+"."+e.Key, ".")
		}
		l.fail(e.Line, o, field, e.Err)
	}
}

var (
	definitionKeys = yamlfile.Strict("event_type", "traits")
	traitKeys      = yamlfile.Strict("fields", "type", "plugin")
	pluginKeys     = yamlfile.Strict("name", "parameters")
)

func (l *loader) definition(index int, n *yaml.Node) *Definition {
	o := owner{index: index}
	if n.Kind != yaml.MappingNode {
		l.fail(n.Line, o, "", fmt.Errorf("want a mapping with event_type and traits, not %s", yamlfile.Describe(n)))
		return nil
	}
	nerr := len(l.errs)
	fields, keyErrs := yamlfile.Mapping(n, definitionKeys)
	l.keyErrors(keyErrs, o, "")
	d := &Definition{File: l.file, Line: n.Line}
	if f, ok := yamlfile.Lookup(fields, "event_type"); !ok {
		l.fail(n.Line, o, "event_type", errors.New("required field event_type not specified"))
	} else if types, err := stringList(f.Value); err != nil {
		l.fail(err.Line, o, "event_type", err.Err)
	} else {
		d.EventTypes = types
		o.eventType = strings.Join(types, ", ")
		var err error
		if d.types, err = newTypeMatcher(types); err != nil {
			l.fail(f.Value.Line, o, "event_type", err)
		}
	}
	if f, ok := yamlfile.Lookup(fields, "traits"); !ok {
		l.fail(n.Line, o, "traits", errors.New("required field traits not specified"))
	} else if f.Value.Kind != yaml.MappingNode {
		l.fail(f.Value.Line, o, "traits", fmt.Errorf("want a mapping of trait names to trait definitions (it may be {}), not %s", yamlfile.Describe(f.Value)))
	} else {
		traits, keyErrs := yamlfile.Mapping(f.Value, yamlfile.Keys{})
		l.keyErrors(keyErrs, o, "traits")
		for _, tf := range traits {
			if t := l.trait(o, tf); t != nil {
				d.Traits = append(d.Traits, t)
			}
		}
		slices.SortFunc(d.Traits, func(a, b *TraitDefinition) int { return strings.Compare(a.Name, b.Name) })
	}
	if len(l.errs) > nerr {
		return nil
	}
	return d
}

func (l *loader) trait(o owner, tf yamlfile.Field) *TraitDefinition {
	o.trait = tf.Name
	n := tf.Value
	if tf.Name == "" {
		l.fail(tf.Key.Line, o, "", errors.New("trait name must be a non-empty string"))
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.fail(n.Line, o, "", fmt.Errorf("unable to get type for %q: a trait definition is a mapping with fields, type and plugin, not %s", tf.Name, yamlfile.Describe(n)))
		return nil
	}
	nerr := len(l.errs)
	fields, keyErrs := yamlfile.Mapping(n, traitKeys)
	l.keyErrors(keyErrs, o, "")
	t := &TraitDefinition{Name: tf.Name, Type: TypeText, Line: tf.Key.Line}
	if f, ok := yamlfile.Lookup(fields, "type"); ok {
		tt, valid := parseTraitType(f.Value.Value)
		if f.Value.Kind != yaml.ScalarNode || !valid {
			l.fail(f.Value.Line, o, "type", fmt.Errorf("invalid trait type %q (want text, int, float or datetime)", f.Value.Value))
		} else {
			t.Type = tt
		}
	}
	if f, ok := yamlfile.Lookup(fields, "plugin"); ok {
		var err *yamlfile.Error
		t.Plugin, t.plugin, err = l.plugin(o, f.Value)
		if err != nil {
			l.fail(err.Line, o, strings.TrimSuffix("plugin."+err.Key, "."), err.Err)
		}
	}
	if f, ok := yamlfile.Lookup(fields, "fields"); !ok {
		l.fail(n.Line, o, "fields", errors.New("required field in trait definition not specified: 'fields'"))
	} else if list, err := stringList(f.Value); err != nil {
		l.fail(err.Line, o, "fields", err.Err)
	} else if len(list) == 0 {
		l.fail(f.Value.Line, o, "fields", errors.New("want at least one path"))
	} else {
		t.Fields = list
		paths := make([]*Path, 0, len(list))
		for _, s := range list {
			p, err := ParsePath(s)
			if err != nil {
				l.fail(f.Value.Line, o, "fields", err)
				continue
			}
			paths = append(paths, p)
		}
		if len(paths) == len(list) {
			t.path = unionPaths(paths)
		}
	}
	if len(l.errs) > nerr {
		return nil
	}
	return t
}

// plugin decodes "plugin: name" or "plugin: {name, parameters}" and builds
// the plugin. The problems of the mapping's keys are reported here; the
// returned error is the first other problem, with its line.
func (l *loader) plugin(o owner, n *yaml.Node) (string, Plugin, *yamlfile.Error) {
	at := func(n *yaml.Node, format string, args ...any) *yamlfile.Error {
		return &yamlfile.Error{Line: n.Line, Err: fmt.Errorf(format, args...)}
	}
	var name string
	var params map[string]any
	switch n.Kind {
	case yaml.ScalarNode:
		name = n.Value
	case yaml.MappingNode:
		fields, keyErrs := yamlfile.Mapping(n, pluginKeys)
		l.keyErrors(keyErrs, o, "plugin")
		if f, ok := yamlfile.Lookup(fields, "name"); ok {
			if f.Value.Kind != yaml.ScalarNode {
				return "", nil, at(f.Value, "name: want a plugin name, not %s", yamlfile.Describe(f.Value))
			}
			name = f.Value.Value
		}
		if f, ok := yamlfile.Lookup(fields, "parameters"); ok && !yamlfile.IsNull(f.Value) {
			if f.Value.Kind != yaml.MappingNode {
				return "", nil, at(f.Value, "parameters: want a mapping, not %s", yamlfile.Describe(f.Value))
			}
			if err := f.Value.Decode(&params); err != nil {
				return "", nil, at(f.Value, "parameters: %v", err)
			}
		}
	default:
		return "", nil, at(n, "want a plugin name or {name, parameters}, not %s", yamlfile.Describe(n))
	}
	if name == "" {
		return "", nil, at(n, "plugin specified, but no plugin name supplied")
	}
	p, err := l.plugins.New(name, params)
	if errors.Is(err, ErrUnknownPlugin) {
		return "", nil, &yamlfile.Error{Line: n.Line, Err: err}
	}
	if err != nil {
		return "", nil, at(n, "plugin %s: %w", name, err)
	}
	return name, p, nil
}

// stringList decodes a string or a list of strings; the error has the line
// of the node at fault.
func stringList(n *yaml.Node) ([]string, *yamlfile.Error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if yamlfile.IsNull(n) {
			return nil, &yamlfile.Error{Line: n.Line, Err: errors.New("want a string or a list of strings, not null")}
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			c = yamlfile.Resolve(c)
			if c.Kind != yaml.ScalarNode || yamlfile.IsNull(c) {
				return nil, &yamlfile.Error{Line: c.Line, Err: fmt.Errorf("want a string, not %s", yamlfile.Describe(c))}
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, &yamlfile.Error{Line: n.Line, Err: fmt.Errorf("want a string or a list of strings, not %s", yamlfile.Describe(n))}
}
