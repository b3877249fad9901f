package winchester

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/pipeline"
)

// upper is a trait plugin: the first match, upper-cased.
func upper(map[string]any) (distiller.Plugin, error) {
	return func(m []distiller.Match) any {
		if len(m) == 0 {
			return nil
		}
		s, _ := m[0].Value.(string)
		return strings.ToUpper(s)
	}, nil
}

// loadConfig writes winchester.yaml (and the other files) into a new
// directory and loads it.
func loadConfig(t *testing.T, files map[string]string) *Config {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		writeFile(t, dir, name, text)
	}
	cfg, err := Load(filepath.Join(dir, "winchester.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

func TestSelectTraitPlugins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		plugins string // the distiller_trait_plugins section
		// wantErr are fragments the error must hold, in order; nil: no error.
		wantErr []string
	}{
		{name: "registered plugins need no entry", plugins: ""},
		{name: "original class path of a registered name", plugins: "  upper: mymodule.plugins:UpperPlugin\n"},
		{name: "an entry naming a registered plugin", plugins: "  shout: upper\n"},
		{name: "a built-in under its name", plugins: "  split: winchester.trait_plugins:SplitterTraitPlugin\n"},
		{
			name:    "python class without a Go plugin",
			plugins: "  upper: upper\n  timestamp: mymodule.plugins:TimestampPlugin\n",
			wantErr: []string{`winchester.yaml:4: distiller_trait_plugins: timestamp: "mymodule.plugins:TimestampPlugin" is not available: register a Go plugin named "timestamp"`, "registered: bitfield, split, upper"},
		},
		{
			name:    "a registered name given another implementation",
			plugins: "  split: upper\n",
			wantErr: []string{`winchester.yaml:3: distiller_trait_plugins: split: a plugin named "split" is registered already; it cannot also be "upper"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text := "database: {url: 'sqlite://'}\n"
			if tc.plugins != "" {
				text += "distiller_trait_plugins:\n" + tc.plugins
			}
			cfg := loadConfig(t, map[string]string{"winchester.yaml": text})
			reg := NewRegistry()
			reg.RegisterTraitPlugin("upper", upper)
			got, err := reg.SelectTraitPlugins(cfg)
			if tc.wantErr != nil {
				assertErrorContains(t, err, tc.wantErr)
				if strings.Contains(tc.plugins, "Timestamp") && !errors.Is(err, ErrPluginNotAvailable) {
					t.Errorf("error %v does not wrap ErrPluginNotAvailable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SelectTraitPlugins: %v", err)
			}
			for name := range cfg.DistillerTraitPlugins {
				if _, ok := got.Lookup(name); !ok {
					t.Errorf("plugin %q not selected (have %v)", name, got.Names())
				}
			}
			if _, ok := got.Lookup("upper"); !ok {
				t.Errorf("registered plugin upper not selected (have %v)", got.Names())
			}
		})
	}
}

// A registered plugin, and one named by distiller_trait_plugins, work in
// the event definitions of an opened engine.
func TestTraitPluginInEventDefinitions(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, map[string]string{
		"winchester.yaml": "database: {url: 'sqlite://'}\ndistiller_config: events.yaml\n" +
			"distiller_trait_plugins:\n  shout: upper\n",
		"events.yaml": `- event_type: order.*
  traits:
    customer:
      fields: payload.customer
      plugin: upper
    city:
      fields: payload.city
      plugin: shout
`,
	})
	reg := NewRegistry()
	reg.RegisterTraitPlugin("upper", upper)
	eng, err := Open(t.Context(), cfg, Options{Registry: reg})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer eng.Close()
	ev, _, err := eng.Defs.Distiller.Distill([]byte(`{"event_type": "order.placed", "message_id": "m1",
		"timestamp": "2026-12-01 10:00:00", "payload": {"customer": "ada", "city": "york"}}`))
	if err != nil {
		t.Fatalf("Distill: %v", err)
	}
	if got := ev.Traits["customer"].Text() + " " + ev.Traits["city"].Text(); got != "ADA YORK" {
		t.Errorf("traits = %q, want %q", got, "ADA YORK")
	}
}

// Without the Go plugin, Open fails with the not-available error and the
// line of the entry, not with silence.
func TestOpenReportsMissingTraitPlugin(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, map[string]string{
		"winchester.yaml": "database: {url: 'sqlite://'}\ndistiller_config: events.yaml\n" +
			"distiller_trait_plugins:\n  upper: mymodule:Upper\n",
		"events.yaml": "- event_type: order.*\n  traits:\n    customer:\n      fields: payload.customer\n      plugin: upper\n",
	})
	_, err := Open(t.Context(), cfg, Options{})
	assertErrorContains(t, err, []string{`winchester.yaml:4: distiller_trait_plugins: upper: "mymodule:Upper" is not available: register a Go plugin named "upper"`})
	if !errors.Is(err, ErrPluginNotAvailable) {
		t.Errorf("Open: %v, want ErrPluginNotAvailable", err)
	}
}

func TestSelectHandlers(t *testing.T) {
	t.Parallel()
	noop := func(pipeline.Params) (pipeline.Builder, error) { return nil, nil }
	reg := NewRegistry()
	defer reg.Close()
	reg.RegisterHandler("audit", noop)
	cfg := loadConfig(t, map[string]string{"winchester.yaml": "database: {url: 'sqlite://'}\npipeline_handlers:\n  audit: audit\n  log: winchester.pipeline_handler:LoggingHandler\n  bad: nosuch\n"})
	_, err := reg.SelectHandlers(cfg)
	assertErrorContains(t, err, []string{`winchester.yaml:5: pipeline_handlers: bad: unknown handler "nosuch" (known: `, "audit"})
	if !errors.Is(err, pipeline.ErrUnknownHandler) {
		t.Errorf("SelectHandlers: %v, want pipeline.ErrUnknownHandler", err)
	}

	delete(cfg.PipelineHandlers, "bad")
	got, err := reg.SelectHandlers(cfg)
	if err != nil {
		t.Fatalf("SelectHandlers: %v", err)
	}
	if names := strings.Join(got.Names(), ","); names != "audit,log" {
		t.Errorf("selected %s, want audit,log", names)
	}
	if want := []string{"atompub", "audit", "exec", "filter", "halt", "logger", "notabene", "usage", "webhook"}; strings.Join(reg.Handlers(), ",") != strings.Join(want, ",") {
		t.Errorf("Handlers() = %v, want %v", reg.Handlers(), want)
	}
}

func TestRegisterMisuse(t *testing.T) {
	t.Parallel()
	noop := func(pipeline.Params) (pipeline.Builder, error) { return nil, nil }
	tests := []struct {
		name string
		f    func(r *Registry)
	}{
		{"handler twice", func(r *Registry) { r.RegisterHandler("logger", noop) }},
		{"handler without a name", func(r *Registry) { r.RegisterHandler("", noop) }},
		{"nil handler factory", func(r *Registry) { r.RegisterHandler("x", nil) }},
		{"plugin twice", func(r *Registry) { r.RegisterTraitPlugin("split", upper) }},
		{"nil plugin factory", func(r *Registry) { r.RegisterTraitPlugin("x", nil) }},
		{"job twice", func(r *Registry) {
			f := func(context.Context, time.Time, time.Time) error { return nil }
			r.RegisterJob("x", f)
			r.RegisterJob("x", f)
		}},
		{"job without a name", func(r *Registry) {
			r.RegisterJob("", func(context.Context, time.Time, time.Time) error { return nil })
		}},
		{"nil job", func(r *Registry) { r.RegisterJob("x", nil) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry()
			defer r.Close()
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", tc.name)
				}
			}()
			tc.f(r)
		})
	}
}
