package distiller

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func traitNames(d *Definition) []string {
	var out []string
	for _, t := range d.Traits {
		out = append(out, t.Name)
	}
	return out
}

// The original's sample file, with its anchor and merge key, loads
// unchanged.
func TestLoadSampleDefinitions(t *testing.T) {
	defs, err := LoadDefinitions(filepath.Join("testdata", "event_definitions.yaml"), nil)
	if err != nil {
		t.Fatalf("LoadDefinitions: %v", err)
	}
	if len(defs) != 2 {
		t.Fatalf("got %d definitions, want 2", len(defs))
	}
	instance := []string{
		"deleted_at", "disk_gb", "ephemeral_gb", "host", "instance_id", "instance_type", "instance_type_id",
		"launched_at", "memory_mb", "os_architecture", "os_distro", "os_version", "root_gb", "service", "state",
		"tenant_id", "user_id", "vcpus",
	}
	if diff := cmp.Diff(instance, traitNames(defs[0])); diff != "" {
		t.Errorf("instance traits mismatch (-want +got):\n%s", diff)
	}
	exists := append([]string{"audit_period_beginning", "audit_period_ending"}, instance...)
	if diff := cmp.Diff(exists, traitNames(defs[1])); diff != "" {
		t.Errorf("exists traits (merged) mismatch (-want +got):\n%s", diff)
	}
	if got := defs[1].EventTypes; len(got) != 1 || got[0] != "compute.instance.exists" || defs[1].Line != 54 {
		t.Errorf("exists definition = %v at line %d, want compute.instance.exists at line 54", got, defs[1].Line)
	}
	var host *TraitDefinition
	for _, tr := range defs[1].Traits {
		if tr.Name == "host" {
			host = tr
		}
	}
	if host == nil || host.Plugin != "split" || host.Type != TypeText || host.Fields[0] != "publisher_id" {
		t.Errorf("merged host trait = %+v, want the split plugin over publisher_id", host)
	}
}

func TestMergeKeys(t *testing.T) {
	defs, err := ParseDefinitions("m.yaml", []byte(`
- event_type: a
  traits: &base
    x: {fields: payload.x}
    y: {fields: payload.y, type: int}
- event_type: b
  traits: &more
    z: {fields: payload.z}
- event_type: c
  traits:
    <<: [*base, *more]
    y: {fields: payload.other}
`), nil)
	if err != nil {
		t.Fatalf("ParseDefinitions: %v", err)
	}
	c := defs[2]
	if diff := cmp.Diff([]string{"x", "y", "z"}, traitNames(c)); diff != "" {
		t.Errorf("merged traits mismatch (-want +got):\n%s", diff)
	}
	if y := c.Traits[1]; y.Fields[0] != "payload.other" || y.Type != TypeText {
		t.Errorf("explicit y = %+v, want it to override the merged one", y)
	}
}

func TestDefinitionErrors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		want  []DefinitionError // File, Line, Index, Trait and Field are compared
		inMsg string
	}{
		{
			name: "unknown plugin",
			yaml: "- event_type: x.*\n  traits:\n    a:\n      fields: payload.a\n      plugin: timedelta\n",
			want: []DefinitionError{{Line: 5, Index: 1, Trait: "a", Field: "plugin"}}, inMsg: `unknown trait plugin "timedelta"`,
		},
		{
			name: "bad path",
			yaml: "- event_type: x.*\n  traits:\n    a:\n      fields: payload.bogus(\n",
			want: []DefinitionError{{Line: 4, Index: 1, Trait: "a", Field: "fields"}}, inMsg: "parse error in JSONPath",
		},
		{
			name: "bad path in a list",
			yaml: "- event_type: x.*\n  traits:\n    a:\n      fields: [payload.a, 'payload..']\n",
			want: []DefinitionError{{Line: 4, Index: 1, Trait: "a", Field: "fields"}}, inMsg: "payload..",
		},
		{
			name: "bad type",
			yaml: "- event_type: x.*\n  traits:\n    a:\n      type: string\n      fields: payload.a\n",
			want: []DefinitionError{{Line: 4, Index: 1, Trait: "a", Field: "type"}}, inMsg: `invalid trait type "string"`,
		},
		{
			name: "every problem is reported",
			yaml: "- event_type: x.*\n  traits:\n    a:\n      type: bogus\n      fields: payload.a\n- event_type: y\n  traits:\n    b: payload.b\n    c:\n      plugin: {parameters: {}}\n      fields: c\n",
			want: []DefinitionError{
				{Line: 4, Index: 1, Trait: "a", Field: "type"},
				{Line: 8, Index: 2, Trait: "b"},
				{Line: 10, Index: 2, Trait: "c", Field: "plugin"},
			},
			inMsg: "no plugin name supplied",
		},
		{
			name: "missing traits", yaml: "- event_type: x\n",
			want: []DefinitionError{{Line: 1, Index: 1, Field: "traits"}}, inMsg: "required field traits",
		},
		{
			name: "missing event_type", yaml: "- traits: {}\n",
			want: []DefinitionError{{Line: 1, Index: 1, Field: "event_type"}}, inMsg: "required field event_type",
		},
		{
			name: "missing fields", yaml: "- event_type: x\n  traits:\n    a: {type: int}\n",
			want: []DefinitionError{{Line: 3, Index: 1, Trait: "a", Field: "fields"}}, inMsg: "'fields'",
		},
		{
			name: "unknown key", yaml: "- event_type: x\n  traits: {}\n  trait: {}\n",
			want: []DefinitionError{{Line: 3, Index: 1, Field: "trait"}}, inMsg: "unknown key",
		},
		{
			name: "bad plugin parameter", yaml: "- event_type: x\n  traits:\n    a:\n      fields: a\n      plugin: {name: split, parameters: {segment: one}}\n",
			want: []DefinitionError{{Line: 5, Index: 1, Trait: "a", Field: "plugin"}}, inMsg: "segment",
		},
		{
			name: "not a list", yaml: "event_type: x\n",
			want: []DefinitionError{{Line: 1}}, inMsg: "list of event definitions",
		},
		{
			name: "YAML syntax", yaml: "- event_type: x\n  traits: [\n",
			want: []DefinitionError{{Line: 2}}, inMsg: "yaml",
		},
		{
			name: "trait defined twice", yaml: "- event_type: x\n  traits:\n    a: {fields: a}\n    a: {fields: b}\n",
			want: []DefinitionError{{Line: 4, Index: 1, Field: "traits.a"}}, inMsg: `key defined more than once (first on line 3)`,
		},
		{
			name: "unknown plugin key", yaml: "- event_type: x\n  traits:\n    a:\n      fields: a\n      plugin:\n        name: split\n        params: {}\n",
			want: []DefinitionError{{Line: 7, Index: 1, Trait: "a", Field: "plugin.params"}}, inMsg: `unknown key (known keys: name, parameters)`,
		},
		{
			name: "misspelled key", yaml: "- event_type: x\n  traits:\n    a:\n      feilds: a\n",
			want:  []DefinitionError{{Line: 4, Index: 1, Trait: "a", Field: "feilds"}, {Line: 4, Index: 1, Trait: "a", Field: "fields"}},
			inMsg: `unknown key (did you mean fields?)`,
		},
		{
			name: "bad glob", yaml: "- event_type: 'x.[z-a]'\n  traits: {}\n",
			want: []DefinitionError{{Line: 1, Index: 1, Field: "event_type"}}, inMsg: "pattern",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDefinitions("defs.yaml", []byte(tc.yaml), nil)
			if err == nil {
				t.Fatalf("ParseDefinitions succeeded, want an error")
			}
			var got []DefinitionError
			collect := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				collect = j.Unwrap()
			}
			for _, e := range collect {
				var de *DefinitionError
				if !errors.As(e, &de) {
					t.Fatalf("error %v is not a *DefinitionError", e)
				}
				if de.File != "defs.yaml" {
					t.Errorf("error %v names file %q, want defs.yaml", de, de.File)
				}
				got = append(got, DefinitionError{Line: de.Line, Index: de.Index, Trait: de.Trait, Field: de.Field})
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b error) bool { return true })); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			if !strings.Contains(err.Error(), tc.inMsg) {
				t.Errorf("error %q does not mention %q", err, tc.inMsg)
			}
		})
	}
}

func TestEmptyDefinitions(t *testing.T) {
	for _, src := range []string{"", "---\n", "[]"} {
		defs, err := ParseDefinitions("e.yaml", []byte(src), nil)
		if err != nil || len(defs) != 0 {
			t.Errorf("ParseDefinitions(%q) = %v, %v; want no definitions", src, defs, err)
		}
	}
}
