package conformance

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
	"github.com/winchester-go/winchester/trigger/timex"
)

func init() { registerArea("criteria.yaml") }

// TestCriteria runs criteria.yaml: criteria entries against single events,
// fire criteria against lists of events, and whole triggers against events.
func TestCriteria(t *testing.T) {
	runFile(t, "criteria.yaml", func(t *testing.T, c *vectorCase) {
		switch k := c.kind(t); k {
		case "criteria_match":
			runCriteriaMatch(t, c)
		case "should_fire":
			runShouldFire(t, c)
		case "trigger_match":
			runTriggerMatch(t, c)
		default:
			t.Fatalf("case %s: unknown kind %q", c.Name, k)
		}
	})
}

// criteriaOutcome is the union of the outcomes of criteria.yaml.
type criteriaOutcome struct {
	Match                *bool          `yaml:"match"`
	Fire                 *bool          `yaml:"fire"`
	Matched              *bool          `yaml:"matched"`
	CriteriaIndex        int            `yaml:"criteria_index"`
	DistinguishingTraits map[string]any `yaml:"distinguishing_traits"`
	Error                string         `yaml:"error"`
}

func decodeCriteriaOutcome(t *testing.T, c *vectorCase) (criteriaOutcome, bool) {
	t.Helper()
	n, noteOnly := c.outcome(t)
	var out criteriaOutcome
	if !noteOnly {
		if err := n.Decode(&out); err != nil {
			t.Fatalf("decode outcome: %v", err)
		}
	}
	return out, noteOnly
}

// parseTriggerDef parses one trigger definition given as a YAML value.
func parseTriggerDef(t *testing.T, name string, def any) ([]*trigger.Definition, error) {
	t.Helper()
	data, err := yaml.Marshal([]any{def})
	if err != nil {
		t.Fatalf("marshal definition: %v", err)
	}
	defs, _, err := trigger.Parse(name+".yaml", data)
	return defs, err
}

// wrapCriteria builds a trigger around a criteria entry or list.
func wrapCriteria(match, fire any) map[string]any {
	return map[string]any{
		"name":           "test_trigger",
		"expiration":     "$last + 1d",
		"fire_pipeline":  "test_pipeline",
		"match_criteria": match,
		"fire_criteria":  fire,
	}
}

// loadErrorKind classifies a load error as the vectors do: "timex" when an
// embedded expression failed to parse, "definition" otherwise.
func loadErrorKind(t *testing.T, err error) string {
	t.Helper()
	var de *trigger.DefinitionError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *trigger.DefinitionError", err, err)
	}
	var se *timex.SyntaxError
	if errors.As(err, &se) {
		return "timex"
	}
	return "definition"
}

// vectorEvent normalises a vector event, giving it a message id when it has
// none (criteria vectors omit them).
func vectorEvent(t *testing.T, raw map[string]any, i int) stream.Event {
	t.Helper()
	if _, ok := raw[stream.KeyMessageID]; !ok {
		raw[stream.KeyMessageID] = fmt.Sprintf("msg-%04d", i+1)
	}
	ev, _, err := stream.NewEvent(raw)
	if err != nil {
		t.Fatalf("event %d: %v", i, err)
	}
	return ev
}

func runCriteriaMatch(t *testing.T, c *vectorCase) {
	var in struct {
		Criteria yaml.Node      `yaml:"criteria"`
		Event    map[string]any `yaml:"event"`
	}
	c.decode(t, &in)
	want, noteOnly := decodeCriteriaOutcome(t, c)
	defs, err := parseTriggerDef(t, c.Name, wrapCriteria([]any{&in.Criteria}, []any{}))
	if err != nil {
		if noteOnly {
			return
		}
		if want.Error == "" {
			t.Fatalf("Parse: %v, want a valid definition", err)
		}
		if got := loadErrorKind(t, err); got != want.Error {
			t.Fatalf("Parse error kind = %s (%v), want %s", got, err, want.Error)
		}
		return
	}
	if want.Error != "" {
		t.Fatalf("Parse succeeded, want error %s", want.Error)
	}
	ev := vectorEvent(t, in.Event, 0)
	got := defs[0].MatchCriteria[0].Match(ev)
	if _, ok := defs[0].Match(ev); ok != got {
		t.Errorf("Definition.Match = %v, Criteria.Match = %v: they disagree", ok, got)
	}
	if noteOnly {
		return
	}
	if want.Match == nil {
		t.Fatalf("outcome has neither match nor error")
	}
	if got != *want.Match {
		t.Errorf("Match(%v) = %v, want %v", in.Event, got, *want.Match)
	}
}

func runShouldFire(t *testing.T, c *vectorCase) {
	var in struct {
		FireCriteria yaml.Node        `yaml:"fire_criteria"`
		Events       []map[string]any `yaml:"events"`
	}
	c.decode(t, &in)
	want, noteOnly := decodeCriteriaOutcome(t, c)
	defs, err := parseTriggerDef(t, c.Name, wrapCriteria([]any{map[string]any{}}, &in.FireCriteria))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	d := defs[0]
	events := make([]stream.Event, len(in.Events))
	for i, raw := range in.Events {
		events[i] = vectorEvent(t, raw, i)
	}
	got := d.ShouldFire(events)
	// The incremental form must agree with the whole-stream one.
	var counts []int
	for _, ev := range events {
		counts = d.FireCounts(ev, counts)
	}
	if inc := d.Satisfied(counts); inc != got {
		t.Errorf("Satisfied(FireCounts) = %v, ShouldFire = %v", inc, got)
	}
	if noteOnly {
		return
	}
	if want.Fire == nil {
		t.Fatalf("outcome has no fire")
	}
	if got != *want.Fire {
		t.Errorf("ShouldFire = %v, want %v", got, *want.Fire)
	}
}

func runTriggerMatch(t *testing.T, c *vectorCase) {
	var in struct {
		Trigger yaml.Node      `yaml:"trigger"`
		Event   map[string]any `yaml:"event"`
	}
	c.decode(t, &in)
	want, noteOnly := decodeCriteriaOutcome(t, c)
	defs, err := parseTriggerDef(t, c.Name, &in.Trigger)
	if err != nil {
		if want.Error != "" && !noteOnly {
			if got := loadErrorKind(t, err); got != want.Error {
				t.Fatalf("Parse error kind = %s (%v), want %s", got, err, want.Error)
			}
			return
		}
		t.Fatalf("Parse: %v", err)
	}
	d := defs[0]
	ev := vectorEvent(t, in.Event, 0)
	idx, ok := d.Match(ev)
	var dist map[string]stream.Value
	if ok {
		dist, ok = d.Distinguish(ev, idx)
	}
	if noteOnly {
		return
	}
	if want.Error != "" {
		t.Fatalf("want error %s, got matched=%v", want.Error, ok)
	}
	if want.Matched == nil {
		t.Fatalf("outcome has no matched")
	}
	if ok != *want.Matched {
		t.Fatalf("matched = %v (criteria %d, traits %v), want %v", ok, idx, dist, *want.Matched)
	}
	if !ok {
		return
	}
	if idx != want.CriteriaIndex {
		t.Errorf("criteria_index = %d, want %d", idx, want.CriteriaIndex)
	}
	if diff := cmp.Diff(kindedTraits(t, want.DistinguishingTraits), kindedValues(dist)); diff != "" {
		t.Errorf("distinguishing traits (-want +got):\n%s", diff)
	}
}

// kindedTraits renders expected distinguishing traits as kindedValues
// does.
func kindedTraits(t *testing.T, raw map[string]any) map[string]string {
	t.Helper()
	out := make(map[string]string, len(raw))
	for k, x := range raw {
		v, err := stream.ValueOf(x)
		if err != nil {
			t.Fatalf("expected distinguishing trait %s: %v", k, err)
		}
		out[k] = kindedValue(v)
	}
	return out
}

// kindedValues renders each value with its kind.
func kindedValues(vals map[string]stream.Value) map[string]string {
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		out[k] = kindedValue(v)
	}
	return out
}

// kindedValue renders a value with its kind, so that 42 and "42" differ.
func kindedValue(v stream.Value) string {
	return v.Kind().String() + ":" + v.String()
}
