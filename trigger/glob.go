package trigger

import (
	"fmt"
	"regexp"
	"strings"
)

// glob is a compiled event-type pattern with the semantics of Python's
// fnmatch on POSIX: "*" matches any run of characters (dots included), "?"
// exactly one character, "[abc]", "[a-c]" and "[!a-c]" are classes; every
// other character is literal (there is no escape character). Matching is
// case-sensitive and anchored at both ends. A pattern without metacharacters
// is compared as a plain string, "prefix*" and "*suffix" with strings
// functions; the rest is translated to a regexp.
type glob struct {
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

// compileGlob translates pattern into an anchored regular expression,
// following fnmatch.translate: an unterminated "[" is a literal, a "]"
// right after "[" or "[!" belongs to the class, "-" at either end of a
// class is literal. A reversed range ("[z-a]") is an error, as it is for
// Python's re module.
func compileGlob(pattern string) (glob, error) {
	if !strings.ContainsAny(pattern, "*?[") {
		return glob{pattern: pattern, kind: globLiteral}, nil
	}
	if strings.Trim(pattern, "*") == "" {
		return glob{pattern: pattern, kind: globAny}, nil
	}
	if i := strings.IndexAny(pattern, "*?["); pattern[i] == '*' {
		rest := strings.TrimLeft(pattern[i:], "*")
		if rest == "" {
			return glob{pattern: pattern, kind: globPrefix, lit: pattern[:i]}, nil
		}
		if i == 0 && !strings.ContainsAny(rest, "*?[") {
			return glob{pattern: pattern, kind: globSuffix, lit: rest}, nil
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
				return glob{}, fmt.Errorf("pattern %q: %w", pattern, err)
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
		return glob{}, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return glob{pattern: pattern, kind: globRegexp, re: re}, nil
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

// match reports whether s matches the pattern.
func (g glob) match(s string) bool {
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
