// Package yamlfile reads the YAML files of a configuration (winchester.yaml,
// trigger definitions, pipelines, event definitions) one way:
//
//   - Parse reads exactly one document and bounds the work of walking it:
//     aliases (and merge keys, which are aliases) may not expand the
//     document beyond MaxNodes nodes, and an alias may not refer to a node
//     that contains it, so a hostile file ("billion laughs") fails fast.
//   - Mapping returns the fields of a mapping with merge keys resolved,
//     and reports unknown keys (suggesting the closest known key), keys
//     written twice and keys that are not strings.
//   - Decode decodes a node into a Go value strictly: a struct's unknown
//     keys and every wrongly typed value are reported, each with its line.
//
// Every problem is an *Error carrying the line of the node at fault, taken
// from the yaml.Node; the loaders turn them into their own error types
// (which add the file and what the node belongs to) and report all of them
// at once. A document that is not YAML is an *Error wrapping a
// *SyntaxError.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxNodes bounds the size of a document with its aliases expanded. A file
// of a thousand trigger definitions has a few tens of thousands of nodes.
const MaxNodes = 1 << 18

// Error is a problem at a node of a document.
type Error struct {
	// Line is the 1-based line of the node at fault; 0 when unknown.
	Line int
	// Key is the mapping key at fault ("" when the problem is not a key's).
	Key string
	Err error
}

// Error returns "line N: key: problem", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Join returns the problems as one error (nil for none), for an
// UnmarshalYAML method that decodes with this package: a Decoder that
// meets them reports each one in place instead of one opaque error.
func Join(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// split returns the *Error values err is made of (a single *Error or
// several joined ones), or nil when it holds anything else.
func split(err error) []*Error {
	var e *Error
	if errors.As(err, &e) && e == err {
		return []*Error{e}
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	var out []*Error
	for _, x := range j.Unwrap() {
		xs := split(x)
		if xs == nil {
			return nil
		}
		out = append(out, xs...)
	}
	return out
}

// Unwrap returns the problem.
func (e *Error) Unwrap() error { return e.Err }

// Where is the start of a loader's message about line of file:
// "file:line: ", "file: " when the line is unknown (0), "line N: " when
// the file is, or "".
func Where(file string, line int) string {
	switch {
	case file != "" && line > 0:
		return file + ":" + strconv.Itoa(line) + ": "
	case file != "":
		return file + ": "
	case line > 0:
		return "line " + strconv.Itoa(line) + ": "
	}
	return ""
}

// SyntaxError is a document that the YAML parser rejects.
type SyntaxError struct {
	Msg string // the parser's message, without position
}

// Error returns "invalid YAML: " and the parser's message.
func (e *SyntaxError) Error() string { return "invalid YAML: " + e.Msg }

// ErrTooComplex is wrapped by the error of a document whose aliases expand
// it beyond MaxNodes nodes.
var ErrTooComplex = errors.New("document too complex (aliases expand it beyond the limit)")

// Parse reads data as one YAML document and returns its root node. It
// returns nil for an empty document (nothing but comments, "---" or null).
// A second document, a syntax error, an alias that refers to a node
// containing it and a document too large with its aliases expanded are
// errors.
func Parse(data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, &Error{Line: extra.Line, Err: errors.New("more than one YAML document (a file holds one)")}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if err := checkSize(root); err != nil {
		return nil, err
	}
	root = Resolve(root)
	if IsNull(root) {
		return nil, nil
	}
	return root, nil
}

// syntaxError turns a yaml.v3 parse error into an *Error. yaml.v3 gives
// syntax errors only as text ("yaml: line 3: did not find expected key"),
// so this is the one place that reads a line out of a message.
func syntaxError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, convErr := strconv.Atoi(n); convErr == nil {
				line, msg = l, after
			}
		}
	}
	return &Error{Line: line, Err: &SyntaxError{Msg: msg}}
}

// checkSize walks root with its aliases expanded, failing once more than
// MaxNodes nodes are visited or when an alias is reached again while its
// own target is being walked (an alias inside the node it names).
func checkSize(root *yaml.Node) *Error {
	visits := 0
	inside := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node) *Error
	walk = func(n *yaml.Node) *Error {
		visits++
		if visits > MaxNodes {
			return &Error{Line: n.Line, Err: ErrTooComplex}
		}
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return nil
			}
			if inside[n.Alias] {
				return &Error{Line: n.Line, Err: fmt.Errorf("alias *%s refers to a node that contains it", n.Value)}
			}
			inside[n.Alias] = true
			defer delete(inside, n.Alias)
			return walk(n.Alias)
		}
		for _, c := range n.Content {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}

// Resolve follows aliases to the node they name. Parse has checked that
// they end.
func Resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is null (written null, ~ or nothing).
func IsNull(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Describe names a node's type and value for messages: "a list", "a
// mapping", "the string \"x\"", "the integer 3", "null".
func Describe(n *yaml.Node) string {
	n = Resolve(n)
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "null"
		case "!!timestamp":
			return "the timestamp " + n.Value
		}
		return fmt.Sprintf("a %s value", n.ShortTag())
	}
	return "an unsupported node"
}
