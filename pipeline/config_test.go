package pipeline_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/pipeline"
)

func TestParse(t *testing.T) {
	t.Parallel()
	reg := builtinRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	src := `test_pipeline:
  - logger
  - name: usage
  - name: atompub
    params:
      url: https://atom.example.com/nova/events
      content_format: cuf_xml
      extra_info: {region: DFW}
empty_pipeline:
null_pipeline: []
`
	defs, err := pipeline.Parse("pipelines.yaml", []byte(src), reg)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if d := cmp.Diff([]string{"empty_pipeline", "null_pipeline", "test_pipeline"}, defs.Names()); d != "" {
		t.Errorf("names mismatch (-want +got):\n%s", d)
	}
	p, ok := defs.Pipeline("test_pipeline")
	if !ok {
		t.Fatal("test_pipeline missing")
	}
	want := []pipeline.Entry{
		{Name: "logger", Params: map[string]any{}, Line: 2},
		{Name: "usage", Params: map[string]any{}, Line: 3},
		{Name: "atompub", Line: 4, Params: map[string]any{
			"url": "https://atom.example.com/nova/events", "content_format": "cuf_xml",
			"extra_info": map[string]any{"region": "DFW"},
		}},
	}
	if d := cmp.Diff(want, p.Entries); d != "" {
		t.Errorf("entries mismatch (-want +got):\n%s", d)
	}
	if p, _ := defs.Pipeline("empty_pipeline"); len(p.Entries) != 0 {
		t.Errorf("empty_pipeline has %d entries", len(p.Entries))
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	reg := builtinRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	for _, src := range []string{"", "---\n", "# nothing\n"} {
		defs, err := pipeline.Parse("p.yaml", []byte(src), reg)
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if n := len(defs.Names()); n != 0 {
			t.Errorf("Parse(%q) has %d pipelines", src, n)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		src      string
		line     int
		pipeline string
		handler  string
		field    string
		msg      string // substring of the error
	}{
		{name: "entry without name", src: "p:\n  - logger\n  - params: {book: 42}\n", line: 3, pipeline: "p",
			msg: "Handler name not in config! {params: {book: 42}}"},
		{name: "unknown handler", src: "p:\n  - nope\n", line: 2, pipeline: "p", handler: "nope",
			msg: "Unknown handler in pipeline config nope: unknown handler \"nope\" (known: atompub, exec, filter, halt, logger, notabene, usage, webhook)"},
		{name: "unknown entry key", src: "p:\n  - name: logger\n    parms: {}\n", line: 3, pipeline: "p", handler: "logger",
			msg: `parms: unknown key (did you mean params?)`},
		{name: "params not a mapping", src: "p:\n  - name: logger\n    params: [1]\n", line: 3, pipeline: "p", handler: "logger",
			msg: "params must be a mapping"},
		{name: "unknown param", src: "p:\n  - name: atompub\n    params:\n      url: x\n      urll: y\n", line: 5, pipeline: "p",
			handler: "atompub", field: "urll", msg: "unknown key (did you mean url?)"},
		{name: "missing required param", src: "p:\n  - name: atompub\n    params: {title: t}\n", line: 2, pipeline: "p",
			handler: "atompub", field: "url", msg: "required"},
		{name: "param of the wrong type", src: "p:\n  - name: atompub\n    params:\n      url: x\n      max_attempts: many\n", line: 5,
			pipeline: "p", handler: "atompub", field: "max_attempts", msg: `must be an integer, not the string "many"`},
		{name: "notabene without exchange", src: "p:\n  - name: notabene\n    params: {queue_name: q}\n", line: 2, pipeline: "p",
			handler: "notabene", field: "exchange", msg: "No 'exchange' name provided"},
		{name: "notabene without queue", src: "p:\n  - name: notabene\n    params: {exchange: x}\n", line: 2, pipeline: "p",
			handler: "notabene", field: "queue_name", msg: "No 'queue_name' provided"},
		{name: "logger takes no params", src: "p:\n  - name: logger\n    params: {level: x}\n", line: 3, pipeline: "p",
			handler: "logger", field: "level", msg: "unknown key (no keys are allowed here)"},
		{name: "duplicate pipeline", src: "p: [logger]\np: [usage]\n", line: 2, pipeline: "p", msg: "key defined more than once (first on line 1)"},
		{name: "pipeline not a list", src: "p: logger\n", line: 1, pipeline: "p", msg: "list of handler entries"},
		{name: "root not a mapping", src: "- logger\n", line: 1, msg: "must be a mapping"},
		{name: "entry name not a string", src: "p:\n  - name: [a]\n", line: 2, pipeline: "p", msg: "Handler name not in config!"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := builtinRegistry()
			t.Cleanup(func() { _ = reg.Close() })
			_, err := pipeline.Parse("pipelines.yaml", []byte(tc.src), reg)
			var ce *pipeline.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Parse(%q) = %v, want a *ConfigError", tc.src, err)
			}
			got := pipeline.ConfigError{File: ce.File, Line: ce.Line, Pipeline: ce.Pipeline, Handler: ce.Handler, Field: ce.Field}
			want := pipeline.ConfigError{File: "pipelines.yaml", Line: tc.line, Pipeline: tc.pipeline, Handler: tc.handler, Field: tc.field}
			if d := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" }, cmp.Ignore())); d != "" {
				t.Errorf("Parse(%q) error %q position mismatch (-want +got):\n%s", tc.src, err, d)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Parse(%q) error %q does not contain %q", tc.src, err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "pipelines.yaml:") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

// Every problem of a file is reported, those of several pipelines and
// several params of one entry included.
func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	reg := builtinRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	src := `a:
  - nope
  - name: atompub
    params:
      url: x
      urll: y
      max_attempts: many
b:
  - name: logger
    parms: {}
c: logger
`
	_, err := pipeline.Parse("pipelines.yaml", []byte(src), reg)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *pipeline.ConfigError
		if !errors.As(e, &ce) {
			t.Fatalf("problem %v (%T) is not a *ConfigError", e, e)
		}
		got = append(got, fmt.Sprintf("%d %s %s %s", ce.Line, ce.Pipeline, ce.Handler, ce.Field))
	}
	want := []string{
		"2 a nope ",
		"6 a atompub urll",
		"7 a atompub max_attempts",
		"10 b logger ",
		"11 c  ",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("problems mismatch (-want +got):\n%s\nerror: %v", d, err)
	}
}

// Merge keys are resolved in pipelines as in the other files.
func TestParseMergeKeys(t *testing.T) {
	t.Parallel()
	reg := builtinRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	src := `a:
  - name: atompub
    params: &common {url: "https://x", content_format: cuf_xml, title: a}
b:
  - name: atompub
    params:
      <<: *common
      title: b
`
	defs, err := pipeline.Parse("pipelines.yaml", []byte(src), reg)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	b, _ := defs.Pipeline("b")
	want := map[string]any{"url": "https://x", "content_format": "cuf_xml", "title": "b"}
	if d := cmp.Diff(want, b.Entries[0].Params); d != "" {
		t.Errorf("merged params mismatch (-want +got):\n%s", d)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	reg := builtinRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	path := filepath.Join(t.TempDir(), "pipelines.yaml")
	if err := os.WriteFile(path, []byte("test_pipeline:\n  - logger\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defs, err := pipeline.Load(path, reg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if defs.File != path {
		t.Errorf("File = %q, want %q", defs.File, path)
	}
	if _, err := pipeline.Load(filepath.Join(t.TempDir(), "missing.yaml"), reg); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestParseAliases(t *testing.T) {
	t.Parallel()
	reg := builtinRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	src := `a:
  - &log logger
  - name: atompub
    params: &common {url: "https://x", content_format: cuf_xml}
b:
  - *log
  - name: atompub
    params: *common
`
	defs, err := pipeline.Parse("pipelines.yaml", []byte(src), reg)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a, _ := defs.Pipeline("a")
	b, _ := defs.Pipeline("b")
	if d := cmp.Diff(a.Entries, b.Entries, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Line" }, cmp.Ignore())); d != "" {
		t.Errorf("aliased pipeline differs (-a +b):\n%s", d)
	}
}
