package distiller

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	publisher := []Match{{Path: "publisher_id", Value: "compute.compute-01.example.com"}}
	tests := []struct {
		name    string
		params  map[string]any
		matches []Match
		want    any
	}{
		{name: "defaults", matches: publisher, want: "compute"},
		{name: "segment 1 max_split 1", params: map[string]any{"segment": 1, "max_split": 1}, matches: publisher, want: "compute-01.example.com"},
		{name: "segment 1", params: map[string]any{"segment": 1}, matches: publisher, want: "compute-01"},
		{name: "last segment", params: map[string]any{"segment": -1}, matches: publisher, want: "com"},
		{name: "segment out of range", params: map[string]any{"segment": 9}, matches: publisher, want: nil},
		{name: "negative segment out of range", params: map[string]any{"segment": -9}, matches: publisher, want: nil},
		{name: "max_split 0 keeps the whole", params: map[string]any{"max_split": 0}, matches: publisher, want: "compute.compute-01.example.com"},
		{name: "separator", params: map[string]any{"separator": "-", "segment": 1}, matches: []Match{{Value: "web-01-prod"}}, want: "01"},
		{name: "no match", matches: nil, want: nil},
		{name: "first match only", matches: []Match{{Value: "a.b"}, {Value: "c.d"}}, want: "a"},
		{name: "number as text", matches: []Match{{Value: json.Number("3.14")}}, want: "3"},
		{name: "unknown parameter ignored", params: map[string]any{"sep": "-"}, matches: []Match{{Value: "x-y"}}, want: "x-y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newSplit(tc.params)
			if err != nil {
				t.Fatalf("newSplit(%v): %v", tc.params, err)
			}
			if diff := cmp.Diff(tc.want, p(tc.matches)); diff != "" {
				t.Errorf("split(%v) mismatch (-want +got):\n%s", tc.params, diff)
			}
		})
	}
}

func TestBitfield(t *testing.T) {
	flags := []any{
		map[string]any{"path": "payload.foo", "bit": 0, "value": 42},
		map[string]any{"path": "payload.foo", "bit": 1, "value": 12},
		map[string]any{"path": "payload.thud", "bit": 1, "value": 23},
		map[string]any{"path": "thingy.boink", "bit": 4},
		map[string]any{"path": "thingy.quux", "bit": 6, "value": "wokka"},
		map[string]any{"path": "payload.bar", "bit": 10, "value": "test"},
	}
	matches := []Match{
		{Path: "payload.foo", Value: json.Number("12")},
		{Path: "payload.bar", Value: "test"},
		{Path: "thingy.boink", Value: "testagain"},
	}
	tests := []struct {
		name    string
		params  map[string]any
		matches []Match
		want    any
	}{
		{name: "flags", params: map[string]any{"flags": flags}, matches: matches, want: int64(0x412)},
		{name: "initial bitfield", params: map[string]any{"flags": flags, "initial_bitfield": 0x2000}, matches: matches, want: int64(0x2412)},
		{name: "no matches", params: map[string]any{"flags": flags}, matches: nil, want: int64(0)},
		{name: "no flags", params: nil, matches: matches, want: int64(0)},
		{name: "later match wins", params: map[string]any{"flags": flags},
			matches: []Match{{Path: "payload.foo", Value: json.Number("12")}, {Path: "payload.foo", Value: json.Number("42")}},
			want:    int64(1)},
		{name: "numbers compare by value", params: map[string]any{"flags": flags},
			matches: []Match{{Path: "payload.foo", Value: json.Number("12.0")}}, want: int64(2)},
		{name: "string is not a number", params: map[string]any{"flags": flags},
			matches: []Match{{Path: "payload.foo", Value: "12"}}, want: int64(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newBitfield(tc.params)
			if err != nil {
				t.Fatalf("newBitfield: %v", err)
			}
			if diff := cmp.Diff(tc.want, p(tc.matches)); diff != "" {
				t.Errorf("bitfield mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPluginParameterErrors(t *testing.T) {
	tests := []struct {
		name    string
		plugin  string
		params  map[string]any
		wantErr string
	}{
		{name: "empty separator", plugin: PluginSplit, params: map[string]any{"separator": ""}, wantErr: "separator"},
		{name: "segment not an int", plugin: PluginSplit, params: map[string]any{"segment": "1"}, wantErr: "segment"},
		{name: "max_split not an int", plugin: PluginSplit, params: map[string]any{"max_split": 1.5}, wantErr: "max_split"},
		{name: "flags not a list", plugin: PluginBitfield, params: map[string]any{"flags": "x"}, wantErr: "flags"},
		{name: "flag without path", plugin: PluginBitfield, params: map[string]any{"flags": []any{map[string]any{"bit": 1}}}, wantErr: "flags[0]: path"},
		{name: "flag without bit", plugin: PluginBitfield, params: map[string]any{"flags": []any{map[string]any{"path": "a"}}}, wantErr: "flags[0]: bit"},
		{name: "bit too large", plugin: PluginBitfield, params: map[string]any{"flags": []any{map[string]any{"path": "a", "bit": 63}}}, wantErr: "flags[0]: bit"},
		{name: "initial not an int", plugin: PluginBitfield, params: map[string]any{"initial_bitfield": "x"}, wantErr: "initial_bitfield"},
	}
	r := NewPluginRegistry()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.New(tc.plugin, tc.params)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%s, %v) error = %v, want one naming %q", tc.plugin, tc.params, err, tc.wantErr)
			}
		})
	}
}

func TestPluginRegistry(t *testing.T) {
	r := NewPluginRegistry()
	if diff := cmp.Diff([]string{"bitfield", "split"}, r.Names()); diff != "" {
		t.Errorf("built-in names mismatch (-want +got):\n%s", diff)
	}
	upper := func(map[string]any) (Plugin, error) {
		return func(m []Match) any {
			if len(m) == 0 {
				return nil
			}
			s, _ := m[0].Value.(string)
			return strings.ToUpper(s)
		}, nil
	}
	r.Register("upper", upper)
	r.Register("other", upper)

	if _, err := r.New("nope", nil); !errors.Is(err, ErrUnknownPlugin) || !strings.Contains(err.Error(), "bitfield, other, split, upper") {
		t.Errorf("New(nope) error = %v, want ErrUnknownPlugin naming the known plugins", err)
	}
	sel, err := r.Select([]string{"upper"})
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if diff := cmp.Diff([]string{"bitfield", "split", "upper"}, sel.Names()); diff != "" {
		t.Errorf("selected names mismatch (-want +got):\n%s", diff)
	}
	if _, err := r.Select([]string{"missing"}); !errors.Is(err, ErrUnknownPlugin) {
		t.Errorf("Select(missing) error = %v, want ErrUnknownPlugin", err)
	}

	defs, err := ParseDefinitions("defs.yaml", []byte(`
- event_type: "*"
  traits:
    loud:
      fields: payload.name
      plugin: upper
`), sel)
	if err != nil {
		t.Fatalf("ParseDefinitions with a registered plugin: %v", err)
	}
	ev, _, err := New(defs, Config{}).Distill([]byte(`{"message_id": "m", "event_type": "x", "timestamp": "2014-01-01T00:00:00", "payload": {"name": "quiet"}}`))
	if err != nil {
		t.Fatalf("Distill: %v", err)
	}
	if got := ev.Traits["loud"].Text(); got != "QUIET" {
		t.Errorf("loud = %q, want QUIET", got)
	}

	for _, bad := range []struct {
		name string
		f    PluginFactory
	}{{"", upper}, {"nil", nil}, {"split", upper}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", bad.name)
				}
			}()
			r.Register(bad.name, bad.f)
		}()
	}
}
