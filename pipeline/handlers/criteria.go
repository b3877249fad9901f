package handlers

import (
	"errors"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/trigger"
)

// criteriaNode holds a param's YAML as written, for criteriaParam.
type criteriaNode struct{ n *yaml.Node }

func (c *criteriaNode) UnmarshalYAML(n *yaml.Node) error {
	c.n = n
	return nil
}

// criteriaParam compiles a param written in the triggers' criteria syntax
// (one entry or a list; see trigger.ParseEventCriteria). It returns nil
// when the param is absent; problems are *pipeline.ConfigError values with the
// line and the criteria field.
func criteriaParam(p pipeline.Params, key string, n criteriaNode) ([]*trigger.Criteria, error) {
	if !p.Has(key) || n.n == nil {
		return nil, nil
	}
	cs, err := trigger.ParseEventCriteria(p.File, n.n)
	if err == nil {
		return cs, nil
	}
	var de *trigger.DefinitionError
	if !errors.As(err, &de) {
		return nil, p.Errorf(key, "%v", err)
	}
	field := key
	if de.Field != "" {
		if de.Field[0] == '[' {
			field += de.Field
		} else {
			field += "." + de.Field
		}
	}
	line := de.Line
	if line == 0 {
		line = p.Line
	}
	return nil, &pipeline.ConfigError{File: p.File, Line: line, Pipeline: p.Pipeline, Handler: p.Handler, Field: field, Err: de.Err}
}
