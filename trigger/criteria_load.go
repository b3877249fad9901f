package trigger

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/internal/yamlfile"
	"github.com/winchester-go/winchester/stream"
)

// ParseEventCriteria compiles criteria written in the syntax of a
// trigger's match_criteria, for other configuration files (the filter and
// halt pipeline handlers): n is one criteria entry (a mapping) or a list of
// them. Only the keys that test one event are accepted: event_type,
// timestamp and traits (number and map_distinguished_by mean nothing
// outside a trigger). file names the file in errors; problems are
// *DefinitionError values with the line and the field path, joined.
func ParseEventCriteria(file string, n *yaml.Node) ([]*Criteria, error) {
	l := &loader{file: file}
	n = yamlfile.Resolve(n)
	var items []*yaml.Node
	switch {
	case n == nil || yamlfile.IsNull(n):
		return nil, &DefinitionError{File: file, Err: errors.New("no criteria")}
	case n.Kind == yaml.MappingNode:
		items = []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	default:
		return nil, &DefinitionError{File: file, Line: n.Line, Err: fmt.Errorf("criteria must be a criteria entry or a list of them, not %s", yamlfile.Describe(n))}
	}
	if len(items) == 0 {
		return nil, &DefinitionError{File: file, Line: n.Line, Err: errors.New("empty criteria list")}
	}
	var out []*Criteria
	for i, raw := range items {
		e := yamlfile.Resolve(raw)
		path := ""
		if n.Kind == yaml.SequenceNode {
			path = fmt.Sprintf("[%d]", i)
		}
		if e.Kind == yaml.MappingNode {
			bad := false
			for j := 0; j+1 < len(e.Content); j += 2 {
				switch k := e.Content[j]; k.Value {
				case keyNumber, keyMapDist, keyMapDistTypo:
					l.errorf(k, "", join(path, k.Value), "only event_type, timestamp and traits test an event here")
					bad = true
				}
			}
			if bad {
				continue
			}
		}
		if c := l.criteria(e, "", path, false, nil); c != nil {
			out = append(out, c)
		}
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return out, nil
}

// MatchAny reports whether the event satisfies at least one of cs.
func MatchAny(cs []*Criteria, ev stream.Event) bool {
	for _, c := range cs {
		if c.Match(ev) {
			return true
		}
	}
	return false
}
