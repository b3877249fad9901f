package distiller

import "github.com/winchester-go/winchester/stream"

// typeMatcher is an event_type entry of a definition: inclusion and
// exclusion patterns (stream.TypeFilter). Only exclusions means "*" is
// included, as in the original; no pattern at all matches nothing.
type typeMatcher struct {
	filter stream.TypeFilter
	none   bool
}

// newTypeMatcher compiles patterns; a "!" prefix marks an exclusion.
func newTypeMatcher(patterns []string) (*typeMatcher, error) {
	f, err := stream.CompileTypeFilter(patterns)
	if err != nil {
		return nil, err
	}
	return &typeMatcher{filter: f, none: len(patterns) == 0}, nil
}

// match reports whether the type matches an inclusion and no exclusion.
func (m *typeMatcher) match(typ string) bool { return !m.none && m.filter.Match(typ) }

// catchAll reports whether the matcher is a catch-all: it includes "*" and
// excludes nothing.
func (m *typeMatcher) catchAll() bool {
	return !m.none && len(m.filter.Include) > 0 && m.filter.CatchAll()
}
