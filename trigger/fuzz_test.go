package trigger

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/stream"
)

// fuzzEvents are matched against every definition a fuzz input yields.
var fuzzEvents = []map[string]any{
	{"message_id": "m1", "event_type": "compute.instance.update", "timestamp": "2014-08-01T10:00:00",
		"instance_id": "i-1", "memory_mb": 4096, "launched_at": map[string]any{"$datetime": "2014-08-01T09:00:00"}},
	{"message_id": "m2", "event_type": "test.thing", "timestamp": "2014-08-01T10:00:00", "foo": 3.5, "bar": "x"},
}

// FuzzParse checks that no input makes Parse panic, that every error is a
// *DefinitionError, and that what loads can be evaluated.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sampleTrigger))
	f.Add([]byte("- name: t" + validTail))
	f.Add([]byte("- name: t\n  expiration: $last + 1d\n  fire_pipeline: p\n  match_criteria:\n  - traits: {a: {int: '> 3'}, b: {datetime: day}, c: 2014-01-01}\n  fire_criteria: [{number: 2}]\n"))
	f.Add([]byte("- &a {name: t}\n- *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, _, err := Parse("fuzz.yaml", data)
		checkParsed(t, defs, err)
	})
}

// FuzzLoad checks that loading a file agrees with parsing its content.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(sampleTrigger))
	f.Add([]byte("- name: t\n  debug_level: '1'" + validTail))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "triggers.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		defs, warns, err := Load(path)
		checkParsed(t, defs, err)
		pdefs, pwarns, perr := Parse(path, data)
		if (err == nil) != (perr == nil) || len(defs) != len(pdefs) || len(warns) != len(pwarns) {
			t.Fatalf("Load = %d defs, %v; Parse = %d defs, %v", len(defs), err, len(pdefs), perr)
		}
		if err != nil && err.Error() != perr.Error() {
			t.Fatalf("Load error %q differs from Parse error %q", err, perr)
		}
	})
}

func checkParsed(t *testing.T, defs []*Definition, err error) {
	t.Helper()
	if err != nil {
		if defs != nil {
			t.Fatalf("Parse returned definitions and an error")
		}
		var de *DefinitionError
		if !errors.As(err, &de) {
			t.Fatalf("error %v (%T) is not a *DefinitionError", err, err)
		}
		if strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("empty error message")
		}
		return
	}
	if _, err := NewSet(defs); err != nil {
		t.Fatalf("NewSet of parsed definitions: %v", err)
	}
	now := time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)
	for _, d := range defs {
		if d.Name == "" || d.Expiration == nil || (d.FirePipeline == "" && d.ExpirePipeline == "") {
			t.Fatalf("incomplete definition %+v", d)
		}
		for _, c := range append(append(append([]*Criteria{}, d.MatchCriteria...), d.FireCriteria...), d.LoadCriteria...) {
			if len(c.Include) == 0 || len(c.types.Include) != len(c.Include) || len(c.types.Exclude) != len(c.Exclude) || c.Number < 0 {
				t.Fatalf("inconsistent criteria %+v", c)
			}
		}
		_, _ = d.Expire(now, now, now)
		var events []stream.Event
		for _, raw := range fuzzEvents {
			ev, _, err := stream.NewEvent(raw)
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, ev)
			i, ok := d.Match(ev)
			if ok {
				d.Distinguish(ev, i)
			}
			if reasons := d.ExplainMatch(ev); ok != (reasons == nil) {
				t.Fatalf("Match = %v but ExplainMatch = %q", ok, reasons)
			}
			for _, c := range d.FireCriteria {
				if c.Match(ev) != (c.Explain(ev) == "") {
					t.Fatalf("Criteria.Match and Explain disagree on %v", ev)
				}
			}
		}
		d.ShouldFire(events)
	}
}
