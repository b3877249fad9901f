package distiller

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
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
// resolved. Every problem found is reported: the error joins one
// *DefinitionError per problem. Plugins are looked up in plugins (nil: the
// built-in ones).
func ParseDefinitions(file string, data []byte, plugins *PluginRegistry) ([]*Definition, error) {
	if plugins == nil {
		plugins = NewPluginRegistry()
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlErrLine(err)
		return nil, &DefinitionError{File: file, Line: line, Err: errors.New(msg)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty file: no definitions
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.SequenceNode {
		return nil, &DefinitionError{File: file, Line: root.Line, Err: errors.New("want a list of event definitions")}
	}
	l := &loader{file: file, plugins: plugins}
	var defs []*Definition
	for i, n := range root.Content {
		if d := l.definition(i+1, resolve(n)); d != nil {
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

func (l *loader) fail(n *yaml.Node, index int, typ, trait, field string, err error) {
	line := n.Line
	var le *lineError
	if errors.As(err, &le) {
		line, err = le.line, errors.New(le.msg)
	}
	l.errs = append(l.errs, &DefinitionError{File: l.file, Line: line, Index: index, EventType: typ, Trait: trait, Field: field, Err: err})
}

// lineError is a problem found deeper than the node being reported, with
// its own line.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

func errorAt(n *yaml.Node, format string, args ...any) error {
	return &lineError{line: n.Line, msg: fmt.Sprintf(format, args...)}
}

func (l *loader) definition(index int, n *yaml.Node) *Definition {
	if n.Kind != yaml.MappingNode {
		l.fail(n, index, "", "", "", errors.New("want a mapping with event_type and traits"))
		return nil
	}
	pairs, err := mappingPairs(n)
	if err != nil {
		l.fail(n, index, "", "", "", err)
		return nil
	}
	d := &Definition{File: l.file, Line: n.Line}
	var typeNode, traitsNode *yaml.Node
	for _, p := range pairs {
		switch p.key.Value {
		case "event_type":
			typeNode = p.value
		case "traits":
			traitsNode = p.value
		default:
			l.fail(p.key, index, "", "", p.key.Value, errors.New("unknown key (want event_type and traits)"))
		}
	}
	nerr := len(l.errs)
	typeText := ""
	if typeNode == nil {
		l.fail(n, index, "", "", "event_type", errors.New("required field event_type not specified"))
	} else if types, err := stringList(typeNode); err != nil {
		l.fail(typeNode, index, "", "", "event_type", err)
	} else {
		d.EventTypes = types
		typeText = strings.Join(types, ", ")
		if d.types, err = newTypeMatcher(types); err != nil {
			l.fail(typeNode, index, typeText, "", "event_type", err)
		}
	}
	if traitsNode == nil {
		l.fail(n, index, typeText, "", "traits", errors.New("required field traits not specified"))
	} else if traitsNode.Kind != yaml.MappingNode {
		l.fail(traitsNode, index, typeText, "", "traits", errors.New("want a mapping of trait names to trait definitions (it may be {})"))
	} else if tpairs, err := mappingPairs(traitsNode); err != nil {
		l.fail(traitsNode, index, typeText, "", "traits", err)
	} else {
		for _, p := range tpairs {
			if t := l.trait(index, typeText, p.key, p.value); t != nil {
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

func (l *loader) trait(index int, typ string, key, n *yaml.Node) *TraitDefinition {
	name := key.Value
	fail := func(at *yaml.Node, field string, err error) { l.fail(at, index, typ, name, field, err) }
	if key.Kind != yaml.ScalarNode || name == "" {
		fail(key, "", errors.New("trait name must be a non-empty string"))
		return nil
	}
	if n.Kind != yaml.MappingNode {
		fail(n, "", fmt.Errorf("unable to get type for %q: a trait definition is a mapping with fields, type and plugin", n.Value))
		return nil
	}
	pairs, err := mappingPairs(n)
	if err != nil {
		fail(n, "", err)
		return nil
	}
	t := &TraitDefinition{Name: name, Type: TypeText, Line: key.Line}
	nerr := len(l.errs)
	var fieldsNode *yaml.Node
	for _, p := range pairs {
		switch p.key.Value {
		case "type":
			tt, ok := parseTraitType(p.value.Value)
			if p.value.Kind != yaml.ScalarNode || !ok {
				fail(p.value, "type", fmt.Errorf("invalid trait type %q (want text, int, float or datetime)", p.value.Value))
				continue
			}
			t.Type = tt
		case "fields":
			fieldsNode = p.value
		case "plugin":
			t.Plugin, t.plugin, err = l.plugin(p.value)
			if err != nil {
				fail(p.value, "plugin", err)
			}
		default:
			fail(p.key, p.key.Value, errors.New("unknown key (want fields, type and plugin)"))
		}
	}
	if fieldsNode == nil {
		fail(n, "fields", errors.New("required field in trait definition not specified: 'fields'"))
	} else if fields, err := stringList(fieldsNode); err != nil {
		fail(fieldsNode, "fields", err)
	} else if len(fields) == 0 {
		fail(fieldsNode, "fields", errors.New("want at least one path"))
	} else {
		t.Fields = fields
		paths := make([]*Path, 0, len(fields))
		for _, f := range fields {
			p, err := ParsePath(f)
			if err != nil {
				fail(fieldsNode, "fields", err)
				continue
			}
			paths = append(paths, p)
		}
		if len(paths) == len(fields) {
			t.path = unionPaths(paths)
		}
	}
	if len(l.errs) > nerr {
		return nil
	}
	return t
}

// plugin decodes "plugin: name" or "plugin: {name, parameters}" and builds
// the plugin.
func (l *loader) plugin(n *yaml.Node) (string, Plugin, error) {
	var name string
	var params map[string]any
	switch n.Kind {
	case yaml.ScalarNode:
		name = n.Value
	case yaml.MappingNode:
		pairs, err := mappingPairs(n)
		if err != nil {
			return "", nil, err
		}
		for _, p := range pairs {
			switch p.key.Value {
			case "name":
				if p.value.Kind != yaml.ScalarNode {
					return "", nil, errors.New("name: want a plugin name")
				}
				name = p.value.Value
			case "parameters":
				if p.value.Kind == yaml.ScalarNode && p.value.Tag == "!!null" {
					continue
				}
				if p.value.Kind != yaml.MappingNode {
					return "", nil, errorAt(p.value, "parameters: want a mapping")
				}
				if err := p.value.Decode(&params); err != nil {
					return "", nil, errorAt(p.value, "parameters: %v", err)
				}
			default:
				return "", nil, errorAt(p.key, "unknown key %q (want name and parameters)", p.key.Value)
			}
		}
	default:
		return "", nil, errors.New("want a plugin name or {name, parameters}")
	}
	if name == "" {
		return "", nil, errors.New("plugin specified, but no plugin name supplied")
	}
	p, err := l.plugins.New(name, params)
	if errors.Is(err, ErrUnknownPlugin) {
		return "", nil, err
	}
	if err != nil {
		return "", nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	return name, p, nil
}

// ---- YAML helpers ----

type pair struct{ key, value *yaml.Node }

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// mappingPairs returns the key/value pairs of a mapping with merge keys
// ("<<: *anchor" or "<<: [*a, *b]") resolved: explicit keys win over merged
// ones, and among merged mappings the earlier wins. A key written twice is
// an error.
func mappingPairs(n *yaml.Node) ([]pair, error) {
	return mergePairs(n, 0)
}

func mergePairs(n *yaml.Node, depth int) ([]pair, error) {
	if depth > 50 {
		return nil, errorAt(n, "merge keys nested too deeply")
	}
	var explicit, merged []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Tag == "!!merge" || (k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style == 0) {
			var sources []*yaml.Node
			switch v.Kind {
			case yaml.MappingNode:
				sources = []*yaml.Node{v}
			case yaml.SequenceNode:
				for _, s := range v.Content {
					sources = append(sources, resolve(s))
				}
			}
			for _, s := range sources {
				if s.Kind != yaml.MappingNode {
					return nil, errorAt(k, "a merge key (<<) needs a mapping or a list of mappings")
				}
				ps, err := mergePairs(s, depth+1)
				if err != nil {
					return nil, err
				}
				merged = append(merged, ps...)
			}
			continue
		}
		k = resolve(k)
		if seen[k.Value] {
			return nil, errorAt(k, "key %q is defined twice", k.Value)
		}
		seen[k.Value] = true
		explicit = append(explicit, pair{key: k, value: v})
	}
	out := explicit
	for _, p := range merged {
		if !seen[p.key.Value] {
			seen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// stringList decodes a string or a list of strings.
func stringList(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, errors.New("want a string or a list of strings, not null")
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			c = resolve(c)
			if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
				return nil, errorAt(c, "want a string")
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, errors.New("want a string or a list of strings")
}

// yamlErrLine splits a yaml.v3 syntax error ("yaml: line N: msg") into
// the line and the message.
func yamlErrLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if _, scanErr := fmt.Sscanf(rest[:i], "%d", &line); scanErr == nil {
				msg = rest[i+2:]
			}
		}
	}
	return line, "invalid YAML: " + msg
}
