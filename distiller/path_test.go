package distiller

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return x
}

const pathDoc = `{
  "publisher_id": "compute.host-1",
  "payload": {
    "instance_id": "i-1",
    "empty": null,
    "image_meta": {"org.openstack__1__architecture": "x64", "min_disk": "20"},
    "fixed_ips": [
      {"address": "10.0.0.1", "version": 4},
      {"address": "fe80::1", "version": 6}
    ],
    "state": "active",
    "where": "quoted keyword",
    "it's": "escaped",
    "back\\slash": "escaped too",
    "#x": "hash",
    "nested": {"state": "deep", "list": [{"state": "deeper"}]}
  }
}`

func TestPathMatches(t *testing.T) {
	doc := decodeJSON(t, pathDoc)
	tests := []struct {
		name string
		path string
		want []Match
	}{
		{name: "dotted", path: "payload.instance_id",
			want: []Match{{Path: "payload.instance_id", Value: "i-1"}}},
		{name: "root prefix", path: "$.payload.instance_id",
			want: []Match{{Path: "payload.instance_id", Value: "i-1"}}},
		{name: "bracketed name", path: "payload[instance_id]",
			want: []Match{{Path: "payload.instance_id", Value: "i-1"}}},
		{name: "single-quoted dotted key", path: "payload.image_meta.'org.openstack__1__architecture'",
			want: []Match{{Path: "payload.image_meta.org.openstack__1__architecture", Value: "x64"}}},
		{name: "double-quoted dotted key in brackets", path: `payload.image_meta["org.openstack__1__architecture"]`,
			want: []Match{{Path: "payload.image_meta.org.openstack__1__architecture", Value: "x64"}}},
		{name: "escaped quote", path: `payload.'it\'s'`,
			want: []Match{{Path: "payload.it's", Value: "escaped"}}},
		{name: "escaped backslash", path: `payload."back\\slash"`,
			want: []Match{{Path: `payload.back\slash`, Value: "escaped too"}}},
		{name: "name starting with #", path: "payload.#x",
			want: []Match{{Path: "payload.#x", Value: "hash"}}},
		{name: "quoted keyword", path: "payload.'where'",
			want: []Match{{Path: "payload.where", Value: "quoted keyword"}}},
		{name: "index", path: "payload.fixed_ips[1].address",
			want: []Match{{Path: "payload.fixed_ips.[1].address", Value: "fe80::1"}}},
		{name: "negative index", path: "payload.fixed_ips[-1].version",
			want: []Match{{Path: "payload.fixed_ips.[-1].version", Value: json.Number("6")}}},
		{name: "index out of range", path: "payload.fixed_ips[5].address", want: nil},
		{name: "list wildcard", path: "payload.fixed_ips[*].address",
			want: []Match{
				{Path: "payload.fixed_ips.[0].address", Value: "10.0.0.1"},
				{Path: "payload.fixed_ips.[1].address", Value: "fe80::1"},
			}},
		{name: "slice", path: "payload.fixed_ips[1:].version",
			want: []Match{{Path: "payload.fixed_ips.[1].version", Value: json.Number("6")}}},
		{name: "slice wildcard over an object", path: "payload.image_meta[*].min_disk",
			want: []Match{{Path: "payload.image_meta.[0].min_disk", Value: "20"}}},
		{name: "object wildcard in sorted key order", path: "payload.image_meta.*",
			want: []Match{
				{Path: "payload.image_meta.min_disk", Value: "20"},
				{Path: "payload.image_meta.org.openstack__1__architecture", Value: "x64"},
			}},
		{name: "object wildcard over a list matches nothing", path: "payload.fixed_ips.*", want: nil},
		{name: "several names", path: "payload.(state,instance_id)",
			want: []Match{
				{Path: "payload.state", Value: "active"},
				{Path: "payload.instance_id", Value: "i-1"},
			}},
		{name: "recursive descent", path: "payload..state",
			want: []Match{
				{Path: "payload.state", Value: "active"},
				{Path: "payload.nested.state", Value: "deep"},
				{Path: "payload.nested.list.[0].state", Value: "deeper"},
			}},
		{name: "root recursive descent", path: "$..architecture", want: nil},
		{name: "union in order", path: "(payload.missing)|(payload.state)|(publisher_id)",
			want: []Match{
				{Path: "payload.state", Value: "active"},
				{Path: "publisher_id", Value: "compute.host-1"},
			}},
		{name: "union binds tighter than dot", path: "payload.state|instance_id",
			want: []Match{
				{Path: "payload.state", Value: "active"},
				{Path: "payload.instance_id", Value: "i-1"},
			}},
		{name: "null values are matches", path: "payload.empty",
			want: []Match{{Path: "payload.empty", Value: nil}}},
		{name: "where", path: "payload.fixed_ips[*] where version",
			want: []Match{
				{Path: "payload.fixed_ips.[0]", Value: map[string]any{"address": "10.0.0.1", "version": json.Number("4")}},
				{Path: "payload.fixed_ips.[1]", Value: map[string]any{"address": "fe80::1", "version": json.Number("6")}},
			}},
		{name: "this", path: "payload.`this`.state",
			want: []Match{{Path: "payload.state", Value: "active"}}},
		{name: "key of a string matches nothing", path: "publisher_id.x", want: nil},
		{name: "string index is a character", path: "publisher_id[0]",
			want: []Match{{Path: "publisher_id.[0]", Value: "c"}}},
		{name: "root inside a path restarts", path: "payload.$.publisher_id",
			want: []Match{{Path: "publisher_id", Value: "compute.host-1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePath(tc.path)
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", tc.path, err)
			}
			if diff := cmp.Diff(tc.want, p.Matches(doc)); diff != "" {
				t.Errorf("Matches(%q) mismatch (-want +got):\n%s", tc.path, diff)
			}
			var wantFirst any
			for _, m := range tc.want {
				if m.Value != nil {
					wantFirst = m.Value
					break
				}
			}
			var nonNull []Match
			for _, m := range tc.want {
				if m.Value != nil {
					nonNull = append(nonNull, m)
				}
			}
			if diff := cmp.Diff(nonNull, p.nonNullMatches(doc)); diff != "" {
				t.Errorf("nonNullMatches(%q) mismatch (-want +got):\n%s", tc.path, diff)
			}
			got, ok := p.First(doc)
			if diff := cmp.Diff(wantFirst, got); diff != "" || ok != (wantFirst != nil) {
				t.Errorf("First(%q) = %v, %v; want %v", tc.path, got, ok, wantFirst)
			}
		})
	}
}

func TestParsePathErrors(t *testing.T) {
	tests := []struct {
		path string
		pos  int
	}{
		{path: "payload.bogus(", pos: 14},
		{path: "", pos: 1},
		{path: "payload.", pos: 9},
		{path: "payload[", pos: 9},
		{path: "payload[0", pos: 10},
		{path: "payload.'open", pos: 9},
		{path: "payload.0", pos: 9},
		{path: "a & b", pos: 3},
		{path: "payload.`parent`", pos: 9},
		{path: "payload.%", pos: 9},
		{path: "(payload", pos: 9},
		{path: "payload)", pos: 8},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			_, err := ParsePath(tc.path)
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePath(%q) error = %v, want a *PathError", tc.path, err)
			}
			if pe.Pos != tc.pos {
				t.Errorf("ParsePath(%q) error at column %d, want %d (%v)", tc.path, pe.Pos, tc.pos, err)
			}
		})
	}
}
