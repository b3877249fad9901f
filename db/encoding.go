package db

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

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
	var b bytes.Buffer
	appendValue(&b, v)
	return b.Bytes()
}

func appendValue(b *bytes.Buffer, v stream.Value) {
	switch v.Kind() {
	case stream.KindString:
		s, _ := json.Marshal(v.Text())
		b.WriteString(`{"s":`)
		b.Write(s)
	case stream.KindInt:
		b.WriteString(`{"i":` + strconv.FormatInt(v.IntValue(), 10))
	case stream.KindFloat:
		b.WriteString(`{"f":` + stream.FormatFloat(v.FloatValue()))
	case stream.KindDatetime:
		b.WriteString(`{"d":` + strconv.FormatInt(v.Time().UnixMicro(), 10))
	case stream.KindTimeRange:
		beg, end := v.Range()
		b.WriteString(`{"r":[` + strconv.FormatInt(beg.UnixMicro(), 10) + "," + strconv.FormatInt(end.UnixMicro(), 10) + "]")
	default:
		b.WriteString(`{"n":null`)
	}
	b.WriteByte('}')
}

// EncodeTraits returns the stored JSON object of a trait map (keys sorted).
func EncodeTraits(traits map[string]stream.Value) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(traits)) {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		appendValue(&b, traits[k])
	}
	b.WriteByte('}')
	return b.Bytes()
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
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&sv); err != nil {
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

// DecodeTraits reads a stored trait object.
func DecodeTraits(data []byte) (map[string]stream.Value, error) {
	raw := map[string]storedValue{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
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
