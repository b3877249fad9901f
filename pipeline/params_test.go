package pipeline

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

type sample struct {
	URL    string         `yaml:"url"`
	Count  *int           `yaml:"count"`
	Tags   []string       `yaml:"tags"`
	Extra  map[string]any `yaml:"extra"`
	Hidden string         `yaml:"-"`
}

func paramsOf(t *testing.T, src string) Params {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	p, err := newParams("pipelines.yaml", 1, "p", "h", doc.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParamsDecode(t *testing.T) {
	t.Parallel()
	three := 3
	tests := []struct {
		name  string
		src   string
		want  sample
		line  int
		field string
	}{
		{name: "all fields", src: "url: u\ncount: 3\ntags: [a, b]\nextra: {k: 1}\n",
			want: sample{URL: "u", Count: &three, Tags: []string{"a", "b"}, Extra: map[string]any{"k": 1}}},
		{name: "unknown key", src: "url: u\nbogus: 1\n", line: 2, field: "bogus"},
		{name: "ignored field is unknown", src: "Hidden: x\n", line: 1, field: "Hidden"},
		{name: "wrong type", src: "url: u\n\ncount: lots\n", line: 3, field: "count"},
		{name: "list for a string", src: "url: [a]\n", line: 1, field: "url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got sample
			err := paramsOf(t, tc.src).Decode(&got)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("Decode mismatch (-want +got):\n%s", d)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Line != tc.line || ce.Field != tc.field || ce.File != "pipelines.yaml" {
				t.Fatalf("Decode(%q) = %#v, want a ConfigError at line %d about %s", tc.src, err, tc.line, tc.field)
			}
		})
	}
}

func TestParamsFromMap(t *testing.T) {
	t.Parallel()
	p, err := ParamsFromMap("h", map[string]any{"url": "u", "tags": []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	var got sample
	if err := p.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.URL != "u" || !cmp.Equal(got.Tags, []string{"x"}) {
		t.Errorf("decoded %+v", got)
	}
	if !p.Has("url") || p.Has("count") {
		t.Errorf("Has: url %v count %v", p.Has("url"), p.Has("count"))
	}
	if d := cmp.Diff([]string{"tags", "url"}, p.Keys()); d != "" {
		t.Errorf("Keys mismatch (-want +got):\n%s", d)
	}
	empty, err := ParamsFromMap("h", nil)
	if err != nil || len(empty.Map()) != 0 || empty.Decode(&got) != nil {
		t.Errorf("empty params: %v %v", err, empty.Map())
	}
}

func TestEnv(t *testing.T) {
	t.Parallel()
	e := NewEnv(12, "trig", nil)
	for key, want := range map[string]any{"stream_id": int64(12), "stream_name": "trig"} {
		if got, ok := e.Get(key); !ok || got != want {
			t.Errorf("Get(%q) = %v, %v; want %v", key, got, ok, want)
		}
	}
	if _, ok := e.Get("notifications"); ok {
		t.Error("Get of an unset key succeeded")
	}
	e.Set("notifications", []map[string]any{{"event_type": "x"}})
	if v, ok := e.Get("notifications"); !ok || len(v.([]map[string]any)) != 1 {
		t.Errorf("Get after Set = %v, %v", v, ok)
	}
	e.Log().Info("discarded") // a nil logger discards
	var zero *Env
	zero.Log().Info("discarded")
}

func TestConfigErrorMessage(t *testing.T) {
	t.Parallel()
	err := &ConfigError{File: "p.yaml", Line: 4, Pipeline: "p", Handler: "atompub", Field: "url", Err: errors.New("required")}
	if got, want := err.Error(), `p.yaml:4: pipeline "p": handler "atompub": param "url": required`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	err = &ConfigError{Line: 2, Err: errors.New("x")}
	if got, want := err.Error(), "line 2: x"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
