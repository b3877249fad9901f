package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/internal/yamlfile"
)

// ConfigError is a rejected pipelines.yaml entry or handler parameter.
type ConfigError struct {
	File     string
	Line     int // 0 when unknown
	Pipeline string
	Handler  string
	Field    string // the parameter, when one is at fault
	Err      error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Pipeline != "" {
		fmt.Fprintf(&b, "pipeline %q: ", e.Pipeline)
	}
	if e.Handler != "" {
		fmt.Fprintf(&b, "handler %q: ", e.Handler)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "param %q: ", e.Field)
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Params are the params of one pipeline entry, with where they came from.
type Params struct {
	File     string
	Line     int // line of the entry
	Pipeline string
	Handler  string
	node     *yaml.Node // a mapping node, or nil for no params
}

// newParams wraps a params mapping node (nil or a null node: no params).
func newParams(file string, line int, pipeline, handler string, node *yaml.Node) (Params, error) {
	p := Params{File: file, Line: line, Pipeline: pipeline, Handler: handler}
	node = yamlfile.Resolve(node)
	if node == nil || node.Kind == 0 || yamlfile.IsNull(node) {
		return p, nil
	}
	if node.Kind != yaml.MappingNode {
		return p, p.errorAt(node.Line, "", fmt.Errorf("params must be a mapping, not %s", yamlfile.Describe(node)))
	}
	p.node = node
	return p, nil
}

// NewParams wraps the params of a handler configured outside
// pipelines.yaml (an event subscriber in winchester.yaml): node is the
// params mapping (nil: none), file and line say where the entry is.
func NewParams(file string, line int, handler string, node *yaml.Node) (Params, error) {
	return newParams(file, line, "", handler, node)
}

// ParamsFromMap builds Params from a Go map (programmatic configuration).
func ParamsFromMap(handler string, m map[string]any) (Params, error) {
	p := Params{Handler: handler}
	if len(m) == 0 {
		return p, nil
	}
	var n yaml.Node
	if err := n.Encode(m); err != nil {
		return p, p.errorAt(0, "", fmt.Errorf("encode params: %w", err))
	}
	p.node = &n
	return p, nil
}

// Map returns the params as a plain map (empty, never nil, when there are
// none).
func (p Params) Map() map[string]any {
	m := map[string]any{}
	if p.node != nil {
		_ = p.node.Decode(&m)
	}
	return m
}

// Has reports whether the params name key.
func (p Params) Has(key string) bool {
	return p.keyNode(key) != nil
}

// keyNode returns the key node of the parameter key (merge keys
// resolved), or nil.
func (p Params) keyNode(key string) *yaml.Node {
	if p.node == nil {
		return nil
	}
	fields, _ := yamlfile.Mapping(p.node, yamlfile.Keys{})
	if f, ok := yamlfile.Lookup(fields, key); ok {
		return f.Key
	}
	return nil
}

// Decode decodes the params into v, a pointer to a struct with yaml tags.
// Keys that are not fields of v are errors (naming the closest field);
// so are values of the wrong type. Every problem is reported: the error
// joins one *ConfigError per problem, each with the line of the offending
// key or value.
func (p Params) Decode(v any) error {
	if p.node == nil {
		return nil
	}
	var errs []error
	for _, e := range yamlfile.Decode(p.node, v) {
		errs = append(errs, p.errorAt(e.Line, e.Key, e.Err))
	}
	return errors.Join(errs...)
}

// Errorf returns a *ConfigError about the given parameter (field may be
// empty), pointing at the parameter's line when it is present.
func (p Params) Errorf(field, format string, args ...any) error {
	line := 0
	if k := p.keyNode(field); k != nil {
		line = k.Line
	}
	return p.errorAt(line, field, fmt.Errorf(format, args...))
}

func (p Params) errorAt(line int, field string, err error) error {
	if line == 0 {
		line = p.Line
	}
	return &ConfigError{File: p.File, Line: line, Pipeline: p.Pipeline, Handler: p.Handler, Field: field, Err: err}
}

// Keys returns the parameter names in sorted order.
func (p Params) Keys() []string {
	return slices.Sorted(maps.Keys(p.Map()))
}
