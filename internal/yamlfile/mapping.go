package yamlfile

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Field is one key and value of a mapping, aliases resolved.
type Field struct {
	Name  string     // the key's text
	Key   *yaml.Node // the key node, for its line
	Value *yaml.Node
}

// Keys are the keys a mapping may hold. The zero value allows any key.
type Keys struct {
	// Known are the allowed keys, in the order messages list them. When
	// Known and Hidden are both empty, any key is allowed.
	Known []string
	// Hidden are accepted too but never listed or suggested (spellings
	// kept for compatibility).
	Hidden []string
	// None says that no key is allowed at all (Known and Hidden empty).
	None bool
}

// Strict returns Keys allowing exactly known.
func Strict(known ...string) Keys {
	if len(known) == 0 {
		return Keys{None: true}
	}
	return Keys{Known: known}
}

func (k Keys) any() bool { return !k.None && len(k.Known) == 0 && len(k.Hidden) == 0 }

func (k Keys) allows(name string) bool {
	return k.any() || slices.Contains(k.Known, name) || slices.Contains(k.Hidden, name)
}

// unknown is the problem of a key that k does not allow; the message
// leaves the key to the caller, who names it with its path.
func (k Keys) unknown(name string) error {
	if len(k.Known) == 0 {
		return errors.New("unknown key (no keys are allowed here)")
	}
	if guess := Closest(name, k.Known); guess != "" {
		return fmt.Errorf("unknown key (did you mean %s?)", guess)
	}
	return fmt.Errorf("unknown key (known keys: %s)", strings.Join(k.Known, ", "))
}

// Mapping returns the fields of the mapping n in document order, with merge
// keys resolved ("<<: *anchor" or "<<: [*a, *b]"): a key written in the
// mapping wins over a merged one, and among merged mappings the earlier
// wins, as the YAML merge-key type says. Fields that keys does not allow
// are left out and reported, as are keys written twice in one mapping,
// keys that are not scalars and merges of something other than mappings.
// Every problem is an *Error. n must be a mapping node.
func Mapping(n *yaml.Node, keys Keys) ([]Field, []*Error) {
	var out []Field
	var errs []*Error
	taken := map[string]bool{} // keys already given a value
	var add func(n *yaml.Node)
	add = func(n *yaml.Node) {
		local := map[string]int{} // keys of this mapping node → line
		var merges []Field
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := Resolve(n.Content[i]), Resolve(n.Content[i+1])
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				merges = append(merges, Field{Name: k.Value, Key: k, Value: v})
				continue
			}
			if k.Kind != yaml.ScalarNode {
				errs = append(errs, &Error{Line: k.Line, Err: fmt.Errorf("a key must be a string, not %s", Describe(k))})
				continue
			}
			name := k.Value
			if first, dup := local[name]; dup {
				errs = append(errs, &Error{Line: k.Line, Key: name, Err: fmt.Errorf("key defined more than once (first on line %d)", first)})
				continue
			}
			local[name] = k.Line
			if taken[name] {
				continue // overridden by the merging mapping
			}
			if !keys.allows(name) {
				errs = append(errs, &Error{Line: k.Line, Key: name, Err: keys.unknown(name)})
				continue
			}
			taken[name] = true
			out = append(out, Field{Name: name, Key: k, Value: v})
		}
		for _, m := range merges {
			var sources []*yaml.Node
			switch m.Value.Kind {
			case yaml.MappingNode:
				sources = []*yaml.Node{m.Value}
			case yaml.SequenceNode:
				for _, s := range m.Value.Content {
					sources = append(sources, Resolve(s))
				}
			default:
				sources = []*yaml.Node{m.Value}
			}
			for _, s := range sources {
				if s.Kind != yaml.MappingNode {
					errs = append(errs, &Error{Line: m.Key.Line, Err: fmt.Errorf("a merge key (<<) takes a mapping or a list of mappings, not %s", Describe(s))})
					continue
				}
				add(s)
			}
		}
	}
	add(n)
	return out, errs
}

// Lookup returns the field named name, if present.
func Lookup(fields []Field, name string) (Field, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Closest returns the candidate within two edits of s, the nearest first
// (the earlier on ties), or "" when there is none.
func Closest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (in bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
