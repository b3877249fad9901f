package timex

import (
	"strconv"
	"strings"
)

// timestampVar is the variable a range function without argument uses.
const timestampVar = "timestamp"

// maxDepth bounds the nesting of parentheses and function calls, so that
// hostile input cannot exhaust the stack.
const maxDepth = 200

// node is an expression tree node. Parentheses leave no node: "(x)" is x.
type node interface {
	isRange() bool
	format(b *strings.Builder)
}

// varNode is $name.
type varNode struct{ name string }

// funcNode is a range function: name or name(arg). arg is nil when the
// function applies to $timestamp.
type funcNode struct {
	name string
	arg  node
}

// toNode is "left to right"; both sides are timestamp expressions.
type toNode struct{ left, right node }

// opNode is "left op dur" with op one of '+', '-', '@'.
type opNode struct {
	left node
	op   byte
	dur  duration
}

func (*varNode) isRange() bool               { return false }
func (*funcNode) isRange() bool              { return true }
func (*toNode) isRange() bool                { return true }
func (n *opNode) isRange() bool              { return n.left.isRange() }
func (n *varNode) format(b *strings.Builder) { b.WriteString("$" + n.name) }

func (n *funcNode) format(b *strings.Builder) {
	b.WriteString(n.name)
	if n.arg != nil {
		b.WriteByte('(')
		n.arg.format(b)
		b.WriteByte(')')
	}
}

func (n *toNode) format(b *strings.Builder) {
	n.left.format(b)
	b.WriteString(" to ")
	n.right.format(b)
}

func (n *opNode) format(b *strings.Builder) {
	if _, ok := n.left.(*toNode); ok {
		b.WriteByte('(')
		n.left.format(b)
		b.WriteByte(')')
	} else {
		n.left.format(b)
	}
	b.WriteByte(' ')
	b.WriteByte(n.op)
	b.WriteByte(' ')
	n.dur.format(b)
}

// walk calls fn for n and every node below it.
func walk(n node, fn func(node)) {
	fn(n)
	switch n := n.(type) {
	case *funcNode:
		if n.arg != nil {
			walk(n.arg, fn)
		}
	case *toNode:
		walk(n.left, fn)
		walk(n.right, fn)
	case *opNode:
		walk(n.left, fn)
	}
}

// parser is a recursive-descent parser over a lazily read token stream.
// Errors are raised by panicking with a *SyntaxError, recovered in parse.
type parser struct {
	src   string
	lex   *lexer
	tok   token // current token
	depth int
}

// parse parses src into a tree or returns a *SyntaxError.
func parse(src string) (root node, err error) {
	p := &parser{src: src, lex: newLexer(src)}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*SyntaxError)
			if !ok {
				panic(r)
			}
			root, err = nil, se
		}
	}()
	p.advance()
	if p.tok.kind == tokEOF {
		p.fail(p.tok, "empty expression")
	}
	root = p.expr(false)
	if p.tok.kind != tokEOF {
		p.unexpected()
	}
	return root, nil
}

// advance reads the next token.
func (p *parser) advance() {
	t, err := p.lex.next()
	if err != nil {
		panic(err)
	}
	p.tok = t
}

// fail raises a parse error at token t.
func (p *parser) fail(t token, msg string) {
	panic(&SyntaxError{Expr: p.src, Line: t.line, Pos: t.col, Msg: msg})
}

// unexpected raises a parse error about the current token.
func (p *parser) unexpected() {
	if p.tok.kind == tokEOF {
		p.fail(p.tok, "unexpected end of expression")
	}
	p.fail(p.tok, "unexpected "+p.tok.describe()+" at "+position(p.tok.line, p.tok.col))
}

// expr parses "chain [to chain]". tsOnly is set where only a timestamp
// expression is allowed (function arguments, operands of to).
func (p *parser) expr(tsOnly bool) node {
	left := p.chain(tsOnly)
	if p.tok.kind != tokTo {
		return left
	}
	at := p.tok
	switch {
	case tsOnly:
		p.fail(at, `unexpected "to" at `+position(at.line, at.col)+": a timestamp expression is required here")
	case left.isRange():
		p.fail(at, `unexpected "to" at `+position(at.line, at.col)+": its left operand is a range, not a timestamp")
	}
	p.advance()
	right := p.chain(true)
	if p.tok.kind == tokTo {
		p.fail(p.tok, `unexpected "to" at `+position(p.tok.line, p.tok.col)+`: "to" cannot be chained`)
	}
	return &toNode{left: left, right: right}
}

// chain parses "primary (op duration)*".
func (p *parser) chain(tsOnly bool) node {
	n := p.primary(tsOnly)
	for {
		var op byte
		switch p.tok.kind {
		case tokPlus:
			op = '+'
		case tokMinus:
			op = '-'
		case tokAt:
			op = '@'
		default:
			return n
		}
		p.advance()
		d, ambigAt := p.duration()
		if d.hasAmbig {
			switch n.(type) {
			case *toNode, *funcNode:
			default:
				p.fail(ambigAt, "number "+ambigAt.text+" at "+position(ambigAt.line, ambigAt.col)+
					" has no unit: a unitless number applies only directly to \"a to b\" or a range function")
			}
		}
		n = &opNode{left: n, op: op, dur: d}
	}
}

// primary parses a variable, a parenthesized expression or a range
// function.
func (p *parser) primary(tsOnly bool) node {
	switch p.tok.kind {
	case tokDollar:
		p.advance()
		switch p.tok.kind {
		case tokIdent:
			n := &varNode{name: p.tok.text}
			p.advance()
			return n
		case tokUnit, tokTo:
			p.fail(p.tok, strconv.Quote(p.tok.text)+" at "+position(p.tok.line, p.tok.col)+
				" is a reserved word and cannot be a variable name")
		}
		p.unexpected()
	case tokLParen:
		p.enter()
		p.advance()
		n := p.expr(tsOnly)
		if p.tok.kind != tokRParen {
			p.unexpected()
		}
		p.advance()
		p.depth--
		return n
	case tokIdent:
		if tsOnly {
			p.fail(p.tok, "unexpected range function "+strconv.Quote(p.tok.text)+" at "+
				position(p.tok.line, p.tok.col)+": a timestamp expression is required here")
		}
		n := &funcNode{name: p.tok.text}
		p.advance()
		if p.tok.kind == tokLParen {
			p.enter()
			p.advance()
			n.arg = p.expr(true)
			if p.tok.kind != tokRParen {
				p.unexpected()
			}
			p.advance()
			p.depth--
		}
		return n
	}
	p.unexpected()
	return nil
}

// enter counts one level of nesting.
func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(p.tok, "expression nested too deeply at "+position(p.tok.line, p.tok.col))
	}
}

// duration parses juxtaposed "NUMBER [unit]" parts. It returns the first
// unitless number token, for error reporting.
func (p *parser) duration() (d duration, ambigAt token) {
	if p.tok.kind != tokNumber {
		p.unexpected()
	}
	for p.tok.kind == tokNumber {
		num := p.tok
		count, err := strconv.ParseInt(num.text, 10, 64)
		if err != nil {
			p.fail(num, "number "+num.text+" at "+position(num.line, num.col)+" is too large")
		}
		p.advance()
		var u Unit
		switch p.tok.kind {
		case tokUnit:
			u = p.tok.unit
			p.advance()
		case tokIdent:
			p.fail(p.tok, "unknown unit "+strconv.Quote(p.tok.text)+" at "+position(p.tok.line, p.tok.col)+
				" (units: us, s, sec, m, min, h, hr, d, mo, y, yr)")
		default:
			if !d.hasAmbig {
				ambigAt = num
			}
		}
		if !d.add(u, count) {
			p.fail(num, "duration too large at "+position(num.line, num.col))
		}
	}
	return d, ambigAt
}
