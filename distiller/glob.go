package distiller

import (
	"fmt"
	"regexp"
	"strings"
)

// glob is a compiled shell-style pattern with Python fnmatch semantics:
// "*" matches any run of characters including dots, "?" one character,
// "[abc]", "[a-c]" and "[!abc]" a class; everything else is literal;
// matching is case-sensitive and anchored at both ends.
type glob struct {
	pattern string
	literal bool   // no metacharacters: plain equality
	prefix  string // pattern is prefix + "*" with a literal prefix
	re      *regexp.Regexp
}

func compileGlob(pattern string) (*glob, error) {
	g := &glob{pattern: pattern}
	switch i := strings.IndexAny(pattern, "*?["); {
	case i < 0:
		g.literal = true
		return g, nil
	case i == len(pattern)-1 && pattern[i] == '*':
		g.prefix = pattern[:i]
		return g, nil
	}
	re, err := regexp.Compile(translateGlob(pattern))
	if err != nil {
		return nil, err
	}
	g.re = re
	return g, nil
}

func (g *glob) match(s string) bool {
	switch {
	case g.literal:
		return s == g.pattern
	case g.re == nil:
		return strings.HasPrefix(s, g.prefix)
	}
	return g.re.MatchString(s)
}

// translateGlob turns a pattern into an anchored regular expression the way
// Python's fnmatch.translate does.
func translateGlob(pat string) string {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	rs := []rune(pat)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(rs) && rs[j] == '!' {
				j++
			}
			if j < len(rs) && rs[j] == ']' {
				j++
			}
			for j < len(rs) && rs[j] != ']' {
				j++
			}
			if j >= len(rs) {
				b.WriteString(`\[`)
				continue
			}
			class := string(rs[i+1 : j])
			i = j
			class = strings.ReplaceAll(class, `\`, `\\`)
			class = strings.ReplaceAll(class, `[`, `\[`)
			class = strings.ReplaceAll(class, `]`, `\]`)
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			} else if strings.HasPrefix(class, "^") {
				class = `\` + class
			}
			b.WriteString("[" + class + "]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	return b.String()
}

// typeMatcher is an event_type entry of a definition: inclusion and
// exclusion patterns.
type typeMatcher struct {
	include []*glob
	exclude []*glob
}

// newTypeMatcher compiles patterns; a "!" prefix marks an exclusion. Only
// exclusions means "*" is included, as in the original; no pattern at all
// matches nothing.
func newTypeMatcher(patterns []string) (*typeMatcher, error) {
	m := &typeMatcher{}
	for _, p := range patterns {
		list := &m.include
		if rest, ok := strings.CutPrefix(p, "!"); ok {
			p, list = rest, &m.exclude
		}
		g, err := compileGlob(p)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %v", p, err)
		}
		*list = append(*list, g)
	}
	if len(m.include) == 0 && len(m.exclude) > 0 {
		m.include = append(m.include, &glob{pattern: "*", prefix: ""})
	}
	return m, nil
}

// match reports whether the type matches an inclusion and no exclusion.
func (m *typeMatcher) match(typ string) bool {
	in := false
	for _, g := range m.include {
		if g.match(typ) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, g := range m.exclude {
		if g.match(typ) {
			return false
		}
	}
	return true
}

// catchAll reports whether the matcher is a catch-all: it includes "*" and
// excludes nothing.
func (m *typeMatcher) catchAll() bool {
	if len(m.exclude) > 0 {
		return false
	}
	for _, g := range m.include {
		if g.pattern == "*" {
			return true
		}
	}
	return false
}
