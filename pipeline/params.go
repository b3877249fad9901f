package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
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
	node = deref(node)
	if node == nil || node.Kind == 0 || (node.Kind == yaml.ScalarNode && node.Tag == "!!null") {
		return p, nil
	}
	if node.Kind != yaml.MappingNode {
		return p, p.errorAt(node.Line, "", fmt.Errorf("params must be a mapping"))
	}
	p.node = node
	return p, nil
}

// deref follows YAML aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
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

func (p Params) keyNode(key string) *yaml.Node {
	if p.node == nil {
		return nil
	}
	for i := 0; i+1 < len(p.node.Content); i += 2 {
		if p.node.Content[i].Value == key {
			return p.node.Content[i]
		}
	}
	return nil
}

// Decode decodes the params into v, a pointer to a struct with yaml tags.
// Keys that are not fields of v are errors; so are values of the wrong
// type. Errors are *ConfigError with the line of the offending key.
func (p Params) Decode(v any) error {
	if p.node == nil {
		return nil
	}
	known := yamlFields(v)
	for i := 0; i+1 < len(p.node.Content); i += 2 {
		k := p.node.Content[i]
		if !slices.Contains(known, k.Value) {
			return p.errorAt(k.Line, k.Value, fmt.Errorf("unknown parameter (known: %s)", strings.Join(known, ", ")))
		}
	}
	for i := 0; i+1 < len(p.node.Content); i += 2 {
		k, val := p.node.Content[i], p.node.Content[i+1]
		if err := decodeField(v, k.Value, val); err != nil {
			return p.errorAt(k.Line, k.Value, err)
		}
	}
	return nil
}

// decodeField decodes one value into the field of v tagged name.
func decodeField(v any, name string, val *yaml.Node) error {
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		if tag != name {
			continue
		}
		if err := val.Decode(rv.Field(i).Addr().Interface()); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				msgs := make([]string, len(te.Errors))
				for i, m := range te.Errors {
					msgs[i] = linePrefix.ReplaceAllString(m, "")
				}
				return errors.New(strings.Join(msgs, "; "))
			}
			return err
		}
		return nil
	}
	return fmt.Errorf("no field")
}

// linePrefix is the position yaml.v3 puts in front of its messages; our
// errors carry the line themselves.
var linePrefix = regexp.MustCompile(`^line \d+: `)

// yamlFields returns the yaml names of the fields of the struct v points to.
func yamlFields(v any) []string {
	rt := reflect.TypeOf(v)
	for rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if rt.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range rt.NumField() {
		tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	return out
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
