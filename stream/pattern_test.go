package stream

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The expectations below are those of Python's fnmatch.fnmatchcase.
func TestGlobMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pattern string
		input   string
		want    bool
	}{
		{name: "star crosses dots", pattern: "compute.*", input: "compute.instance.create.end", want: true},
		{name: "star matches empty", pattern: "compute.*", input: "compute.", want: true},
		{name: "dot is literal", pattern: "compute.*", input: "compute", want: false},
		{name: "lone star matches empty", pattern: "*", input: "", want: true},
		{name: "double star", pattern: "**", input: "abc", want: true},
		{name: "prefix", pattern: "compute.**", input: "compute.x", want: true},
		{name: "prefix no match", pattern: "compute.*", input: "image.x", want: false},
		{name: "suffix", pattern: "**.end", input: "a.end", want: true},
		{name: "suffix no match", pattern: "*.end", input: "a.start", want: false},
		{name: "suffix needs its text", pattern: "*.end", input: "end", want: false},
		{name: "star prefix", pattern: "*.end", input: "compute.instance.create.end", want: true},
		{name: "anchored at end", pattern: "*.end", input: "compute.instance.create.end\n", want: false},
		{name: "stars in the middle", pattern: "a*b*c", input: "aXbYc", want: true},
		{name: "stars in the middle no match", pattern: "a*b*c", input: "aXbY", want: false},
		{name: "star matches newline", pattern: "*", input: "a\nb", want: true},
		{name: "question needs one char", pattern: "?", input: "", want: false},
		{name: "question one char", pattern: "?", input: "a", want: true},
		{name: "question matches dot", pattern: "a?c", input: "a.c", want: true},
		{name: "question matches newline", pattern: "?", input: "\n", want: true},
		{name: "question not two", pattern: "a?c", input: "abbc", want: false},
		{name: "question is one rune", pattern: "a?c", input: "aéc", want: true},
		{name: "class member", pattern: "[abc]", input: "b", want: true},
		{name: "class non member", pattern: "[abc]", input: "d", want: false},
		{name: "range", pattern: "[a-c]x", input: "bx", want: true},
		{name: "negated range member", pattern: "[!a-c]x", input: "bx", want: false},
		{name: "negated range non member", pattern: "[!a-c]x", input: "dx", want: true},
		{name: "bracket first in class", pattern: "[]]", input: "]", want: true},
		{name: "bracket first in negated class", pattern: "[!]]", input: "]", want: false},
		{name: "negated bracket class", pattern: "[!]]", input: "a", want: true},
		{name: "bracket then letter", pattern: "[]a]", input: "a", want: true},
		{name: "trailing dash", pattern: "[a-]", input: "-", want: true},
		{name: "leading dash", pattern: "[-a]", input: "-", want: true},
		{name: "range then dash", pattern: "[a-c-e]", input: "-", want: true},
		{name: "range then dash not d", pattern: "[a-c-e]", input: "d", want: false},
		{name: "range then dash e", pattern: "[a-c-e]", input: "e", want: true},
		{name: "caret is literal in class", pattern: "[^a]", input: "^", want: true},
		{name: "caret is not negation", pattern: "[^a]", input: "b", want: false},
		{name: "no posix classes", pattern: "[[:alpha:]]", input: "a", want: false},
		{name: "posix class is literal", pattern: "[[:alpha:]]", input: "[]", want: true},
		{name: "unterminated class is literal", pattern: "[", input: "[", want: true},
		{name: "unterminated class after text", pattern: "a[b", input: "a[b", want: true},
		{name: "unterminated negated class", pattern: "[!", input: "[!", want: true},
		{name: "backslash is literal", pattern: `a\*`, input: `a\xyz`, want: true},
		{name: "backslash in class", pattern: `[\]`, input: `\`, want: true},
		{name: "regexp metacharacters are literal", pattern: "(a)+$^|{1}", input: "(a)+$^|{1}", want: true},
		{name: "plus is literal", pattern: "a+", input: "aa", want: false},
		{name: "case sensitive", pattern: "Compute.*", input: "compute.x", want: false},
		{name: "literal equal", pattern: "compute.instance.exists", input: "compute.instance.exists", want: true},
		{name: "literal is exact", pattern: "compute.instance.exists", input: "compute.instance.exists.verified", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := CompilePattern(tc.pattern)
			if err != nil {
				t.Fatalf("CompilePattern(%q): %v", tc.pattern, err)
			}
			if got := g.Match(tc.input); got != tc.want {
				t.Errorf("glob %q match %q = %v, want %v", tc.pattern, tc.input, got, tc.want)
			}
		})
	}
}

func TestGlobReversedRange(t *testing.T) {
	t.Parallel()
	_, err := CompilePattern("compute.[z-a]")
	if err == nil || !strings.Contains(err.Error(), "bad character range z-a") {
		t.Fatalf(`CompilePattern("compute.[z-a]") error = %v, want a bad character range`, err)
	}
}

func TestGlobKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		want    globKind
	}{
		{pattern: "compute.instance.update", want: globLiteral},
		{pattern: "*", want: globAny},
		{pattern: "**", want: globAny},
		{pattern: "compute.instance.*", want: globPrefix},
		{pattern: "compute.**", want: globPrefix},
		{pattern: "*.end", want: globSuffix},
		{pattern: "**.end", want: globSuffix},
		{pattern: "*.e?d", want: globRegexp},
		{pattern: "compute.*.end", want: globRegexp},
		{pattern: "compute.?*", want: globRegexp},
		{pattern: "[ab]*", want: globRegexp},
	}
	for _, tc := range tests {
		g, err := CompilePattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if g.kind != tc.want {
			t.Errorf("CompilePattern(%q).kind = %d, want %d", tc.pattern, g.kind, tc.want)
		}
	}
}

// fnmatchRef is a direct, backtracking implementation of fnmatch used to
// check the regexp translation.
func fnmatchRef(p, s []rune) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if fnmatchRef(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return len(s) > 0 && fnmatchRef(p[1:], s[1:])
	case '[':
		j := 1
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
			break // literal "["
		}
		if len(s) == 0 {
			return false
		}
		body, neg := p[1:j], false
		if body[0] == '!' {
			body, neg = body[1:], true
		}
		in := false
		for k := 0; k < len(body); k++ {
			if k+2 < len(body) && body[k+1] == '-' {
				if body[k] <= s[0] && s[0] <= body[k+2] {
					in = true
				}
				k += 2
				continue
			}
			if body[k] == s[0] {
				in = true
			}
		}
		return in != neg && fnmatchRef(p[j+1:], s[1:])
	}
	return len(s) > 0 && s[0] == p[0] && fnmatchRef(p[1:], s[1:])
}

// FuzzGlob checks the regexp translation against fnmatchRef.
func FuzzGlob(f *testing.F) {
	f.Add("compute.instance.*", "compute.instance.create.end")
	f.Add("[!]a-c]?x*", "dyxz")
	f.Add("a[b", "a[b")
	f.Add("[a-c-e]*[!.]", "-x.")
	f.Add(`(\[.^$|+{}])`, `(\[.^$|+{}])`)
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 64 || strings.Count(pattern, "*") > 6 {
			return // keep the backtracking reference fast
		}
		g, err := CompilePattern(pattern)
		if err != nil {
			if !strings.Contains(err.Error(), "bad character range") {
				t.Fatalf("CompilePattern(%q): %v", pattern, err)
			}
			return
		}
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return // the fast paths compare bytes, the reference runes
		}
		want := fnmatchRef([]rune(pattern), []rune(s))
		if got := g.Match(s); got != want {
			t.Fatalf("glob %q match %q = %v, reference says %v (regexp %v)", pattern, s, got, want, g.re)
		}
	})
}
