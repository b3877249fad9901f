package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func strs(items []json.RawMessage) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = string(it)
	}
	return out
}

func TestSplitArray(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		max     int
		want    []string
		wantErr string
	}{
		{name: "objects", body: `[{"a": "x]}\"{"}, {"b": [1, {"c": null}]}]`, want: []string{`{"a": "x]}\"{"}`, `{"b": [1, {"c": null}]}`}},
		{name: "scalars and space", body: "[ 1 ,\n\"s\" , true,null ,[] ]", want: []string{`1`, `"s"`, `true`, `null`, `[]`}},
		{name: "empty", body: `[ ]`, want: []string{}},
		{name: "trailing comma", body: `[{"a": 1},]`, wantErr: "unexpected ']'"},
		{name: "missing comma", body: `[{"a": 1} {"b": 2}]`, wantErr: "want , or ]"},
		{name: "unterminated string", body: `[{"a": "1}]`, wantErr: "unexpected end"},
		{name: "unclosed", body: `[{"a": 1}`, wantErr: "unexpected end"},
		{name: "invalid element", body: `[{"a": 1,}]`, wantErr: "element 1"},
		{name: "mismatched brackets", body: `[{"a": [1}]]`, wantErr: "not valid JSON"},
		{name: "data after", body: `[1] 2`, wantErr: "data after the array"},
		{name: "cut at max+1", body: `[1, 2, 3, 4, 5]`, max: 2, want: []string{"1", "2", "3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.max == 0 {
				tc.max = 10
			}
			got, err := splitArray([]byte(tc.body), tc.max)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("splitArray(%q) = %q, %v; want an error with %q", tc.body, strs(got), err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("splitArray(%q): %v", tc.body, err)
			}
			if diff := cmp.Diff(tc.want, strs(got)); diff != "" {
				t.Errorf("splitArray(%q) (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

func TestSplitSequence(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr string
	}{
		{name: "one pretty object", body: "{\n  \"a\": \"}\",\n  \"b\": {}\n}\n", want: []string{"{\n  \"a\": \"}\",\n  \"b\": {}\n}"}},
		{name: "JSON lines", body: "{\"a\":1}\n{\"b\":2}\n", want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "concatenated", body: `{"a":1}{"b":2}`, want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "bad second line", body: "{\"a\":1}\n{oops}\n", wantErr: "item 2 (offset 8)"},
		{name: "cut", body: `{"a":1`, wantErr: "item 1"},
		{name: "stray bracket", body: `{"a":1} }`, wantErr: "item 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitSequence([]byte(tc.body), 10)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("splitSequence(%q) = %q, %v; want an error with %q", tc.body, strs(got), err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("splitSequence(%q): %v", tc.body, err)
			}
			if diff := cmp.Diff(tc.want, strs(got)); diff != "" {
				t.Errorf("splitSequence(%q) (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

// The splitters agree with encoding/json: they accept what it accepts,
// with the same items, and refuse what it refuses.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{`[{"a": "x]}\"{"}, 1]`, `[]`, `[1,]`, "{\"a\":1}\n{\"b\":[2]}", `{"a":`, `"s" 1 null`, `[1 2]`, `[{"a":[1}]]`, `["a\\", "b"]`, `[{"a":"\\\""}]`, `[-1.5e3,"\u00e9"]`, `{} x`, `[1]]`, `1 2 [`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.TrimSpace(body)
		if len(body) == 0 {
			return
		}
		if body[0] == '[' {
			got, err := splitArray(body, 1<<30)
			var want []json.RawMessage
			wantErr := json.Unmarshal(body, &want)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("splitArray(%q) error %v, encoding/json %v", body, err, wantErr)
			}
			if err == nil && !cmp.Equal(strs(want), strs(got)) {
				t.Fatalf("splitArray(%q) = %q, encoding/json %q", body, strs(got), strs(want))
			}
			return
		}
		got, err := splitSequence(body, 1<<30)
		var want []json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(body))
		var wantErr error
		for {
			var raw json.RawMessage
			if wantErr = dec.Decode(&raw); wantErr != nil {
				break
			}
			want = append(want, raw)
		}
		if errors.Is(wantErr, io.EOF) {
			wantErr = nil
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("splitSequence(%q) error %v, encoding/json %v", body, err, wantErr)
		}
		if err == nil && !cmp.Equal(strs(want), strs(got)) {
			t.Fatalf("splitSequence(%q) = %q, encoding/json %q", body, strs(got), strs(want))
		}
	})
}
