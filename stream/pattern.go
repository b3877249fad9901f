package stream

import (
	"fmt"
	"regexp"
	"strings"
)

// Pattern is a compiled event-type pattern with the semantics of Python's
// fnmatch on POSIX: "*" matches any run of characters (dots included), "?"
// exactly one character, "[abc]", "[a-c]" and "[!a-c]" are classes; every
// other character is literal (there is no escape character). Matching is
// case-sensitive and anchored at both ends. A pattern without metacharacters
// is compared as a plain string, "prefix*" and "*suffix" with strings
// functions; the rest is translated to a regexp.
type Pattern struct {
	pattern string
	kind    globKind
	lit     string         // the literal part of globPrefix and globSuffix
	re      *regexp.Regexp // for globRegexp
}

// globKind selects how a pattern is matched: the common shapes
// ("compute.instance.*", "*.end", "*") avoid the regexp engine.
type globKind int

const (
	globLiteral globKind = iota + 1
	globAny
	globPrefix
	globSuffix
	globRegexp
)

// CompilePattern translates pattern into an anchored regular expression,
// following fnmatch.translate: an unterminated "[" is a literal, a "]"
// right after "[" or "[!" belongs to the class, "-" at either end of a
// class is literal. A reversed range ("[z-a]") is an error, as it is for
// Python's re module.
func CompilePattern(pattern string) (Pattern, error) {
	if !strings.ContainsAny(pattern, "*?[") {
		return Pattern{pattern: pattern, kind: globLiteral}, nil
	}
	if strings.Trim(pattern, "*") == "" {
		return Pattern{pattern: pattern, kind: globAny}, nil
	}
	if i := strings.IndexAny(pattern, "*?["); pattern[i] == '*' {
		rest := strings.TrimLeft(pattern[i:], "*")
		if rest == "" {
			return Pattern{pattern: pattern, kind: globPrefix, lit: pattern[:i]}, nil
		}
		if i == 0 && !strings.ContainsAny(rest, "*?[") {
			return Pattern{pattern: pattern, kind: globSuffix, lit: rest}, nil
		}
	}
	p := []rune(pattern)
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for i := 0; i < len(p); {
		c := p[i]
		i++
		switch c {
		case '*':
			// Consecutive stars are one star; this keeps the regexp small.
			for i < len(p) && p[i] == '*' {
				i++
			}
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i
			if j < len(p) && p[j] == '!' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				b.WriteString(`\[`)
				continue
			}
			class, err := translateClass(p[i:j])
			if err != nil {
				return Pattern{}, fmt.Errorf("pattern %q: %w", pattern, err)
			}
			b.WriteString(class)
			i = j + 1
		default:
			writeRune(&b, c)
		}
	}
	b.WriteString(`\z`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		// Cannot happen: every character is escaped.
		return Pattern{}, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return Pattern{pattern: pattern, kind: globRegexp, re: re}, nil
}

// translateClass turns the inside of a bracket expression (without the
// brackets, never empty) into a Go regexp class.
func translateClass(body []rune) (string, error) {
	var b strings.Builder
	b.WriteString("[")
	if body[0] == '!' {
		b.WriteString("^")
		body = body[1:]
	}
	for k := 0; k < len(body); k++ {
		lo := body[k]
		if k+2 < len(body) && body[k+1] == '-' {
			hi := body[k+2]
			if lo > hi {
				return "", fmt.Errorf("bad character range %c-%c", lo, hi)
			}
			writeRune(&b, lo)
			b.WriteString("-")
			writeRune(&b, hi)
			k += 2
			continue
		}
		writeRune(&b, lo)
	}
	b.WriteString("]")
	return b.String(), nil
}

// writeRune writes r as an escaped regexp literal, valid inside and outside
// classes.
func writeRune(b *strings.Builder, r rune) {
	fmt.Fprintf(b, `\x{%x}`, r)
}

// Match reports whether s matches the pattern.
func (g Pattern) Match(s string) bool {
	switch g.kind {
	case globLiteral:
		return s == g.pattern
	case globAny:
		return true
	case globPrefix:
		return strings.HasPrefix(s, g.lit)
	case globSuffix:
		return strings.HasSuffix(s, g.lit)
	}
	return g.re.MatchString(s)
}

// String returns the pattern as written.
func (g Pattern) String() string { return g.pattern }

// MatchesAll reports whether the pattern matches every string ("*", "**").
func (g Pattern) MatchesAll() bool { return g.kind == globAny }

// TypeFilter is a list of event-type patterns as triggers, event
// definitions and handlers write them: patterns starting with "!" exclude
// (the "!" is stripped), the others include. A type matches when it matches
// no exclusion and at least one inclusion; without inclusions every type
// that is not excluded matches.
type TypeFilter struct {
	Include, Exclude []Pattern
}

// CompileTypeFilter compiles a list of patterns.
func CompileTypeFilter(patterns []string) (TypeFilter, error) {
	var f TypeFilter
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		g, err := CompilePattern(strings.TrimPrefix(p, "!"))
		if err != nil {
			return TypeFilter{}, err
		}
		if neg {
			f.Exclude = append(f.Exclude, g)
		} else {
			f.Include = append(f.Include, g)
		}
	}
	return f, nil
}

// Match reports whether typ passes the filter.
func (f TypeFilter) Match(typ string) bool {
	for _, g := range f.Exclude {
		if g.Match(typ) {
			return false
		}
	}
	if len(f.Include) == 0 {
		return true
	}
	for _, g := range f.Include {
		if g.Match(typ) {
			return true
		}
	}
	return false
}

// CatchAll reports whether the filter passes every type: no exclusion, and
// no inclusion or one that matches everything.
func (f TypeFilter) CatchAll() bool {
	if len(f.Exclude) > 0 {
		return false
	}
	if len(f.Include) == 0 {
		return true
	}
	for _, g := range f.Include {
		if g.MatchesAll() {
			return true
		}
	}
	return false
}
