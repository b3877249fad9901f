package pipeline_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/pipeline/handlers"
)

// builtinRegistry returns a registry holding the built-in handlers.
func builtinRegistry() *pipeline.Registry {
	r := pipeline.NewRegistry()
	handlers.RegisterBuiltins(r)
	return r
}

func TestNewRegistryIsEmpty(t *testing.T) {
	t.Parallel()
	reg := pipeline.NewRegistry()
	if names := reg.Names(); len(names) != 0 {
		t.Errorf("NewRegistry().Names() = %v, want none", names)
	}
	_, err := pipeline.Parse("p.yaml", []byte("p: [logger]\n"), reg)
	if !errors.Is(err, pipeline.ErrUnknownHandler) {
		t.Errorf("Parse with an empty registry = %v, want ErrUnknownHandler", err)
	}
}

func TestRegistryBuiltins(t *testing.T) {
	t.Parallel()
	reg := builtinRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	if d := cmp.Diff([]string{"atompub", "exec", "filter", "halt", "logger", "notabene", "usage", "webhook"}, reg.Names()); d != "" {
		t.Errorf("built-in names mismatch (-want +got):\n%s", d)
	}
	for _, name := range []string{
		"logger", "winchester.pipeline_handler:LoggingHandler",
		"usage", "winchester.pipeline_handler:UsageHandler",
		"notabene", "winchester.pipeline_handler:NotabeneHandler",
		"atompub", "winchester.pipeline_handler:AtomPubHandler",
	} {
		if _, err := reg.Lookup(name); err != nil {
			t.Errorf("Lookup(%q): %v", name, err)
		}
	}
	_, err := reg.Lookup("winchester.pipeline_handler:Nope")
	if !errors.Is(err, pipeline.ErrUnknownHandler) || !strings.Contains(err.Error(), "known: atompub, exec, filter, halt, logger, notabene, usage, webhook") {
		t.Errorf("Lookup of an unknown name = %v, want ErrUnknownHandler listing the known names", err)
	}
}

func TestRegisterPanics(t *testing.T) {
	t.Parallel()
	ok := func(pipeline.Params) (pipeline.Builder, error) { return nil, nil }
	tests := []struct {
		name    string
		handler string
		f       pipeline.Factory
	}{
		{name: "empty name", handler: "", f: ok},
		{name: "nil factory", handler: "x", f: nil},
		{name: "duplicate", handler: "logger", f: ok},
		{name: "alias taken", handler: "winchester.pipeline_handler:LoggingHandler", f: ok},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := builtinRegistry()
			t.Cleanup(func() { _ = reg.Close() })
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", tc.handler)
				}
			}()
			reg.Register(tc.handler, tc.f)
		})
	}
}

func TestRegistrySelect(t *testing.T) {
	t.Parallel()
	reg := builtinRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	sel, err := reg.Select(map[string]string{
		"logger": "winchester.pipeline_handler:LoggingHandler",
		"verify": "usage",
	})
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if d := cmp.Diff([]string{"logger", "verify"}, sel.Names()); d != "" {
		t.Errorf("selected names mismatch (-want +got):\n%s", d)
	}
	if _, err := pipeline.Parse("p.yaml", []byte("p: [logger, verify]\n"), sel); err != nil {
		t.Errorf("Parse with selected names: %v", err)
	}
	_, err = pipeline.Parse("p.yaml", []byte("p: [usage]\n"), sel)
	if err == nil || !strings.Contains(err.Error(), "Unknown handler in pipeline config usage") {
		t.Errorf("Parse of an unselected handler = %v, want unknown handler", err)
	}

	_, err = reg.Select(map[string]string{"logger": "winchester.pipeline_handler:LoggingHandler", "x": "some.module:Missing"})
	if !errors.Is(err, pipeline.ErrUnknownHandler) || !strings.Contains(err.Error(), "pipeline_handlers: x:") {
		t.Errorf("Select with an unknown target = %v, want ErrUnknownHandler naming x", err)
	}

	all, err := reg.Select(nil)
	if err != nil {
		t.Fatalf("Select(nil): %v", err)
	}
	if d := cmp.Diff(reg.Names(), all.Names()); d != "" {
		t.Errorf("Select(nil) names mismatch (-want +got):\n%s", d)
	}
}

func TestAliasPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		alias  string
		target string
	}{
		{name: "empty alias", alias: "", target: "logger"},
		{name: "unregistered target", alias: "x.y:Z", target: "nope"},
		{name: "alias is a handler name", alias: "usage", target: "logger"},
		{name: "alias set twice", alias: "winchester.pipeline_handler:LoggingHandler", target: "usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := builtinRegistry()
			t.Cleanup(func() { _ = reg.Close() })
			defer func() {
				if recover() == nil {
					t.Errorf("Alias(%q, %q) did not panic", tc.alias, tc.target)
				}
			}()
			reg.Alias(tc.alias, tc.target)
		})
	}
}

func TestRegistryCloseRunsOnCloseOnce(t *testing.T) {
	t.Parallel()
	reg := pipeline.NewRegistry()
	calls := 0
	boom := errors.New("boom")
	reg.OnClose(func() error { calls++; return boom })
	if err := reg.Close(); !errors.Is(err, boom) {
		t.Errorf("Close() = %v, want the OnClose error", err)
	}
	if err := reg.Close(); err != nil || calls != 1 {
		t.Errorf("second Close() = %v after %d calls, want nil after 1", err, calls)
	}
}
