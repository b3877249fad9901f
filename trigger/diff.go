package trigger

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ChangePolicy is a trigger's on_change key: what becomes of the open
// streams created under an earlier version of the definitions when a new
// version changes the trigger.
type ChangePolicy int

// Change policies.
const (
	// Keep: open streams go on under the version they were created under
	// (its fire criteria, expiration and pipelines) until they complete;
	// new streams follow the new version.
	Keep ChangePolicy = iota + 1
	// Expire: open streams not ready to fire expire now (their expire
	// pipeline runs, under their version).
	Expire
	// Fire: open streams not ready to fire fire now (their fire pipeline
	// runs, under their version).
	Fire
)

// String returns the policy's name in triggers.yaml.
func (p ChangePolicy) String() string {
	switch p {
	case Keep:
		return "keep"
	case Expire:
		return "expire"
	case Fire:
		return "fire"
	}
	return fmt.Sprintf("change_policy(%d)", int(p))
}

// ParseChangePolicy reads keep, expire or fire.
func ParseChangePolicy(s string) (ChangePolicy, error) {
	switch s {
	case "keep":
		return Keep, nil
	case "expire":
		return Expire, nil
	case "fire":
		return Fire, nil
	}
	return 0, fmt.Errorf("unknown on_change policy %q (want keep, expire or fire)", s)
}

// ChangeKind says how a trigger differs between two versions.
type ChangeKind int

// Kinds of change.
const (
	Added ChangeKind = iota + 1
	Removed
	Changed
)

// String returns "added", "removed" or "changed".
func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Changed:
		return "changed"
	}
	return fmt.Sprintf("change_kind(%d)", int(k))
}

// Change is how one trigger differs between two versions.
type Change struct {
	Trigger string
	Kind    ChangeKind
	// Fields are the keys whose values differ (Changed only), sorted.
	Fields []string
	// OnChange is the new definition's policy (Changed only).
	OnChange ChangePolicy
}

// String renders the change for people: "changed trigger x: fire_criteria,
// expiration (on_change: keep)".
func (c Change) String() string {
	switch c.Kind {
	case Changed:
		return fmt.Sprintf("changed %s: %s (on_change: %s)", c.Trigger, strings.Join(c.Fields, ", "), c.OnChange)
	default:
		return fmt.Sprintf("%s %s", c.Kind, c.Trigger)
	}
}

// Diff compares two lists of definitions by trigger name: the triggers
// only in new (added), only in old (removed), and in both with different
// values of some key (changed, with the keys). Keys are compared by value,
// not by how they are written: a change of layout, comments or anchors is
// no change. Changes come in the order of new, then removed triggers in
// the order of old. A definition built by hand (not by Parse) has no key
// values: it differs from every parsed one in every key it sets.
func Diff(old, new []*Definition) []Change {
	byName := make(map[string]*Definition, len(old))
	for _, d := range old {
		byName[d.Name] = d
	}
	seen := make(map[string]bool, len(new))
	var out []Change
	for _, d := range new {
		seen[d.Name] = true
		o, ok := byName[d.Name]
		if !ok {
			out = append(out, Change{Trigger: d.Name, Kind: Added})
			continue
		}
		if fields := changedFields(o, d); len(fields) > 0 {
			out = append(out, Change{Trigger: d.Name, Kind: Changed, Fields: fields, OnChange: d.OnChange})
		}
	}
	for _, d := range old {
		if !seen[d.Name] {
			out = append(out, Change{Trigger: d.Name, Kind: Removed})
		}
	}
	return out
}

// changedFields returns the keys whose values differ between a and b.
func changedFields(a, b *Definition) []string {
	if a.texts == nil || b.texts == nil {
		if a == b {
			return nil
		}
		return []string{"(definition)"}
	}
	keys := map[string]bool{}
	for k := range a.texts {
		keys[k] = true
	}
	for k := range b.texts {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		av, aok := a.texts[k]
		bv, bok := b.texts[k]
		if aok != bok || av != bv {
			out = append(out, k)
		}
	}
	return out
}
