package trigger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger/timex"
)

// definitionErrors flattens the joined error of Parse.
func definitionErrors(t *testing.T, err error) []*DefinitionError {
	t.Helper()
	var out []*DefinitionError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var de *DefinitionError
		if !errors.As(e, &de) {
			t.Fatalf("error %v (%T) is not a *DefinitionError", e, e)
		}
		out = append(out, de)
	}
	walk(err)
	return out
}

// problem is the comparable part of a DefinitionError.
type problem struct {
	Line    int
	Trigger string
	Field   string
	Msg     string // a substring of the message
}

const validTail = `
  expiration: $last + 1d
  fire_pipeline: p
  match_criteria:
  - event_type: test.*
  fire_criteria:
  - event_type: test.thing
`

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []problem
	}{
		{
			name: "missing name",
			yaml: "- expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: []\n",
			want: []problem{{Line: 1, Field: "name", Msg: "required field"}},
		},
		{
			name: "missing everything",
			yaml: "- {}\n",
			want: []problem{
				{Line: 1, Field: "name", Msg: "required field"},
				{Line: 1, Field: "expiration", Msg: "required field"},
				{Line: 1, Field: "fire_pipeline", Msg: "at least one of fire_pipeline or expire_pipeline"},
				{Line: 1, Field: "fire_criteria", Msg: "required criteria"},
				{Line: 1, Field: "match_criteria", Msg: "required criteria"},
			},
		},
		{
			name: "unknown key",
			yaml: "- name: t\n  fire_pipline: p" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "fire_pipline", Msg: "unknown key (did you mean fire_pipeline?)"}},
		},
		{
			name: "unknown key without a close match",
			yaml: "- name: t\n  owner: ops" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "owner", Msg: "unknown key (known keys: name, debug_level, distinguished_by"}},
		},
		{
			name: "unknown criteria key",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - event_type: a\n    trait: {x: 1}\n  fire_criteria: []\n",
			want: []problem{{Line: 6, Trigger: "t", Field: "match_criteria[0].trait", Msg: "unknown key (did you mean traits?)"}},
		},
		{
			name: "duplicate key",
			yaml: "- name: t\n  name: u" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "name", Msg: "more than once"}},
		},
		{
			name: "debug level not a number",
			yaml: "- name: t\n  debug_level: high" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "debug_level", Msg: `not "high"`}},
		},
		{
			name: "fractional debug level",
			yaml: "- name: t\n  debug_level: 1.5" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "debug_level", Msg: "must be an integer"}},
		},
		{
			name: "negative debug level",
			yaml: "- name: t\n  debug_level: -1" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "debug_level", Msg: "must be an integer"}},
		},
		{
			name: "distinguished_by string",
			yaml: "- name: t\n  distinguished_by: instance_id" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "distinguished_by", Msg: "not the string \"instance_id\""}},
		},
		{
			name: "empty distinguishing mapping",
			yaml: "- name: t\n  distinguished_by:\n  - instance_id\n  - {}" + validTail,
			want: []problem{{Line: 4, Trigger: "t", Field: "distinguished_by[1]", Msg: "exactly one trait"}},
		},
		{
			name: "two-key distinguishing mapping",
			yaml: "- name: t\n  distinguished_by:\n  - {a: day, b: day}" + validTail,
			want: []problem{{Line: 3, Trigger: "t", Field: "distinguished_by[0]", Msg: "exactly one trait"}},
		},
		{
			name: "duplicate distinguishing trait",
			yaml: "- name: t\n  distinguished_by:\n  - timestamp\n  - timestamp: day" + validTail,
			want: []problem{{Line: 4, Trigger: "t", Field: "distinguished_by[1]", Msg: "already distinguishes"}},
		},
		{
			name: "bad distinguishing expression",
			yaml: "- name: t\n  distinguished_by:\n  - timestamp: dya(" + validTail,
			want: []problem{{Line: 3, Trigger: "t", Field: "distinguished_by[0].timestamp", Msg: `time expression "dya("`}},
		},
		{
			name: "bad expiration",
			yaml: "- name: t\n  expiration: $last +\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: []\n",
			want: []problem{{Line: 2, Trigger: "t", Field: "expiration", Msg: `time expression "$last +"`}},
		},
		{
			name: "fire delay string",
			yaml: "- name: t\n  fire_delay: soon" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "fire_delay", Msg: "number of seconds"}},
		},
		{
			name: "negative fire delay",
			yaml: "- name: t\n  fire_delay: -5" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "fire_delay", Msg: "between 0"}},
		},
		{
			name: "empty pipelines",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: ''\n  expire_pipeline: ''\n  match_criteria: [{}]\n  fire_criteria: []\n",
			want: []problem{{Line: 1, Trigger: "t", Field: "fire_pipeline", Msg: "at least one"}},
		},
		{
			name: "numeric operator without space",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits:\n      memory_mb: {int: '>4096'}\n  fire_criteria: []\n",
			want: []problem{{Line: 6, Trigger: "t", Field: "match_criteria[0].traits.memory_mb", Msg: `invalid numeric criterion ">4096"`}},
		},
		{
			name: "empty match_criteria",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria: []\n  fire_criteria: []\n",
			want: []problem{{Line: 4, Trigger: "t", Field: "match_criteria", Msg: "empty: the trigger would never match an event"}},
		},
		{
			name: "unsupported operator",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria:\n  - traits:\n      memory_mb: {float: '>= 1.5'}\n",
			want: []problem{{Line: 7, Trigger: "t", Field: "fire_criteria[0].traits.memory_mb", Msg: `unsupported operator ">="`}},
		},
		{
			name: "decimal int operand",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits: {foo: {int: '3.5'}}\n  fire_criteria: []\n",
			want: []problem{{Line: 5, Trigger: "t", Field: "match_criteria[0].traits.foo", Msg: "invalid numeric criterion"}},
		},
		{
			name: "empty numeric",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits: {foo: {float: ''}}\n  fire_criteria: []\n",
			want: []problem{{Line: 5, Trigger: "t", Field: "match_criteria[0].traits.foo", Msg: "invalid numeric criterion"}},
		},
		{
			name: "unknown criterion type",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits:\n      foo: {bool: true}\n  fire_criteria: []\n",
			want: []problem{{Line: 6, Trigger: "t", Field: "match_criteria[0].traits.foo", Msg: `unknown criterion type "bool"`}},
		},
		{
			name: "two criterion types",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits:\n      foo: {int: '3', float: '3'}\n  fire_criteria: []\n",
			want: []problem{{Line: 6, Trigger: "t", Field: "match_criteria[0].traits.foo", Msg: "only exactly one type of match"}},
		},
		{
			name: "boolean constant",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits:\n      flag: true\n  fire_criteria: []\n",
			want: []problem{{Line: 6, Trigger: "t", Field: "match_criteria[0].traits.flag", Msg: "booleans are not trait values"}},
		},
		{
			name: "null constant",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits:\n      flag: null\n  fire_criteria: []\n",
			want: []problem{{Line: 6, Trigger: "t", Field: "match_criteria[0].traits.flag", Msg: "null can never match"}},
		},
		{
			name: "list constant",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits:\n      flag: [1, 2]\n  fire_criteria: []\n",
			want: []problem{{Line: 6, Trigger: "t", Field: "match_criteria[0].traits.flag", Msg: "a list can never equal"}},
		},
		{
			name: "bad datetime criterion",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits:\n      launched_at: {datetime: 'day('}\n  fire_criteria: []\n",
			want: []problem{{Line: 6, Trigger: "t", Field: "match_criteria[0].traits.launched_at.datetime", Msg: "time expression"}},
		},
		{
			name: "bad criteria timestamp",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - timestamp: day(\n  fire_criteria: []\n",
			want: []problem{{Line: 5, Trigger: "t", Field: "match_criteria[0].timestamp", Msg: "time expression"}},
		},
		{
			name: "negative number",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria:\n  - number: -1\n",
			want: []problem{{Line: 6, Trigger: "t", Field: "fire_criteria[0].number", Msg: "non-negative integer"}},
		},
		{
			name: "reversed range in pattern",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - event_type: [a.*, '![z-a]']\n  fire_criteria: []\n",
			want: []problem{{Line: 5, Trigger: "t", Field: "match_criteria[0].event_type[1]", Msg: "bad character range"}},
		},
		{
			name: "criteria not a list",
			yaml: "- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria: {event_type: a}\n  fire_criteria: []\n",
			want: []problem{{Line: 4, Trigger: "t", Field: "match_criteria", Msg: "must be a list of criteria"}},
		},
		{
			name: "alias and spelling both set",
			yaml: "- name: t\n  distinguished_by: [timestamp]\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - map_distinguished_by: {timestamp: a}\n    map_distingushed_by: {timestamp: b}\n  fire_criteria: []\n",
			want: []problem{{Line: 7, Trigger: "t", Field: "match_criteria[0].map_distingushed_by", Msg: "both"}},
		},
		{
			name: "duplicate trigger names",
			yaml: "- name: t" + validTail + "- name: t" + validTail,
			want: []problem{{Line: 8, Trigger: "t", Field: "name", Msg: "duplicate trigger name (first defined at line 1)"}},
		},
		{
			name: "problems of several triggers are all reported",
			yaml: "- name: a\n  debug_level: x" + validTail + "- name: b\n  fire_delay: x" + validTail,
			want: []problem{
				{Line: 2, Trigger: "a", Field: "debug_level", Msg: "must be an integer"},
				{Line: 10, Trigger: "b", Field: "fire_delay", Msg: "number of seconds"},
			},
		},
		{
			name: "not a list",
			yaml: "name: t\n",
			want: []problem{{Line: 1, Msg: "must be a list of trigger definitions"}},
		},
		{
			name: "definition not a mapping",
			yaml: "- t\n",
			want: []problem{{Line: 1, Msg: "must be a mapping"}},
		},
		{
			name: "invalid yaml",
			yaml: "- name: t\n  expiration: [\n",
			want: []problem{{Line: 2, Msg: "invalid YAML"}},
		},
		{
			name: "two documents",
			yaml: "- name: t" + validTail + "---\n- name: u" + validTail,
			want: []problem{{Line: 8, Msg: "more than one YAML document"}},
		},
		{
			name: "misspelled function in the expiration",
			yaml: "- name: t\n  expiration: dya($last) + 1d\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: []\n",
			want: []problem{{Line: 2, Trigger: "t", Field: "expiration", Msg: "unknown function dya (known: day, hour, month, year); did you mean day?"}},
		},
		{
			name: "misspelled variable in the expiration",
			yaml: "- name: t\n  expiration: $lsat + 1h\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: []\n",
			want: []problem{{Line: 2, Trigger: "t", Field: "expiration", Msg: "variable $lsat is not available here (available: $first, $last, $timestamp); did you mean $last?"}},
		},
		{
			name: "unknown function in distinguished_by",
			yaml: "- name: t\n  distinguished_by:\n  - timestamp: fortnight\n  expiration: $last + 1h\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: []\n",
			want: []problem{{Line: 3, Trigger: "t", Field: "distinguished_by[0].timestamp", Msg: "unknown function fortnight (known: day, hour, month, year)"}},
		},
		{
			name: "variable other than timestamp in distinguished_by",
			yaml: "- name: t\n  distinguished_by:\n  - timestamp: day($last)\n  expiration: $last + 1h\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: []\n",
			want: []problem{{Line: 3, Trigger: "t", Field: "distinguished_by[0].timestamp", Msg: "variable $last is not available here (available: $timestamp)"}},
		},
		{
			name: "unknown functions in criteria",
			yaml: "- name: t\n  expiration: $last + 1h\n  fire_pipeline: p\n  match_criteria:\n  - timestamp: wk\n  fire_criteria:\n  - traits: {when: {datetime: dy($launched_at)}}\n",
			want: []problem{
				{Line: 7, Trigger: "t", Field: "fire_criteria[0].traits.when.datetime", Msg: "unknown function dy (known: day, hour, month, year); did you mean day?"},
				{Line: 5, Trigger: "t", Field: "match_criteria[0].timestamp", Msg: "unknown function wk"},
			},
		},
		{
			name: "merged key misspelled",
			yaml: "- name: t\n  <<: {fire_dealy: 3}" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Field: "fire_dealy", Msg: "unknown key (did you mean fire_delay?)"}},
		},
		{
			name: "merge of a scalar",
			yaml: "- name: t\n  <<: 3" + validTail,
			want: []problem{{Line: 2, Trigger: "t", Msg: "a merge key (<<) takes a mapping"}},
		},
		{
			name: "trait criterion written twice",
			yaml: "- name: t" + validTail + "    traits: {a: 1, a: 2}\n",
			want: []problem{{Line: 8, Trigger: "t", Field: "fire_criteria[0].traits.a", Msg: "key defined more than once (first on line 8)"}},
		},
		{
			name: "alias inside its own anchor",
			yaml: "- &t\n  name: t\n  load_criteria: [*t]" + validTail,
			want: []problem{{Line: 3, Msg: "alias *t refers to a node that contains it"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			defs, _, err := Parse("triggers.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded with %d definitions, want errors %v", len(defs), tc.want)
			}
			if defs != nil {
				t.Errorf("Parse returned definitions with an error")
			}
			var got []problem
			for i, de := range definitionErrors(t, err) {
				if de.File != "triggers.yaml" {
					t.Errorf("error %d: File = %q, want triggers.yaml", i, de.File)
				}
				p := problem{Line: de.Line, Trigger: de.Trigger, Field: de.Field, Msg: de.Error()}
				if i < len(tc.want) && strings.Contains(p.Msg, tc.want[i].Msg) {
					p.Msg = tc.want[i].Msg
				}
				got = append(got, p)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefinitionErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *DefinitionError
		want string
	}{
		{
			name: "everything",
			err:  &DefinitionError{File: "etc/triggers.yaml", Line: 12, Trigger: "t", Field: "match_criteria[0].traits.x", Err: errors.New("bad")},
			want: `etc/triggers.yaml:12: trigger "t": match_criteria[0].traits.x: bad`,
		},
		{
			name: "no trigger name",
			err:  &DefinitionError{File: "triggers.yaml", Line: 3, Field: "name", Err: errors.New("required")},
			want: `triggers.yaml:3: name: required`,
		},
		{
			name: "no line",
			err:  &DefinitionError{File: "triggers.yaml", Err: errors.New("unreadable")},
			want: `triggers.yaml: unreadable`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseTimexErrorIsWrapped(t *testing.T) {
	t.Parallel()
	_, _, err := Parse("triggers.yaml", []byte("- name: t\n  expiration: 1h + $last\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: []\n"))
	var se *timex.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("Parse error = %v, want one wrapping a *timex.SyntaxError", err)
	}
	var de *DefinitionError
	if !errors.As(err, &de) || de.Field != "expiration" || de.Line != 2 {
		t.Fatalf("Parse error = %#v, want a DefinitionError for expiration at line 2", de)
	}
}

func TestParseMisspelledMapWarns(t *testing.T) {
	t.Parallel()
	src := `- name: test_trigger
  distinguished_by: [instance_id, {timestamp: day}]
  expiration: $last + 1h
  fire_pipeline: test_pipeline
  match_criteria:
  - event_type: [compute.instance.*, "!compute.instance.exists"]
  - event_type: compute.instance.exists
    map_distingushed_by:
      timestamp: audit_period_beginning
  fire_criteria:
  - event_type: compute.instance.exists
`
	defs, warns, err := Parse("triggers.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []Warning{{
		File: "triggers.yaml", Line: 8, Trigger: "test_trigger",
		Field: "match_criteria[1].map_distingushed_by",
		Msg:   "misspelled key: read as map_distinguished_by (please correct the spelling)",
	}}
	if diff := cmp.Diff(want, warns); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if got, want := warns[0].String(), `triggers.yaml:8: trigger "test_trigger": match_criteria[1].map_distingushed_by: misspelled`; !strings.HasPrefix(got, want) {
		t.Errorf("Warning.String() = %q, want prefix %q", got, want)
	}
	got := defs[0].MatchCriteria[1].MapDistinguishedBy
	if diff := cmp.Diff(map[string]string{"timestamp": "audit_period_beginning"}, got); diff != "" {
		t.Errorf("MapDistinguishedBy (-want +got):\n%s", diff)
	}
}

func TestParseUselessMappingWarns(t *testing.T) {
	t.Parallel()
	src := `- name: t
  distinguished_by: [instance_id]
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria:
  - map_distinguished_by: {tenant_id: project_id}
  fire_criteria:
  - map_distinguished_by: {instance_id: other}
`
	_, warns, err := Parse("triggers.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var got []string
	for _, w := range warns {
		got = append(got, w.Field+": "+w.Msg)
	}
	want := []string{
		`fire_criteria[0].map_distinguished_by.instance_id: has no effect outside match_criteria`,
		`match_criteria[0].map_distinguished_by.tenant_id: has no effect: "tenant_id" is not a distinguished_by trait`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestParseValues(t *testing.T) {
	t.Parallel()
	src := `- name: 2014-08-01
  debug_level: 2.0
  distinguished_by: [instance_id, {timestamp: day}]
  expiration: $last + 1h
  fire_delay: 1.5
  expire_pipeline: e
  match_criteria:
  - event_type: ["!*.exists"]
    traits:
      a: 3
      b: {int: "> -5"}
      c: {float: "3"}
      d: {string: "> a"}
      e: {int: 4096}
      f: {datetime: day}
      g: 2014-08-01T10:00:00Z
      h: {text: hello}
      i: 0x10
      j: .inf
      k: {float: 4}
      l: {int: 2.5}
  fire_criteria:
  - number: 0
`
	defs, _, err := Parse("triggers.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	d := defs[0]
	if d.Name != "2014-08-01" || d.DebugLevel != 2 || d.FireDelay != 1500*time.Millisecond || d.FirePipeline != "" || d.ExpirePipeline != "e" {
		t.Errorf("Parse = debug %d, delay %v, pipelines %q/%q", d.DebugLevel, d.FireDelay, d.FirePipeline, d.ExpirePipeline)
	}
	c := d.MatchCriteria[0]
	if diff := cmp.Diff([]string{"*"}, c.Include); diff != "" {
		t.Errorf("Include (-want +got):\n%s", diff)
	}
	type trait struct{ Trait, Kind, Op, Value string }
	var got []trait
	for _, tc := range c.Traits {
		v := tc.Value.Kind().String() + ":" + tc.Value.String()
		if tc.Expr != nil {
			v = "expr:" + tc.Expr.String()
		}
		got = append(got, trait{tc.Trait, tc.Kind.String(), tc.Op, v})
	}
	want := []trait{
		{"a", "equals", "", "int:3"},
		{"b", "int", ">", "int:-5"},
		{"c", "float", "=", "float:3.0"},
		{"d", "equals", "", "string:> a"},
		{"e", "int", "=", "int:4096"}, // a non-string operand is kept as written, with "="
		{"f", "datetime", "", "expr:day"},
		{"g", "equals", "", "datetime:2014-08-01T10:00:00"},
		{"h", "equals", "", "string:hello"},
		{"i", "equals", "", "int:16"},
		{"j", "equals", "", "float:+Inf"},
		{"k", "float", "=", "int:4"},
		{"l", "int", "=", "float:2.5"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trait criteria (-want +got):\n%s", diff)
	}
	if d.FireCriteria[0].Number != 0 {
		t.Errorf("Number = %d, want 0", d.FireCriteria[0].Number)
	}
	ev := stream.Event{Type: "compute.instance.update", Timestamp: time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)}
	if !d.ShouldFire([]stream.Event{ev}) {
		t.Errorf("ShouldFire with number 0 = false, want true")
	}
}

// Merge keys are resolved as in the other configuration files: the keys
// written in a mapping win over merged ones.
func TestParseMergeKeys(t *testing.T) {
	t.Parallel()
	src := `- &base
  name: base
  expiration: $last + 1d
  fire_delay: 3
  fire_pipeline: p
  match_criteria:
  - &crit {event_type: compute.*, traits: {state: active}}
  fire_criteria:
  - event_type: compute.instance.exists
- <<: *base
  name: derived
  fire_delay: 5
  match_criteria:
  - <<: *crit
    number: 2
`
	defs, _, err := Parse("triggers.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(defs) != 2 {
		t.Fatalf("Parse = %d definitions, want 2", len(defs))
	}
	d := defs[1]
	if d.Name != "derived" || d.FireDelay != 5*time.Second || d.FirePipeline != "p" || d.Expiration.String() != "$last + 1d" {
		t.Errorf("derived = name %q, fire_delay %v, fire_pipeline %q, expiration %v; want derived, 5s, p, $last + 1d",
			d.Name, d.FireDelay, d.FirePipeline, d.Expiration)
	}
	if len(d.MatchCriteria) != 1 || d.MatchCriteria[0].Number != 2 || len(d.MatchCriteria[0].Traits) != 1 ||
		d.MatchCriteria[0].Include[0] != "compute.*" {
		t.Errorf("derived match criteria = %+v, want the merged entry with number 2", d.MatchCriteria[0])
	}
	if len(d.FireCriteria) != 1 || d.FireCriteria[0].Include[0] != "compute.instance.exists" {
		t.Errorf("derived fire criteria = %+v, want the merged one", d.FireCriteria)
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "# nothing\n", "[]\n", "~\n"} {
		defs, warns, err := Parse("triggers.yaml", []byte(src))
		if err != nil || len(defs) != 0 || len(warns) != 0 {
			t.Errorf("Parse(%q) = %v, %v, %v, want nothing", src, defs, warns, err)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "triggers.yaml")
	if err := os.WriteFile(path, []byte("- name: t"+validTail), 0o600); err != nil {
		t.Fatal(err)
	}
	defs, _, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if len(defs) != 1 || defs[0].File != path || defs[0].Line != 1 {
		t.Errorf("Load(%s) = %+v, want one definition at %s:1", path, defs, path)
	}
	_, _, err = Load(filepath.Join(dir, "missing.yaml"))
	var de *DefinitionError
	if !errors.As(err, &de) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want a DefinitionError wrapping os.ErrNotExist", err)
	}
}

func TestParseAliasExpansionIsBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("- name: base\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria:\n  - &c\n    traits:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "      t%d: %d\n", i, i)
	}
	b.WriteString("- &d\n  name: d\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: [")
	for i := range 200 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*c")
	}
	b.WriteString("]\n")
	for range 200 {
		b.WriteString("- *d\n")
	}
	_, _, err := Parse("triggers.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Fatalf("Parse of an alias-expanding document: error = %v, want too complex", err)
	}
}

// Typed criteria whose operand is not a string compare with "=" and the
// operand as written, like the original's: numbers equal across int and
// float, never a string.
func TestTypedCriteriaNonStringOperand(t *testing.T) {
	t.Parallel()
	defs := mustParse(t, `- name: t
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria:
  - traits: {v: {int: 4}}
  - traits: {w: {float: 4}}
  - traits: {x: {int: 2.5}}
  fire_criteria: []
`)
	tests := []struct {
		name   string
		traits map[string]any
		want   bool
	}{
		{"int equals int", map[string]any{"v": 4}, true},
		{"int equals float", map[string]any{"v": 4.0}, true},
		{"int is not a string", map[string]any{"v": "4"}, false},
		{"int other value", map[string]any{"v": 5}, false},
		{"float operand 4 equals int", map[string]any{"w": 4}, true},
		{"float operand 4 equals float", map[string]any{"w": 4.0}, true},
		{"int operand 2.5 kept as a float", map[string]any{"x": 2.5}, true},
		{"int operand 2.5 is not 2", map[string]any{"x": 2}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := testEvent(t, "test.thing", "2014-08-01T00:00:00", tc.traits)
			_, got := defs[0].Match(ev)
			if got != tc.want {
				t.Errorf("Match(%v) = %v, want %v", tc.traits, got, tc.want)
			}
		})
	}
}
