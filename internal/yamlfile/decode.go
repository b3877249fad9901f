package yamlfile

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Decoder decodes nodes into Go values strictly; see Decode.
type Decoder struct {
	// Field, when set, is called for every struct field and map entry
	// the document gives a (non-null) value, with its dotted path
	// ("database.url", "pipeline_handlers.logger") and its key node.
	Field func(path string, key *yaml.Node)
}

// Decode decodes n into the value v points to with a zero Decoder.
func Decode(n *yaml.Node, v any) []*Error { return Decoder{}.Decode(n, v) }

// Decode decodes n into the value v points to and returns every problem.
// A struct is read from a mapping key by key (Mapping, with merge keys):
// its yaml tags name the keys, and a key that names no field is an error
// suggesting the closest one. Lists and string-keyed maps are read element
// by element. A null value leaves the target as it is. Types with an
// UnmarshalYAML method, interfaces and scalars are decoded by yaml.v3; an
// UnmarshalYAML method that returns Join of its problems has each of them
// reported in place, under the value's path.
// Each problem is an *Error with the line of the node at fault and, as
// Key, the path of the value ("database.url", "tags[1]", "" for n itself);
// they are in line order.
func (d Decoder) Decode(n *yaml.Node, v any) []*Error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return []*Error{{Err: fmt.Errorf("yamlfile: Decode needs a non-nil pointer, not %T", v)}}
	}
	var errs []*Error
	d.decode(Resolve(n), rv.Elem(), "", &errs)
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	return errs
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (d Decoder) decode(n *yaml.Node, rv reflect.Value, path string, errs *[]*Error) {
	fail := func(err error) { *errs = append(*errs, &Error{Line: n.Line, Key: path, Err: err}) }
	if IsNull(n) {
		return
	}
	if reflect.PointerTo(rv.Type()).Implements(unmarshalerType) {
		err := n.Decode(rv.Addr().Interface())
		if nested := split(err); nested != nil {
			for _, e := range nested {
				e.Key = join(path, e.Key)
				*errs = append(*errs, e)
			}
			return
		}
		if err != nil {
			fail(decodeError(n, rv.Type(), err))
		}
		return
	}
	switch rv.Kind() {
	case reflect.Pointer:
		elem := reflect.New(rv.Type().Elem())
		before := len(*errs)
		d.decode(n, elem.Elem(), path, errs)
		if len(*errs) == before {
			rv.Set(elem)
		}
		return
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail(fmt.Errorf("must be a mapping, not %s", Describe(n)))
			return
		}
		d.decodeStruct(n, rv, path, errs)
		return
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			break // []byte: yaml.v3 reads binary scalars
		}
		if n.Kind != yaml.SequenceNode {
			fail(fmt.Errorf("must be a list, not %s", Describe(n)))
			return
		}
		s := reflect.MakeSlice(rv.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(Resolve(c), s.Index(i), fmt.Sprintf("%s[%d]", path, i), errs)
		}
		rv.Set(s)
		return
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if n.Kind != yaml.MappingNode {
			fail(fmt.Errorf("must be a mapping, not %s", Describe(n)))
			return
		}
		fields, ferrs := Mapping(n, Keys{})
		d.keyErrors(ferrs, path, errs)
		m := reflect.MakeMapWithSize(rv.Type(), len(fields))
		for _, f := range fields {
			p := join(path, f.Name)
			if d.Field != nil && !IsNull(f.Value) {
				d.Field(p, f.Key)
			}
			e := reflect.New(rv.Type().Elem()).Elem()
			d.decode(f.Value, e, p, errs)
			m.SetMapIndex(reflect.ValueOf(f.Name).Convert(rv.Type().Key()), e)
		}
		rv.Set(m)
		return
	case reflect.Interface:
	default:
		if n.Kind != yaml.ScalarNode {
			fail(fmt.Errorf("must be %s, not %s", want(rv.Type()), Describe(n)))
			return
		}
	}
	if err := n.Decode(rv.Addr().Interface()); err != nil {
		fail(decodeError(n, rv.Type(), err))
	}
}

// decodeStruct reads the mapping n into the struct rv.
func (d Decoder) decodeStruct(n *yaml.Node, rv reflect.Value, path string, errs *[]*Error) {
	t := rv.Type()
	index := map[string]int{}
	var known []string
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || tag == "" || tag == "-" {
			continue
		}
		index[tag] = i
		known = append(known, tag)
	}
	fields, ferrs := Mapping(n, Strict(known...))
	d.keyErrors(ferrs, path, errs)
	for _, f := range fields {
		p := join(path, f.Name)
		if d.Field != nil && !IsNull(f.Value) {
			d.Field(p, f.Key)
		}
		d.decode(f.Value, rv.Field(index[f.Name]), p, errs)
	}
}

// keyErrors adds the problems of Mapping, their keys under path.
func (d Decoder) keyErrors(ferrs []*Error, path string, errs *[]*Error) {
	for _, e := range ferrs {
		if e.Key != "" {
			e.Key = join(path, e.Key)
		} else {
			e.Key = path
		}
		*errs = append(*errs, e)
	}
}

// decodeError says why n could not be decoded into a value of type t.
// yaml.v3's type errors carry their own position in their text; the
// message is rebuilt from the node instead. Other errors (those of
// UnmarshalYAML methods) are kept.
func decodeError(n *yaml.Node, t reflect.Type, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	if n.ShortTag() == "!!int" && strings.HasSuffix(want(t), "integer") {
		return fmt.Errorf("integer %s out of range for %s", n.Value, t)
	}
	return fmt.Errorf("must be %s, not %s", want(t), Describe(n))
}

// want names what a value of type t is written as.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a valid " + t.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	if key == "" {
		return path
	}
	return path + "." + key
}

// DecodeDuration reads a time span from a number of seconds (10, 0.5) or a
// Go duration string ("30s", "5m"): the form of every duration of the
// configuration files, for their UnmarshalYAML methods.
func DecodeDuration(n *yaml.Node) (time.Duration, error) {
	const form = "want seconds or a duration like 30s, 5m"
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("must be a number of seconds or a duration like 30s, not %s", Describe(n))
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		var secs float64
		if err := n.Decode(&secs); err != nil || math.IsNaN(secs) || math.Abs(secs) > maxSeconds {
			return 0, fmt.Errorf("invalid duration %s (%s)", n.Value, form)
		}
		return time.Duration(secs * float64(time.Second)), nil
	case "!!str":
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q (%s)", n.Value, form)
		}
		return d, nil
	}
	return 0, fmt.Errorf("invalid duration %q (%s)", n.Value, form)
}

// maxSeconds is the longest time.Duration in seconds.
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))
