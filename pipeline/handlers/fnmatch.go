package handlers

import (
	"regexp"
	"strings"
)

// typeMatcher matches event types against include patterns and "!"
// exclusions with shell-style wildcards (fnmatch: "*" crosses dots, "?",
// "[seq]", "[!seq]"), the way criteria match event types. With no include
// pattern every type not excluded matches.
type typeMatcher struct {
	include, exclude []*regexp.Regexp
}

func newTypeMatcher(patterns []string) (*typeMatcher, error) {
	m := &typeMatcher{}
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		re, err := regexp.Compile(globRegexp(strings.TrimPrefix(p, "!")))
		if err != nil {
			return nil, err
		}
		if neg {
			m.exclude = append(m.exclude, re)
		} else {
			m.include = append(m.include, re)
		}
	}
	return m, nil
}

func (m *typeMatcher) match(t string) bool {
	for _, re := range m.exclude {
		if re.MatchString(t) {
			return false
		}
	}
	if len(m.include) == 0 {
		return true
	}
	for _, re := range m.include {
		if re.MatchString(t) {
			return true
		}
	}
	return false
}

// globRegexp translates an fnmatch pattern to an anchored regexp, as
// Python's fnmatch.translate does.
func globRegexp(pattern string) string {
	pat := []rune(pattern)
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(pat) && pat[j] == '!' {
				j++
			}
			if j < len(pat) && pat[j] == ']' {
				j++
			}
			for j < len(pat) && pat[j] != ']' {
				j++
			}
			if j >= len(pat) {
				b.WriteString(`\[`)
				continue
			}
			stuff := string(pat[i+1 : j])
			i = j
			stuff = strings.ReplaceAll(stuff, `\`, `\\`)
			if strings.HasPrefix(stuff, "!") {
				stuff = "^" + stuff[1:]
			} else if strings.HasPrefix(stuff, "^") {
				stuff = `\` + stuff
			}
			b.WriteString("[" + stuff + "]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`\z`)
	return b.String()
}
