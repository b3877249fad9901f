package stream

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseTraitFilter reads a trait filter NAME[:TYPE]=VALUE, as the HTTP
// API's trait parameter and the console's trait fields are written. TYPE
// is string (the default; text is a synonym), int, float or datetime; a
// filter matches only a value of its own type.
func ParseTraitFilter(spec string) (name string, v Value, err error) {
	key, raw, ok := strings.Cut(spec, "=")
	if !ok || key == "" {
		return "", Value{}, fmt.Errorf("want NAME[:TYPE]=VALUE")
	}
	name, typ, _ := strings.Cut(key, ":")
	switch typ {
	case "", "string", "text":
		return name, String(raw), nil
	case "int":
		i, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return "", Value{}, fmt.Errorf("%q is not an integer", raw)
		}
		return name, Int(i), nil
	case "float":
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return "", Value{}, fmt.Errorf("%q is not a number", raw)
		}
		return name, Float(f), nil
	case "datetime":
		t, err := ParseTime(raw)
		if err != nil {
			return "", Value{}, err
		}
		return name, Datetime(t), nil
	}
	return "", Value{}, fmt.Errorf("unknown type %q (string, int, float, datetime)", typ)
}
