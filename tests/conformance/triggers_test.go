package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
	"github.com/winchester-go/winchester/trigger/timex"
)

func init() { registerArea("triggers.yaml") }

// stricterAtLoad lists the cases the reference loads and then fails on at
// every evaluation, which this implementation refuses at load on purpose
// (winchester check must catch what fails at run time): each must fail
// to load with a *timex.NameError.
var stricterAtLoad = map[string]string{
	"expiration_unknown_variable_not_checked_at_load": "an expiration may use only $first, $last and $timestamp",
}

// TestTriggers runs triggers.yaml: one trigger definition per case, either
// valid (compared in its normalised rendering) or rejected with an error
// of the given kind.
func TestTriggers(t *testing.T) {
	runFile(t, "triggers.yaml", func(t *testing.T, c *vectorCase) {
		var in struct {
			Definition yaml.Node `yaml:"definition"`
		}
		c.decode(t, &in)
		n, noteOnly := c.outcome(t)
		var want struct {
			Valid      *bool     `yaml:"valid"`
			Error      string    `yaml:"error"`
			Normalized yaml.Node `yaml:"normalized"`
		}
		if !noteOnly {
			if err := n.Decode(&want); err != nil {
				t.Fatalf("decode outcome: %v", err)
			}
		}
		defs, err := parseTriggerDef(t, c.Name, &in.Definition)
		if noteOnly {
			return
		}
		if why, ok := stricterAtLoad[c.Name]; ok {
			var ne *timex.NameError
			if !errors.As(err, &ne) {
				t.Fatalf("Parse = %v, want a *timex.NameError at load (%s)", err, why)
			}
			return
		}
		if want.Valid == nil {
			t.Fatalf("outcome has no valid")
		}
		if !*want.Valid {
			if err == nil {
				t.Fatalf("Parse succeeded, want error %s", want.Error)
			}
			if got := loadErrorKind(t, err); got != want.Error {
				t.Fatalf("Parse error kind = %s (%v), want %s", got, err, want.Error)
			}
			return
		}
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if len(defs) != 1 {
			t.Fatalf("Parse returned %d definitions, want 1", len(defs))
		}
		var wantNorm any
		if err := want.Normalized.Decode(&wantNorm); err != nil {
			t.Fatalf("decode normalized: %v", err)
		}
		dropNullOps(wantNorm)
		if diff := cmp.Diff(wantNorm, normalizeDefinition(defs[0])); diff != "" {
			t.Errorf("normalized definition (-want +got):\n%s", diff)
		}
	})
}

// normalizeDefinition renders a definition the way the vectors show it
// (defaults filled in, criteria expanded), with the Go types a decoded
// vector has: int, float64, string, nil, []any and map[string]any.
func normalizeDefinition(d *trigger.Definition) any {
	dist := make([]any, len(d.DistinguishedBy))
	for i, e := range d.DistinguishedBy {
		if e.Expr == nil {
			dist[i] = e.Trait
		} else {
			dist[i] = map[string]any{e.Trait: e.Expr.String()}
		}
	}
	return map[string]any{
		"name":             d.Name,
		"debug_level":      d.DebugLevel,
		"distinguished_by": dist,
		"expiration":       d.Expiration.String(),
		"fire_delay":       fireDelaySeconds(d.FireDelay),
		"fire_pipeline":    nullableName(d.FirePipeline),
		"expire_pipeline":  nullableName(d.ExpirePipeline),
		"match_criteria":   normalizeCriteria(d.MatchCriteria),
		"fire_criteria":    normalizeCriteria(d.FireCriteria),
		"load_criteria":    normalizeCriteria(d.LoadCriteria),
	}
}

func normalizeCriteria(cs []*trigger.Criteria) []any {
	out := make([]any, len(cs))
	for i, c := range cs {
		var ts any
		if c.Timestamp != nil {
			ts = c.Timestamp.String()
		}
		traits := map[string]any{}
		for _, tc := range c.Traits {
			m := map[string]any{"kind": tc.Kind.String()}
			switch tc.Kind {
			case trigger.KindDatetime:
				m["expr"] = tc.Expr.String()
			case trigger.KindInt, trigger.KindFloat:
				m["op"] = tc.Op
				m["value"] = plainValue(tc.Value)
			default:
				m["value"] = plainValue(tc.Value)
			}
			traits[tc.Trait] = m
		}
		mapDist := map[string]any{}
		for k, v := range c.MapDistinguishedBy {
			mapDist[k] = v
		}
		out[i] = map[string]any{
			"include":              anyStrings(c.Include),
			"exclude":              anyStrings(c.Exclude),
			"number":               c.Number,
			"timestamp":            ts,
			"map_distinguished_by": mapDist,
			"traits":               traits,
		}
	}
	return out
}

func anyStrings(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// plainValue is a value as YAML decodes it (ints as int).
func plainValue(v stream.Value) any {
	if v.Kind() == stream.KindInt {
		return int(v.IntValue())
	}
	return v.Interface()
}

// fireDelaySeconds renders a duration as whole seconds when it is one.
func fireDelaySeconds(d time.Duration) any {
	if d%time.Second == 0 {
		return int(d / time.Second)
	}
	return d.Seconds()
}

func nullableName(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// dropNullOps removes "op: null" from the trait criteria of a normalised
// definition: an equality criterion has no operator, absent or null.
func dropNullOps(v any) {
	norm, ok := v.(map[string]any)
	if !ok {
		return
	}
	for _, key := range []string{"match_criteria", "fire_criteria", "load_criteria"} {
		list, _ := norm[key].([]any)
		for _, c := range list {
			cm, _ := c.(map[string]any)
			traits, _ := cm["traits"].(map[string]any)
			for _, tc := range traits {
				if m, ok := tc.(map[string]any); ok {
					if op, ok := m["op"]; ok && op == nil {
						delete(m, "op")
					}
				}
			}
		}
	}
}
