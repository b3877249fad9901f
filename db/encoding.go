package db

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/winchester-go/winchester/stream"
)

// Trait values are stored as one JSON object per event (and per stream for
// distinguishing values) in a typed form, so that typed equality survives
// the database's own JSON comparison (PostgreSQL jsonb compares 42 and 42.0
// as equal numbers; the tags keep them apart):
//
//	{"name": {"s": "text"}}        string
//	{"name": {"i": 42}}            int
//	{"name": {"f": 42.0}}          float
//	{"name": {"d": 1406859023000550}}          datetime, epoch microseconds
//	{"name": {"r": [1406851200000000, 1406937600000000]}}  timerange
//
// Timestamps in columns are epoch microseconds (BIGINT/INTEGER) in both
// drivers, so ordering and equality are exact and identical.

// EncodeValue returns the stored JSON form of one value.
func EncodeValue(v stream.Value) []byte {
	return appendValue(nil, v)
}

func appendValue(b []byte, v stream.Value) []byte {
	switch v.Kind() {
	case stream.KindString:
		b = append(b, `{"s":`...)
		b = appendString(b, v.Text())
	case stream.KindInt:
		b = append(b, `{"i":`...)
		b = strconv.AppendInt(b, v.IntValue(), 10)
	case stream.KindFloat:
		b = append(b, `{"f":`...)
		b = append(b, stream.FormatFloat(v.FloatValue())...)
	case stream.KindDatetime:
		b = append(b, `{"d":`...)
		b = strconv.AppendInt(b, v.Time().UnixMicro(), 10)
	case stream.KindTimeRange:
		beg, end := v.Range()
		b = append(b, `{"r":[`...)
		b = strconv.AppendInt(b, beg.UnixMicro(), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, end.UnixMicro(), 10)
		b = append(b, ']')
	default:
		b = append(b, `{"n":null`...)
	}
	return append(b, '}')
}

// EncodeTraits returns the stored JSON object of a trait map (keys sorted).
// It is on the ingest path of every event, so it appends bytes directly
// rather than going through encoding/json.
func EncodeTraits(traits map[string]stream.Value) []byte {
	keys := make([]string, 0, len(traits))
	size := 2
	for k, v := range traits {
		keys = append(keys, k)
		size += len(k) + 12
		if v.Kind() == stream.KindString {
			size += len(v.Text())
		} else {
			size += 24
		}
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, traits[k])
	}
	return append(b, '}')
}

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD (as encoding/json
// does).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

type storedValue struct {
	S *string          `json:"s"`
	I *int64           `json:"i"`
	F *json.Number     `json:"f"`
	D *int64           `json:"d"`
	R *[2]int64        `json:"r"`
	N *json.RawMessage `json:"n"`
}

// DecodeValue reads one stored value.
func DecodeValue(data []byte) (stream.Value, error) {
	var sv storedValue
	if err := json.Unmarshal(data, &sv); err != nil {
		return stream.Value{}, fmt.Errorf("decode stored value %s: %w", data, err)
	}
	return sv.value()
}

func (sv storedValue) value() (stream.Value, error) {
	switch {
	case sv.S != nil:
		return stream.String(*sv.S), nil
	case sv.I != nil:
		return stream.Int(*sv.I), nil
	case sv.F != nil:
		f, err := sv.F.Float64()
		if err != nil {
			return stream.Value{}, fmt.Errorf("stored float %s: %w", *sv.F, err)
		}
		return stream.Float(f), nil
	case sv.D != nil:
		return stream.Datetime(time.UnixMicro(*sv.D)), nil
	case sv.R != nil:
		return stream.TimeRange(time.UnixMicro(sv.R[0]), time.UnixMicro(sv.R[1])), nil
	}
	return stream.Value{}, fmt.Errorf("stored value has no known type tag")
}

// DecodeTraits reads a stored trait object. (storedValue's fields have
// the types of the tags: a float is kept as a json.Number, so json.Unmarshal
// needs no decoder with UseNumber, whose buffering cost more than the
// decoding of a short object.)
func DecodeTraits(data []byte) (map[string]stream.Value, error) {
	raw := map[string]storedValue{}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decode stored traits: %w", err)
	}
	out := make(map[string]stream.Value, len(raw))
	for k, sv := range raw {
		v, err := sv.value()
		if err != nil {
			return nil, fmt.Errorf("trait %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// Micros converts a time to stored epoch microseconds.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts stored epoch microseconds to a UTC time.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// Mark is a parsed paging mark (spec 10.4): the default order is id
// descending; a leading "+" selects ascending; a following "-" forces
// descending again; the rest, if any, is a hexadecimal id bound (exclusive).
type Mark struct {
	Ascending bool
	After     int64 // 0: no bound; ascending: id > After, descending: id < After
}

// ParseMark parses a paging mark.
func ParseMark(s string) (Mark, error) {
	var m Mark
	if strings.HasPrefix(s, "+") {
		m.Ascending = true
		s = s[1:]
	}
	if strings.HasPrefix(s, "-") {
		m.Ascending = false
		s = s[1:]
	}
	if s == "" {
		return m, nil
	}
	id, err := strconv.ParseInt(s, 16, 64)
	if err != nil || id < 0 {
		return m, fmt.Errorf("db: invalid paging mark %q (want [+][-]hex-id)", s)
	}
	m.After = id
	return m, nil
}

// Format returns the "_mark" of a row id in this listing's order.
func (m Mark) Format(id int64) string {
	if m.Ascending {
		return "+" + strconv.FormatInt(id, 16)
	}
	return strconv.FormatInt(id, 16)
}
