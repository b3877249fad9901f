package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/internal/yamlfile"
)

// Definitions are the pipelines of one pipelines.yaml file, ready to run.
type Definitions struct {
	File      string
	pipelines map[string]*Pipeline
}

// Entry is one handler entry of a pipeline in its normalised form.
type Entry struct {
	Name   string         // the handler name as written in pipelines.yaml
	Params map[string]any // never nil
	Line   int            // line of the entry in the file (0: not from a file)
}

// Pipeline is a named chain of handler entries. Run it with Run; a Pipeline
// is safe for concurrent runs (every run builds its own handlers).
type Pipeline struct {
	Name    string
	Entries []Entry
	build   []Builder
}

// Pipeline returns the pipeline with the given name.
func (d *Definitions) Pipeline(name string) (*Pipeline, bool) {
	p, ok := d.pipelines[name]
	return p, ok
}

// Names returns the pipeline names, sorted.
func (d *Definitions) Names() []string {
	return slices.Sorted(maps.Keys(d.pipelines))
}

// Load reads and parses a pipelines.yaml file; see Parse.
func Load(path string, reg *Registry) (*Definitions, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load pipelines: %w", err)
	}
	return Parse(path, data, reg)
}

// Parse parses pipelines.yaml content: a mapping of pipeline name to a list
// of handler entries, each either a handler name or a mapping
// {name: <handler>, params: {...}}. YAML anchors, aliases and merge keys are
// resolved. Every handler name is looked up in reg and its factory
// validates the params. Every problem is reported: the error joins one
// *ConfigError per problem, naming the file, line, pipeline and handler.
func Parse(file string, data []byte, reg *Registry) (*Definitions, error) {
	if reg == nil {
		return nil, errors.New("pipeline: Parse needs a handler registry")
	}
	defs := &Definitions{File: file, pipelines: map[string]*Pipeline{}}
	root, perr := yamlfile.Parse(data)
	if perr != nil {
		return nil, &ConfigError{File: file, Line: perr.Line, Err: perr.Err}
	}
	if root == nil {
		return defs, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: file, Line: root.Line, Err: fmt.Errorf("pipelines must be a mapping of pipeline name to handler list, not %s", yamlfile.Describe(root))}
	}
	fields, keyErrs := yamlfile.Mapping(root, yamlfile.Keys{})
	var errs []error
	for _, e := range keyErrs {
		errs = append(errs, &ConfigError{File: file, Line: e.Line, Pipeline: e.Key, Err: e.Err})
	}
	for _, f := range fields {
		if f.Name == "" {
			errs = append(errs, &ConfigError{File: file, Line: f.Key.Line, Err: errors.New("pipeline name must be a non-empty string")})
			continue
		}
		p, perrs := parsePipeline(file, f.Name, f.Value, reg)
		errs = append(errs, perrs...)
		if len(perrs) == 0 {
			defs.pipelines[f.Name] = p
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return defs, nil
}

// parsePipeline builds one pipeline and returns every problem of its
// entries.
func parsePipeline(file, name string, n *yaml.Node, reg *Registry) (*Pipeline, []error) {
	p := &Pipeline{Name: name}
	if yamlfile.IsNull(n) {
		return p, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, []error{&ConfigError{File: file, Line: n.Line, Pipeline: name, Err: fmt.Errorf("a pipeline must be a list of handler entries, not %s", yamlfile.Describe(n))}}
	}
	var errs []error
	for _, en := range n.Content {
		en = yamlfile.Resolve(en)
		e, params, eerrs := normalizeEntry(file, name, en)
		if len(eerrs) > 0 {
			errs = append(errs, eerrs...)
			continue
		}
		f, err := reg.Lookup(e.Name)
		if err != nil {
			errs = append(errs, &ConfigError{File: file, Line: en.Line, Pipeline: name, Handler: e.Name,
				Err: fmt.Errorf("Unknown handler in pipeline config %s: %w", e.Name, err)})
			continue
		}
		b, err := f(params)
		if err != nil {
			errs = append(errs, configErrors(err, &ConfigError{File: file, Line: en.Line, Pipeline: name, Handler: e.Name})...)
			continue
		}
		if b == nil {
			errs = append(errs, &ConfigError{File: file, Line: en.Line, Pipeline: name, Handler: e.Name, Err: errors.New("handler factory returned no builder")})
			continue
		}
		p.Entries = append(p.Entries, e)
		p.build = append(p.build, b)
	}
	return p, errs
}

// configErrors splits the error of a handler factory into its
// *ConfigError values (Params.Decode joins several); any other error is
// placed at where.
func configErrors(err error, where *ConfigError) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, configErrors(e, where)...)
		}
		return out
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return []error{err}
	}
	at := *where
	at.Err = err
	return []error{&at}
}

var entryKeys = yamlfile.Strict("name", "params")

// normalizeEntry turns one list item into {name, params}.
func normalizeEntry(file, pipeline string, n *yaml.Node) (Entry, Params, []error) {
	fail := func(handler, msg string) (Entry, Params, []error) {
		return Entry{}, Params{}, []error{&ConfigError{File: file, Line: n.Line, Pipeline: pipeline, Handler: handler, Err: errors.New(msg)}}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" || n.Value == "" {
			return fail("", "Handler name not in config! "+render(n))
		}
		p, err := newParams(file, n.Line, pipeline, n.Value, nil)
		if err != nil {
			return Entry{}, Params{}, []error{err}
		}
		return Entry{Name: n.Value, Params: map[string]any{}, Line: n.Line}, p, nil
	case yaml.MappingNode:
	default:
		return fail("", "Handler name not in config! "+render(n))
	}
	fields, keyErrs := yamlfile.Mapping(n, entryKeys)
	nameField, ok := yamlfile.Lookup(fields, "name")
	if !ok || nameField.Value.Kind != yaml.ScalarNode || nameField.Value.ShortTag() != "!!str" || nameField.Value.Value == "" {
		return fail("", "Handler name not in config! "+render(n))
	}
	handler := nameField.Value.Value
	var errs []error
	for _, e := range keyErrs {
		errs = append(errs, &ConfigError{File: file, Line: e.Line, Pipeline: pipeline, Handler: handler, Err: fmt.Errorf("%s: %w", e.Key, e.Err)})
	}
	var paramsNode *yaml.Node
	if f, ok := yamlfile.Lookup(fields, "params"); ok {
		paramsNode = f.Value
	}
	p, err := newParams(file, n.Line, pipeline, handler, paramsNode)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Entry{}, Params{}, errs
	}
	return Entry{Name: handler, Params: p.Map(), Line: n.Line}, p, nil
}

// render writes a node as one line of flow YAML for messages.
func render(n *yaml.Node) string {
	c := *n
	setFlow(&c)
	out, err := yaml.Marshal(&c)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for i, c := range n.Content {
		cc := *c
		setFlow(&cc)
		n.Content[i] = &cc
	}
}
