package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
)

// errUnexpectedEnd ends a value that the body cuts short.
var errUnexpectedEnd = errors.New("unexpected end of JSON input")

// splitArray splits a JSON array (body starts with '[') into its elements
// and checks each with json.Valid: one pass over the bytes to find where
// the elements end, one validating pass per element, and no copies (the
// items are sub-slices of body). It stops after max+1 elements, so that
// the caller can refuse too many without reading them all.
func splitArray(body []byte, max int) ([]json.RawMessage, error) {
	var items []json.RawMessage
	i := skipSpace(body, 1)
	if i < len(body) && body[i] == ']' {
		if j := skipSpace(body, i+1); j < len(body) {
			return nil, fmt.Errorf("data after the array at offset %d", j)
		}
		return items, nil
	}
	for {
		if i >= len(body) {
			return nil, errUnexpectedEnd
		}
		end, err := valueEnd(body, i)
		if err != nil {
			return nil, err
		}
		if !json.Valid(body[i:end]) {
			return nil, fmt.Errorf("element %d (offset %d) is not valid JSON", len(items)+1, i)
		}
		items = append(items, body[i:end:end])
		if len(items) > max {
			return items, nil
		}
		i = skipSpace(body, end)
		if i >= len(body) {
			return nil, errUnexpectedEnd
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case ']':
			if j := skipSpace(body, i+1); j < len(body) {
				return nil, fmt.Errorf("data after the array at offset %d", j)
			}
			return items, nil
		default:
			return nil, fmt.Errorf("want , or ] after element %d, found %q at offset %d", len(items), body[i], i)
		}
	}
}

// splitSequence splits a sequence of JSON values (one object, JSON lines,
// or values one after the other) as splitArray does. A malformed value is
// reported as an *itemError.
func splitSequence(body []byte, max int) ([]json.RawMessage, error) {
	var items []json.RawMessage
	for i := skipSpace(body, 0); i < len(body); i = skipSpace(body, i) {
		end, err := valueEnd(body, i)
		if err == nil && !json.Valid(body[i:end]) {
			err = errors.New("not valid JSON")
		}
		if err != nil {
			return nil, &itemError{n: len(items) + 1, offset: i, err: err}
		}
		items = append(items, body[i:end:end])
		if len(items) > max {
			break
		}
		i = end
	}
	return items, nil
}

// itemError is a malformed item of a sequence.
type itemError struct {
	n, offset int
	err       error
}

func (e *itemError) Error() string {
	return fmt.Sprintf("item %d (offset %d): %v", e.n, e.offset, e.err)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// valueEnd returns the offset just after the JSON value starting at
// b[i]: an object or array (nesting counted, strings skipped), a string,
// or a literal (up to the next delimiter). It checks only what it needs
// to find the end; json.Valid checks the rest.
func valueEnd(b []byte, i int) (int, error) {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errUnexpectedEnd
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ' ', '\n', '\r', '\t', ',', ']', '}', '{', '[', '"':
			if j == i {
				return 0, fmt.Errorf("unexpected %q at offset %d", b[j], j)
			}
			return j, nil
		}
		j++
	}
	return j, nil
}

// stringEnd returns the offset just after the string starting at b[i]
// (a '"').
func stringEnd(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errUnexpectedEnd
}
