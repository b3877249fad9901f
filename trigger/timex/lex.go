package timex

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// tokKind is the kind of a token.
type tokKind int

const (
	tokEOF tokKind = iota + 1
	tokNumber
	tokPlus
	tokMinus
	tokAt
	tokDollar
	tokLParen
	tokRParen
	tokIdent
	tokTo
	tokUnit
)

// token is one lexeme with its position.
type token struct {
	kind tokKind
	text string
	unit Unit // tokUnit
	line int  // 1-based
	col  int  // 1-based, in characters
}

// describe renders the token for error messages.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokNumber:
		return "number " + t.text
	case tokIdent:
		return "identifier " + strconv.Quote(t.text)
	case tokUnit:
		return "unit " + strconv.Quote(t.text)
	case tokTo:
		return `"to"`
	}
	return strconv.Quote(t.text)
}

// unitWords are the reserved unit keywords.
var unitWords = map[string]Unit{
	"us":  Microsecond,
	"s":   Second,
	"sec": Second,
	"m":   Minute,
	"min": Minute,
	"h":   Hour,
	"hr":  Hour,
	"d":   Day,
	"mo":  Month,
	"y":   Year,
	"yr":  Year,
}

// lexer produces tokens on demand, so that a grammar error before a bad
// character is reported as such (as the original does).
type lexer struct {
	src  string
	off  int // byte offset of the next character
	line int
	col  int // column of the next character
}

func newLexer(src string) *lexer {
	return &lexer{src: src, line: 1, col: 1}
}

// next returns the next token or a lexical *SyntaxError.
func (l *lexer) next() (token, error) {
	for l.off < len(l.src) {
		switch l.src[l.off] {
		case ' ', '\t':
			l.off++
			l.col++
			continue
		case '\n':
			l.off++
			l.line++
			l.col = 1
			continue
		}
		break
	}
	tok := token{line: l.line, col: l.col}
	if l.off >= len(l.src) {
		tok.kind = tokEOF
		return tok, nil
	}
	c := l.src[l.off]
	if k := punctuation(c); k != 0 {
		tok.kind, tok.text = k, l.src[l.off:l.off+1]
		l.off++
		l.col++
		return tok, nil
	}
	switch {
	case isDigit(c):
		start := l.off
		for l.off < len(l.src) && isDigit(l.src[l.off]) {
			l.off++
		}
		tok.kind, tok.text = tokNumber, l.src[start:l.off]
		l.col += l.off - start
		return tok, nil
	case isIdentStart(c):
		start := l.off
		for l.off < len(l.src) && (isIdentStart(l.src[l.off]) || isDigit(l.src[l.off])) {
			l.off++
		}
		tok.text = l.src[start:l.off]
		l.col += l.off - start
		switch u, ok := unitWords[tok.text]; {
		case tok.text == "to":
			tok.kind = tokTo
		case ok:
			tok.kind, tok.unit = tokUnit, u
		default:
			tok.kind = tokIdent
		}
		return tok, nil
	}
	r, size := utf8.DecodeRuneInString(l.src[l.off:])
	what := strconv.QuoteRune(r)
	if r == utf8.RuneError && size == 1 {
		what = fmt.Sprintf("byte 0x%02x (invalid UTF-8)", c)
	} else {
		what = "character " + what
	}
	return tok, &SyntaxError{
		Expr:    l.src,
		Line:    tok.line,
		Pos:     tok.col,
		Msg:     "unexpected " + what + " at " + position(tok.line, tok.col),
		Lexical: true,
	}
}

// position renders a position for messages: "column 3", or "line 2, column
// 3" in multi-line expressions.
func position(line, col int) string {
	if line == 1 {
		return "column " + strconv.Itoa(col)
	}
	return "line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col)
}

// punctuation returns the kind of a one-character token, or zero.
func punctuation(c byte) tokKind {
	switch c {
	case '+':
		return tokPlus
	case '-':
		return tokMinus
	case '@':
		return tokAt
	case '$':
		return tokDollar
	case '(':
		return tokLParen
	case ')':
		return tokRParen
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
