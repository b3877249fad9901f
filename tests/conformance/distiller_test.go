package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/stream"
)

func init() { registerArea("distiller.yaml") }

type distillerCase struct {
	Definitions  yaml.Node      `yaml:"definitions"`
	CatchAll     bool           `yaml:"catchall"`
	Notification map[string]any `yaml:"notification"`
}

type distillerOutcome struct {
	Event           map[string]any `yaml:"event"`
	Dropped         bool           `yaml:"dropped"`
	Reason          string         `yaml:"reason"`
	Error           bool           `yaml:"error"`
	DefinitionError bool           `yaml:"definition_error"`
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestDistiller(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	runFile(t, "distiller.yaml", func(t *testing.T, c *vectorCase) {
		var in distillerCase
		c.decode(t, &in)
		defsNode := &in.Definitions
		if defsNode.Kind == yaml.ScalarNode {
			defsNode = definitionSet(t, c.file, defsNode.Value)
		}
		defsYAML, err := yaml.Marshal(defsNode)
		if err != nil {
			t.Fatalf("re-encode definitions: %v", err)
		}
		outNode, noteOnly := c.outcome(t)
		var want distillerOutcome
		if err := outNode.Decode(&want); err != nil {
			t.Fatalf("decode outcome: %v", err)
		}

		defs, err := distiller.ParseDefinitions(c.Name+".yaml", defsYAML, nil)
		if want.DefinitionError {
			if err == nil {
				t.Fatalf("ParseDefinitions succeeded, want a definition error")
			}
			var de *distiller.DefinitionError
			if !errors.As(err, &de) {
				t.Fatalf("ParseDefinitions error %v is not a *DefinitionError", err)
			}
			t.Logf("definition error (as wanted): %v", err)
			return
		}
		if err != nil {
			t.Fatalf("ParseDefinitions: %v", err)
		}
		d := distiller.New(defs, distiller.Config{CatchAll: in.CatchAll, Clock: fixedClock(now)})
		ev, res, err := d.DistillMap(in.Notification)
		for _, f := range res.Failed {
			t.Logf("omitted: %v", f)
		}
		if noteOnly {
			t.Logf("defect documented only; distilled without a crash: event=%v err=%v", ev, err)
			return
		}
		switch {
		case want.Event != nil:
			if err != nil {
				t.Fatalf("DistillMap: %v, want an event", err)
			}
			raw := want.Event
			if raw[stream.KeyTimestamp] == "<now>" {
				raw[stream.KeyTimestamp] = stream.FormatTime(now)
			}
			wantEv, dropped, err := stream.NewEvent(raw)
			if err != nil || len(dropped) > 0 {
				t.Fatalf("expected event does not normalise: %v %v", err, dropped)
			}
			if diff := cmp.Diff(wantEv.Map(), ev.Map()); diff != "" {
				t.Errorf("event mismatch (-want +got):\n%s", diff)
			}
		case want.Dropped || want.Error:
			var de *distiller.DropError
			if !errors.As(err, &de) {
				t.Fatalf("DistillMap = %v, %v; want the notification dropped", ev, err)
			}
			if want.Reason != "" && de.Reason.String() != want.Reason {
				t.Errorf("drop reason = %s, want %s (%v)", de.Reason, want.Reason, err)
			}
		default:
			t.Fatalf("outcome has no event, dropped, error or definition_error")
		}
	})
}

// definitionSet returns a named entry of the file's definition_sets.
func definitionSet(t *testing.T, vf *vectorFile, name string) *yaml.Node {
	t.Helper()
	sets := &vf.DefinitionSets
	for i := 0; i+1 < len(sets.Content); i += 2 {
		if sets.Content[i].Value == name {
			return sets.Content[i+1]
		}
	}
	t.Fatalf("definition set %q not found", name)
	return nil
}
