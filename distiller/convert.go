package distiller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/winchester-go/winchester/stream"
)

// TraitType is the type a trait's value is converted to. The names are
// those of event_definitions.yaml.
type TraitType int

// Trait types.
const (
	TypeText TraitType = iota + 1
	TypeInt
	TypeFloat
	TypeDatetime
)

// String returns the type's name in event_definitions.yaml.
func (t TraitType) String() string {
	switch t {
	case TypeText:
		return "text"
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float"
	case TypeDatetime:
		return "datetime"
	}
	return fmt.Sprintf("TraitType(%d)", int(t))
}

// parseTraitType returns the type with the given name ("string" is not one:
// the original accepts only these four).
func parseTraitType(name string) (TraitType, bool) {
	for t := TypeText; t <= TypeDatetime; t++ {
		if t.String() == name {
			return t, true
		}
	}
	return 0, false
}

// errConvert is wrapped by every conversion failure.
var errConvert = errors.New("cannot convert")

// convert turns an extracted value (a decoded JSON value or a plugin's
// result) into a trait value of type t. The caller has already dropped nil
// and, for non-text types, "".
func convert(t TraitType, v any) (stream.Value, error) {
	switch t {
	case TypeText:
		s, err := text(v)
		if err != nil {
			return stream.Value{}, err
		}
		return stream.String(s), nil
	case TypeInt:
		i, err := toInt(v)
		if err != nil {
			return stream.Value{}, err
		}
		return stream.Int(i), nil
	case TypeFloat:
		f, err := toFloat(v)
		if err != nil {
			return stream.Value{}, err
		}
		return stream.Float(f), nil
	case TypeDatetime:
		s, ok := v.(string)
		if !ok {
			return stream.Value{}, fmt.Errorf("%w %s to datetime: not a string", errConvert, describe(v))
		}
		tm, err := stream.ParseTime(s)
		if err != nil {
			return stream.Value{}, fmt.Errorf("%w to datetime: %v", errConvert, err)
		}
		return stream.Datetime(tm), nil
	}
	return stream.Value{}, fmt.Errorf("%w: unknown trait type %d", errConvert, int(t))
}

// text returns the string form of a value: strings as they are, numbers as
// Python writes them (50, 3.14, 1000.0), booleans as True/False (the
// original's str()), objects and lists as compact JSON with sorted keys.
func text(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		if isIntLiteral(string(v)) {
			return string(v), nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return string(v), nil
		}
		return pyFloat(f), nil
	case float64:
		return pyFloat(v), nil
	case float32:
		return pyFloat(float64(v)), nil
	case bool:
		if v {
			return "True", nil
		}
		return "False", nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case fmt.Stringer:
		return v.String(), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("%w %s to text: %v", errConvert, describe(v), err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// pyFloat formats f as Python's repr does: shortest round-trip digits,
// always a decimal point or an exponent, exponent form only below 1e-4 or
// from 1e16.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	// The exponent of the shortest decimal form decides, as in Python.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// toInt converts as Python's int(): integer strings (surrounding blanks
// and a sign allowed), numbers truncated toward zero, booleans as 0/1.
func toInt(v any) (int64, error) {
	switch v := v.(type) {
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w %q to int", errConvert, v)
		}
		return i, nil
	case json.Number:
		if isIntLiteral(string(v)) {
			i, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w %s to int: out of range", errConvert, v)
			}
			return i, nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return 0, fmt.Errorf("%w %s to int", errConvert, v)
		}
		return truncate(f)
	case float64:
		return truncate(v)
	case float32:
		return truncate(float64(v))
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case int32:
		return int64(v), nil
	case uint64:
		if v > math.MaxInt64 {
			return 0, fmt.Errorf("%w %d to int: out of range", errConvert, v)
		}
		return int64(v), nil
	}
	return 0, fmt.Errorf("%w %s to int", errConvert, describe(v))
}

func truncate(f float64) (int64, error) {
	t := math.Trunc(f)
	if math.IsNaN(t) || t < math.MinInt64 || t >= math.MaxInt64 {
		return 0, fmt.Errorf("%w %v to int: out of range", errConvert, f)
	}
	return int64(t), nil
}

// toFloat converts as Python's float(): decimal strings (surrounding blanks
// allowed), numbers, booleans as 0.0/1.0. NaN and infinities are refused:
// they have no place in an event.
func toFloat(v any) (float64, error) {
	var f float64
	switch v := v.(type) {
	case string:
		s := strings.TrimSpace(v)
		var err error
		f, err = strconv.ParseFloat(s, 64)
		if err != nil || strings.ContainsAny(s, "xX_") {
			return 0, fmt.Errorf("%w %q to float", errConvert, v)
		}
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(v), 64); err != nil {
			return 0, fmt.Errorf("%w %s to float: out of range", errConvert, v)
		}
	case float64:
		f = v
	case float32:
		f = float64(v)
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case int32:
		f = float64(v)
	case uint64:
		f = float64(v)
	default:
		return 0, fmt.Errorf("%w %s to float", errConvert, describe(v))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%w %v to float: not a finite number", errConvert, v)
	}
	return f, nil
}

// describe names a value's JSON kind for messages.
func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, float32, int, int64, int32, uint64:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}
