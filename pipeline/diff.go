package pipeline

import (
	"maps"
	"slices"
)

// Change is how one pipeline differs between two sets of definitions.
type Change struct {
	Pipeline string
	// Kind is "added", "removed" or "changed" (its handlers, their
	// params, timeouts or error policy).
	Kind string
}

// Diff compares two sets of pipelines by name: added, removed and
// changed pipelines, in name order. Pipelines are compared by value, not
// by how they are written. A nil set has no pipelines.
func Diff(old, new *Definitions) []Change {
	if old == nil {
		old = &Definitions{}
	}
	if new == nil {
		new = &Definitions{}
	}
	names := map[string]bool{}
	for n := range old.pipelines {
		names[n] = true
	}
	for n := range new.pipelines {
		names[n] = true
	}
	var out []Change
	for _, n := range slices.Sorted(maps.Keys(names)) {
		_, inOld := old.pipelines[n]
		_, inNew := new.pipelines[n]
		switch {
		case !inOld:
			out = append(out, Change{Pipeline: n, Kind: "added"})
		case !inNew:
			out = append(out, Change{Pipeline: n, Kind: "removed"})
		case old.texts[n] != new.texts[n]:
			out = append(out, Change{Pipeline: n, Kind: "changed"})
		}
	}
	return out
}
