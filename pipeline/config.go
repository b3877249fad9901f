package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
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
// {name: <handler>, params: {...}}. Every handler name is looked up in reg
// and its factory validates the params. Errors are *ConfigError values
// naming the file, line, pipeline and handler.
func Parse(file string, data []byte, reg *Registry) (*Definitions, error) {
	if reg == nil {
		return nil, errors.New("pipeline: Parse needs a handler registry")
	}
	defs := &Definitions{File: file, pipelines: map[string]*Pipeline{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return defs, nil
		}
		return nil, &ConfigError{File: file, Err: err}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return defs, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: file, Line: root.Line, Err: errors.New("pipelines must be a mapping of pipeline name to handler list")}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		if k.Kind != yaml.ScalarNode || name == "" {
			return nil, &ConfigError{File: file, Line: k.Line, Err: errors.New("pipeline name must be a non-empty string")}
		}
		if _, dup := defs.pipelines[name]; dup {
			return nil, &ConfigError{File: file, Line: k.Line, Pipeline: name, Err: errors.New("duplicate pipeline name")}
		}
		p, err := parsePipeline(file, name, v, reg)
		if err != nil {
			return nil, err
		}
		defs.pipelines[name] = p
	}
	return defs, nil
}

func parsePipeline(file, name string, n *yaml.Node, reg *Registry) (*Pipeline, error) {
	p := &Pipeline{Name: name}
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return p, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &ConfigError{File: file, Line: n.Line, Pipeline: name, Err: errors.New("a pipeline must be a list of handler entries")}
	}
	for _, en := range n.Content {
		en = deref(en)
		e, params, err := normalizeEntry(file, name, en)
		if err != nil {
			return nil, err
		}
		f, err := reg.Lookup(e.Name)
		if err != nil {
			return nil, &ConfigError{File: file, Line: en.Line, Pipeline: name, Handler: e.Name,
				Err: fmt.Errorf("Unknown handler in pipeline config %s: %w", e.Name, err)}
		}
		b, err := f(params)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				err = &ConfigError{File: file, Line: en.Line, Pipeline: name, Handler: e.Name, Err: err}
			}
			return nil, err
		}
		if b == nil {
			return nil, &ConfigError{File: file, Line: en.Line, Pipeline: name, Handler: e.Name, Err: errors.New("handler factory returned no builder")}
		}
		p.Entries = append(p.Entries, e)
		p.build = append(p.build, b)
	}
	return p, nil
}

// normalizeEntry turns one list item into {name, params}.
func normalizeEntry(file, pipeline string, n *yaml.Node) (Entry, Params, error) {
	fail := func(handler, msg string) (Entry, Params, error) {
		return Entry{}, Params{}, &ConfigError{File: file, Line: n.Line, Pipeline: pipeline, Handler: handler, Err: errors.New(msg)}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!str" || n.Value == "" {
			return fail("", "Handler name not in config! "+render(n))
		}
		p, err := newParams(file, n.Line, pipeline, n.Value, nil)
		return Entry{Name: n.Value, Params: map[string]any{}, Line: n.Line}, p, err
	case yaml.MappingNode:
	default:
		return fail("", "Handler name not in config! "+render(n))
	}
	var nameNode, paramsNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			nameNode = deref(v)
		case "params":
			paramsNode = v
		default:
			h := ""
			if nameNode != nil {
				h = nameNode.Value
			}
			return Entry{}, Params{}, &ConfigError{File: file, Line: k.Line, Pipeline: pipeline, Handler: h,
				Err: fmt.Errorf("unknown key %q in handler entry (known: name, params)", k.Value)}
		}
	}
	if nameNode == nil || nameNode.Kind != yaml.ScalarNode || nameNode.Tag != "!!str" || nameNode.Value == "" {
		return fail("", "Handler name not in config! "+render(n))
	}
	p, err := newParams(file, n.Line, pipeline, nameNode.Value, paramsNode)
	if err != nil {
		return Entry{}, Params{}, err
	}
	return Entry{Name: nameNode.Value, Params: p.Map(), Line: n.Line}, p, nil
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
