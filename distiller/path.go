package distiller

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path is a compiled field path in the jsonpath-rw dialect that
// event_definitions.yaml files use. A Path is immutable and safe for
// concurrent use.
//
// Grammar (as jsonpath-rw 1.4):
//
//	name, 'quoted.name', "quoted.name"   a key of an object (in quotes any character; \ escapes the next)
//	a,b                                  several keys, matched in the order written
//	*                                    every value of an object (in sorted key order)
//	$                                    the document root
//	`this`                               the current value
//	p.q                                  q applied to every match of p
//	p..q                                 q applied to every match of p and to everything below it
//	p[n], p[-n]                          list element n (negative counts from the end)
//	p[*], p[a:b]                         list elements (a non-list is treated as a one-element list)
//	p[name], p['quoted']                 keys, as p.name
//	p|q                                  the matches of p, then those of q
//	p where q                            the matches of p below which q matches
//	( p )                                grouping
//
// Operator precedence, loosest first, is "..", ".", "|", "&", "where"
// (so "a.b|c.d" reads "a.(b|c).d"; put unions in parentheses). Brackets
// bind tightest. "&" parses but is rejected, as jsonpath-rw never
// implemented it.
type Path struct {
	src  string
	expr pathExpr
	// simple holds, when the path is plain chains of keys (or a union of
	// them, from a list of fields), the chains in order: First then looks
	// them up directly without the general machinery or allocations.
	simple [][]string
	// simplePaths are the full match paths of the chains in simple.
	simplePaths []string
}

// PathError reports a path that does not compile.
type PathError struct {
	Path string
	Pos  int // 1-based column of the offending character or token
	Msg  string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("parse error in JSONPath %q at column %d: %s", e.Path, e.Pos, e.Msg)
}

// Match is one value a path found, with its full path written the way
// jsonpath-rw writes it for trait plugins: keys joined by dots without
// quotes, list indexes as ".[n]" (payload.fixed_ips.[0].address). The
// document root contributes nothing to the path.
type Match struct {
	Path  string
	Value any
}

// ParsePath compiles a path.
func ParsePath(src string) (*Path, error) {
	p := &parser{src: src}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if len(p.toks) == 1 { // only EOF
		return nil, &PathError{Path: src, Pos: 1, Msg: "empty path"}
	}
	expr, err := p.parseExpr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errAt(t, "unexpected "+t.describe())
	}
	return newPath(src, expr), nil
}

// unionPaths returns the union of paths, whose matches come in list order.
func unionPaths(paths []*Path) *Path {
	if len(paths) == 1 {
		return paths[0]
	}
	srcs := make([]string, len(paths))
	expr := paths[0].expr
	for i, p := range paths {
		srcs[i] = "(" + p.src + ")"
		if i > 0 {
			expr = &unionExpr{l: expr, r: p.expr}
		}
	}
	return newPath(strings.Join(srcs, "|"), expr)
}

func newPath(src string, expr pathExpr) *Path {
	p := &Path{src: src, expr: expr, simple: simpleChains(expr)}
	for _, c := range p.simple {
		p.simplePaths = append(p.simplePaths, strings.Join(c, "."))
	}
	return p
}

// String returns the path's source text.
func (p *Path) String() string { return p.src }

// Matches returns every match of the path in doc, null values included, in
// path order. doc is a decoded JSON value (map[string]any, []any, string,
// json.Number, float64, bool or nil).
func (p *Path) Matches(doc any) []Match {
	var out []Match
	e := &evaluator{root: doc, paths: true}
	p.expr.find(e, datum{v: doc}, func(d datum) bool {
		out = append(out, Match{Path: d.p.String(), Value: d.v})
		return true
	})
	return out
}

// nonNullMatches returns the matches whose value is not null: what trait
// plugins receive.
func (p *Path) nonNullMatches(doc any) []Match {
	if p.simple == nil {
		all := p.Matches(doc)
		out := all[:0]
		for _, m := range all {
			if m.Value != nil {
				out = append(out, m)
			}
		}
		return out
	}
	var out []Match
	for i, chain := range p.simple {
		if v := lookupChain(doc, chain); v != nil {
			out = append(out, Match{Path: p.simplePaths[i], Value: v})
		}
	}
	return out
}

// First returns the first match of the path in doc whose value is not null.
func (p *Path) First(doc any) (any, bool) {
	if p.simple != nil {
		for _, chain := range p.simple {
			if v := lookupChain(doc, chain); v != nil {
				return v, true
			}
		}
		return nil, false
	}
	var found any
	e := &evaluator{root: doc}
	p.expr.find(e, datum{v: doc}, func(d datum) bool {
		if d.v == nil {
			return true
		}
		found = d.v
		return false
	})
	return found, found != nil
}

// lookupChain follows a chain of keys through nested objects; nil when a
// key is missing or a value on the way is not an object.
func lookupChain(v any, chain []string) any {
	for _, k := range chain {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[k]; !ok {
			return nil
		}
	}
	return v
}

// simpleChains returns, for a path made only of keys, "." and "|" (and an
// optional leading "$"), the key chains it looks up, in match order; nil
// for any other path.
func simpleChains(x pathExpr) [][]string {
	switch x := x.(type) {
	case *fieldsExpr:
		if x.any {
			return nil
		}
		out := make([][]string, len(x.names))
		for i, n := range x.names {
			out[i] = []string{n}
		}
		return out
	case *childExpr:
		r := simpleChains(x.r)
		if _, ok := x.l.(rootExpr); ok || r == nil {
			return r
		}
		l := simpleChains(x.l)
		if l == nil || len(l)*len(r) > 64 {
			return nil
		}
		var out [][]string
		for _, a := range l {
			for _, b := range r {
				out = append(out, append(slices.Clip(a), b...))
			}
		}
		return out
	case *unionExpr:
		l, r := simpleChains(x.l), simpleChains(x.r)
		if l == nil || r == nil {
			return nil
		}
		return append(l, r...)
	}
	return nil
}

// ---- evaluation ----

// step is one element of a match's full path; the chain runs to the root.
type step struct {
	parent *step
	key    string
	idx    int
	isIdx  bool
}

func (s *step) String() string {
	if s == nil {
		return ""
	}
	var parts []string
	for ; s != nil; s = s.parent {
		if s.isIdx {
			parts = append(parts, "["+strconv.Itoa(s.idx)+"]")
		} else {
			parts = append(parts, s.key)
		}
	}
	slices.Reverse(parts)
	return strings.Join(parts, ".")
}

type datum struct {
	v any
	p *step
}

type evaluator struct {
	root  any
	paths bool // build full paths (only trait plugins need them)
}

func (e *evaluator) key(d datum, k string, v any) datum {
	if !e.paths {
		return datum{v: v}
	}
	return datum{v: v, p: &step{parent: d.p, key: k}}
}

func (e *evaluator) index(p *step, i int, v any) datum {
	if !e.paths {
		return datum{v: v}
	}
	return datum{v: v, p: &step{parent: p, idx: i, isIdx: true}}
}

// pathExpr finds matches below d and passes them to yield in order. It
// returns false when yield asked to stop.
type pathExpr interface {
	find(e *evaluator, d datum, yield func(datum) bool) bool
}

type rootExpr struct{}

func (rootExpr) find(e *evaluator, _ datum, yield func(datum) bool) bool {
	return yield(datum{v: e.root})
}

type thisExpr struct{}

func (thisExpr) find(_ *evaluator, d datum, yield func(datum) bool) bool { return yield(d) }

type fieldsExpr struct {
	names []string
	any   bool
}

func (x *fieldsExpr) find(e *evaluator, d datum, yield func(datum) bool) bool {
	m, ok := d.v.(map[string]any)
	if !ok {
		return true
	}
	if x.any {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !yield(e.key(d, k, m[k])) {
				return false
			}
		}
		return true
	}
	for _, k := range x.names {
		if v, ok := m[k]; ok {
			if !yield(e.key(d, k, v)) {
				return false
			}
		}
	}
	return true
}

type indexExpr struct{ i int }

func (x *indexExpr) find(e *evaluator, d datum, yield func(datum) bool) bool {
	switch v := d.v.(type) {
	case []any:
		i := x.i
		if i < 0 {
			i += len(v)
		}
		if i < 0 || i >= len(v) {
			return true
		}
		return yield(e.index(d.p, x.i, v[i]))
	case string: // a character, as Python indexes strings
		n := utf8.RuneCountInString(v)
		i := x.i
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return true
		}
		for j, r := range []rune(v) {
			if j == i {
				return yield(e.index(d.p, x.i, string(r)))
			}
		}
	}
	return true
}

type sliceExpr struct {
	start, end       int
	hasStart, hasEnd bool
}

func (x *sliceExpr) find(e *evaluator, d datum, yield func(datum) bool) bool {
	var list []any
	switch v := d.v.(type) {
	case []any:
		list = v
	case map[string]any, string, bool:
		// jsonpath-rw treats an object, a string or an integer as a
		// one-element list.
		list = []any{v}
	case json.Number:
		if !isIntLiteral(string(v)) {
			return true
		}
		list = []any{v}
	default:
		return true
	}
	n := len(list)
	lo, hi := 0, n
	if x.hasStart {
		lo = clampSlice(x.start, n)
	}
	if x.hasEnd {
		hi = clampSlice(x.end, n)
	}
	for i := lo; i < hi; i++ {
		if !yield(e.index(d.p, i, list[i])) {
			return false
		}
	}
	return true
}

// clampSlice applies Python's slice bound rules.
func clampSlice(i, n int) int {
	if i < 0 {
		i += n
		if i < 0 {
			i = 0
		}
	}
	if i > n {
		i = n
	}
	return i
}

type childExpr struct{ l, r pathExpr }

func (x *childExpr) find(e *evaluator, d datum, yield func(datum) bool) bool {
	return x.l.find(e, d, func(sub datum) bool { return x.r.find(e, sub, yield) })
}

type descExpr struct{ l, r pathExpr }

func (x *descExpr) find(e *evaluator, d datum, yield func(datum) bool) bool {
	var walk func(sub datum) bool
	walk = func(sub datum) bool {
		if !x.r.find(e, sub, yield) {
			return false
		}
		switch v := sub.v.(type) {
		case []any:
			for i, c := range v {
				if !walk(e.index(sub.p, i, c)) {
					return false
				}
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				if !walk(e.key(sub, k, v[k])) {
					return false
				}
			}
		}
		return true
	}
	return x.l.find(e, d, walk)
}

type whereExpr struct{ l, r pathExpr }

func (x *whereExpr) find(e *evaluator, d datum, yield func(datum) bool) bool {
	return x.l.find(e, d, func(sub datum) bool {
		found := false
		x.r.find(e, sub, func(datum) bool { found = true; return false })
		if found {
			return yield(sub)
		}
		return true
	})
}

type unionExpr struct{ l, r pathExpr }

func (x *unionExpr) find(e *evaluator, d datum, yield func(datum) bool) bool {
	return x.l.find(e, d, yield) && x.r.find(e, d, yield)
}

// ---- lexer and parser ----

type tokKind int

const (
	tokEOF tokKind = iota + 1
	tokID
	tokNumber
	tokDoubleDot
	tokWhere
	tokNamed // `name`
	tokPunct // one of * . [ ] ( ) $ , : | &
)

type token struct {
	kind tokKind
	text string // ID, named operator or punctuation
	num  int
	pos  int // 1-based column
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of path"
	case tokID:
		return fmt.Sprintf("name %q", t.text)
	case tokNumber:
		return fmt.Sprintf("number %d", t.num)
	case tokDoubleDot:
		return `".."`
	case tokWhere:
		return `"where"`
	case tokNamed:
		return fmt.Sprintf("operator `%s`", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) errAt(t token, msg string) error {
	return &PathError{Path: p.src, Pos: t.pos, Msg: msg}
}

func isIDStart(c byte) bool {
	return c == '_' || c == '@' || c == '#' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIDChar(c byte) bool {
	return c == '_' || c == '@' || c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		pos := i + 1
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '.' && i+1 < len(s) && s[i+1] == '.':
			p.toks = append(p.toks, token{kind: tokDoubleDot, text: "..", pos: pos})
			i += 2
		case strings.IndexByte("*.[]()$,:|&", c) >= 0:
			p.toks = append(p.toks, token{kind: tokPunct, text: string(c), pos: pos})
			i++
		case c == '\'' || c == '"' || c == '`':
			// A backslash takes the next character literally.
			var text strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				text.WriteByte(s[j])
			}
			if j >= len(s) {
				return &PathError{Path: s, Pos: pos, Msg: "unterminated quoted name"}
			}
			kind := tokID
			if c == '`' {
				kind = tokNamed
			}
			p.toks = append(p.toks, token{kind: kind, text: text.String(), pos: pos})
			i = j + 1
		case isIDStart(c):
			j := i + 1
			for j < len(s) && isIDChar(s[j]) {
				j++
			}
			word := s[i:j]
			kind := tokID
			if word == "where" {
				kind = tokWhere
			}
			p.toks = append(p.toks, token{kind: kind, text: word, pos: pos})
			i = j
		case isDigit(c) || (c == '-' && i+1 < len(s) && isDigit(s[i+1])):
			j := i + 1
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			n, err := strconv.Atoi(s[i:j])
			if err != nil {
				return &PathError{Path: s, Pos: pos, Msg: "number out of range"}
			}
			p.toks = append(p.toks, token{kind: tokNumber, num: n, text: s[i:j], pos: pos})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return &PathError{Path: s, Pos: pos, Msg: fmt.Sprintf("unexpected character %q", r)}
		}
	}
	p.toks = append(p.toks, token{kind: tokEOF, pos: len(s) + 1})
	return nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (t token) is(punct string) bool { return t.kind == tokPunct && t.text == punct }

// binaryPrec returns the precedence of a binary operator token (higher
// binds tighter), or 0.
func binaryPrec(t token) int {
	switch {
	case t.kind == tokDoubleDot:
		return 1
	case t.is("."):
		return 2
	case t.is("|"):
		return 3
	case t.is("&"):
		return 4
	case t.kind == tokWhere:
		return 5
	}
	return 0
}

// parseExpr parses operators of precedence above minPrec, left-associative.
func (p *parser) parseExpr(minPrec int) (pathExpr, error) {
	left, err := p.parsePostfix()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		prec := binaryPrec(op)
		if prec == 0 || prec <= minPrec {
			return left, nil
		}
		p.next()
		right, err := p.parseExpr(prec)
		if err != nil {
			return nil, err
		}
		switch {
		case op.kind == tokDoubleDot:
			left = &descExpr{l: left, r: right}
		case op.is("."):
			left = &childExpr{l: left, r: right}
		case op.is("|"):
			left = &unionExpr{l: left, r: right}
		case op.is("&"):
			return nil, p.errAt(op, `"&" (intersection) is not supported`)
		default:
			left = &whereExpr{l: left, r: right}
		}
	}
}

func (p *parser) parsePostfix() (pathExpr, error) {
	x, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	for p.peek().is("[") {
		p.next()
		b, err := p.parseBracket()
		if err != nil {
			return nil, err
		}
		x = &childExpr{l: x, r: b}
	}
	return x, nil
}

func (p *parser) parsePrimary() (pathExpr, error) {
	t := p.next()
	switch {
	case t.kind == tokID:
		return p.parseFields(t)
	case t.is("*"):
		return &fieldsExpr{any: true}, nil
	case t.is("$"):
		return rootExpr{}, nil
	case t.kind == tokNamed:
		if t.text == "this" {
			return thisExpr{}, nil
		}
		return nil, p.errAt(t, fmt.Sprintf("unknown named operator `%s`", t.text))
	case t.is("["):
		return p.parseBracket()
	case t.is("("):
		x, err := p.parseExpr(0)
		if err != nil {
			return nil, err
		}
		if c := p.next(); !c.is(")") {
			return nil, p.errAt(c, "expected \")\", found "+c.describe())
		}
		return x, nil
	}
	return nil, p.errAt(t, "unexpected "+t.describe())
}

// parseFields parses "a,b,c" starting with the already read first name.
func (p *parser) parseFields(first token) (*fieldsExpr, error) {
	f := &fieldsExpr{names: []string{first.text}}
	for p.peek().is(",") {
		p.next()
		t := p.next()
		if t.kind != tokID {
			return nil, p.errAt(t, "expected a name after \",\", found "+t.describe())
		}
		f.names = append(f.names, t.text)
	}
	return f, nil
}

// parseBracket parses what follows "[": an index, a slice or names.
func (p *parser) parseBracket() (pathExpr, error) {
	var x pathExpr
	t := p.next()
	switch {
	case t.is("*"):
		x = &sliceExpr{}
	case t.kind == tokID:
		f, err := p.parseFields(t)
		if err != nil {
			return nil, err
		}
		x = f
	case t.kind == tokNumber && !p.peek().is(":"):
		x = &indexExpr{i: t.num}
	case t.kind == tokNumber || t.is(":"):
		s := &sliceExpr{}
		if t.kind == tokNumber {
			s.start, s.hasStart = t.num, true
			p.next() // ":"
		}
		if n := p.peek(); n.kind == tokNumber {
			p.next()
			s.end, s.hasEnd = n.num, true
		}
		x = s
	default:
		return nil, p.errAt(t, "unexpected "+t.describe()+" after \"[\"")
	}
	if c := p.next(); !c.is("]") {
		return nil, p.errAt(c, "expected \"]\", found "+c.describe())
	}
	return x, nil
}

func isIntLiteral(s string) bool { return !strings.ContainsAny(s, ".eE") }
