package trigger

import (
	"fmt"
	"sync"
)

// maxCachedTypes bounds the per-event-type candidate cache; beyond it,
// candidates of new types are computed on each call instead of cached, so a
// flood of distinct event types cannot grow memory without bound.
const maxCachedTypes = 4096

// Set is an ordered, immutable collection of trigger definitions with
// unique names. It is safe for concurrent use.
type Set struct {
	defs   []*Definition
	byName map[string]*Definition

	debugged []*Definition // definitions with a debug level, in order

	mu         sync.RWMutex
	candidates map[string][]*Definition
}

// NewSet returns a set of defs in the given order. Names must be unique.
// The set keeps defs' definitions (not the slice).
func NewSet(defs []*Definition) (*Set, error) {
	s := &Set{
		defs:       make([]*Definition, 0, len(defs)),
		byName:     make(map[string]*Definition, len(defs)),
		candidates: map[string][]*Definition{},
	}
	for _, d := range defs {
		if d == nil {
			return nil, fmt.Errorf("trigger set: nil definition")
		}
		if prev, dup := s.byName[d.Name]; dup {
			return nil, &DefinitionError{File: d.File, Line: d.Line, Trigger: d.Name, Field: keyName,
				Err: fmt.Errorf("duplicate trigger name (first defined at %s:%d)", prev.File, prev.Line)}
		}
		s.byName[d.Name] = d
		s.defs = append(s.defs, d)
		if d.DebugLevel > 0 {
			s.debugged = append(s.debugged, d)
		}
	}
	return s, nil
}

// Debugged returns the definitions whose debug_level is 1 or more, in
// order. The slice is shared: do not modify it.
func (s *Set) Debugged() []*Definition { return s.debugged }

// LoadSet loads a triggers.yaml file into a Set. See Parse.
func LoadSet(path string) (*Set, []Warning, error) {
	defs, warns, err := Load(path)
	if err != nil {
		return nil, warns, err
	}
	s, err := NewSet(defs)
	return s, warns, err
}

// Len returns the number of definitions.
func (s *Set) Len() int { return len(s.defs) }

// Definitions returns the definitions in order. The slice is the caller's.
func (s *Set) Definitions() []*Definition {
	return append([]*Definition(nil), s.defs...)
}

// Lookup returns the definition named name.
func (s *Set) Lookup(name string) (*Definition, bool) {
	d, ok := s.byName[name]
	return d, ok
}

// Without returns a new set without the definition named name (the same
// definitions otherwise, in the same order).
func (s *Set) Without(name string) *Set {
	out := &Set{byName: make(map[string]*Definition, len(s.defs)), candidates: map[string][]*Definition{}}
	for _, d := range s.defs {
		if d.Name == name {
			continue
		}
		out.defs = append(out.defs, d)
		out.byName[d.Name] = d
	}
	return out
}

// Candidates returns, in set order, the definitions with a match criteria
// entry whose event-type patterns accept eventType: the only ones an event
// of that type can match. Results are cached per event type. The returned
// slice is shared: do not modify it.
func (s *Set) Candidates(eventType string) []*Definition {
	s.mu.RLock()
	c, ok := s.candidates[eventType]
	s.mu.RUnlock()
	if ok {
		return c
	}
	c = []*Definition{}
	for _, d := range s.defs {
		for _, mc := range d.MatchCriteria {
			if mc.MatchType(eventType) {
				c = append(c, d)
				break
			}
		}
	}
	s.mu.Lock()
	if len(s.candidates) < maxCachedTypes {
		s.candidates[eventType] = c
	}
	s.mu.Unlock()
	return c
}
