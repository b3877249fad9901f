package yamlfile

import (
	"encoding/json"

	"gopkg.in/yaml.v3"
)

// Canonical renders a YAML value in a form that is equal for equal values
// however they are written: aliases and merge keys resolved, mapping keys
// sorted, comments, styles and layout dropped. It is for comparing
// definitions between versions, not for reading back.
func Canonical(n *yaml.Node) string {
	var v any
	if err := n.Decode(&v); err == nil {
		if b, err := json.Marshal(v); err == nil {
			return string(b)
		}
	}
	b, _ := yaml.Marshal(n)
	return string(b)
}
