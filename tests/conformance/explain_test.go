package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/explain"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// TestExplainCriteria checks the explanations against the trigger_match
// and should_fire cases of criteria.yaml: an event's explanation says
// matched, with the expected criteria entry and distinguishing traits, or
// gives a reason; a stream's explanation has every fire criterion met
// exactly when the stream should fire, and says what it waits for when
// it should not. Each case is explained without a store and through a
// store (the event given, the stream ingested by the manager), against
// every store. The other kinds of the file are TestCriteria's alone.
func TestExplainCriteria(t *testing.T) {
	dir(t) // skip before opening stores when the vectors are absent
	for _, so := range storeOpeners {
		t.Run(so.name, func(t *testing.T) {
			store := so.open(t)
			n := 0
			runFile(t, "criteria.yaml", func(t *testing.T, c *vectorCase) {
				n++
				// One store serves every case: each case's trigger gets a
				// name of its own, so cases do not share streams.
				name := fmt.Sprintf("case_%03d", n)
				switch c.kind(t) {
				case "trigger_match":
					explainTriggerMatch(t, c, store, name)
				case "should_fire":
					explainShouldFire(t, c, store, name)
				default:
					t.Skip("not a case of matching or firing: TestCriteria runs it")
				}
			})
		})
	}
}

// caseDefinition parses a case's trigger and gives it the name of the case.
func caseDefinition(t *testing.T, c *vectorCase, def any, name string) (*trigger.Definition, error) {
	t.Helper()
	defs, err := parseTriggerDef(t, c.Name, def)
	if err != nil {
		return nil, err
	}
	defs[0].Name = name
	return defs[0], nil
}

func explainTriggerMatch(t *testing.T, c *vectorCase, store db.Store, name string) {
	var in struct {
		Trigger yaml.Node      `yaml:"trigger"`
		Event   map[string]any `yaml:"event"`
	}
	c.decode(t, &in)
	want, noteOnly := decodeCriteriaOutcome(t, c)
	d, err := caseDefinition(t, c, &in.Trigger, name)
	if err != nil {
		return // a definition error: nothing to explain (TestCriteria checks it)
	}
	ev := vectorEvent(t, in.Event, 0)
	ev.MessageID = name + "-" + ev.MessageID
	pure := explain.MatchOf(d, ev)

	x := explain.New(store, staticTriggers{d}, explain.Config{Clock: fixedNow(ev.Timestamp)})
	given, err := x.GivenEvent(t.Context(), ev)
	if err != nil {
		t.Fatalf("GivenEvent: %v", err)
	}
	if len(given.Triggers) != 1 {
		t.Fatalf("GivenEvent explained %d triggers, want 1", len(given.Triggers))
	}
	viaStore := given.Triggers[0]
	if viaStore.Matched != pure.Matched || viaStore.Reason != pure.Reason {
		t.Errorf("through the store: matched %v (%q), without: %v (%q)", viaStore.Matched, viaStore.Reason, pure.Matched, pure.Reason)
	}
	if noteOnly {
		return
	}
	if want.Matched == nil {
		t.Fatalf("outcome has no matched")
	}
	if pure.Matched != *want.Matched {
		t.Fatalf("explained matched = %v (reason %q), want %v", pure.Matched, pure.Reason, *want.Matched)
	}
	if !pure.Matched {
		if pure.Reason == "" {
			t.Errorf("no reason given for the mismatch")
		}
		if viaStore.Stream != nil {
			t.Errorf("a stream is named for an event that does not match: %+v", viaStore.Stream)
		}
		return
	}
	if pure.Reason != "" {
		t.Errorf("reason %q given for a match", pure.Reason)
	}
	if pure.CriteriaIndex == nil || *pure.CriteriaIndex != want.CriteriaIndex {
		t.Errorf("explained criteria_index = %v, want %d", pure.CriteriaIndex, want.CriteriaIndex)
	}
	if diff := cmp.Diff(kindedTraits(t, want.DistinguishingTraits), kindedValues(pure.DistinguishedBy)); diff != "" {
		t.Errorf("explained distinguishing traits (-want +got):\n%s", diff)
	}
	if pure.Key != stream.Key(pure.DistinguishedBy) {
		t.Errorf("key %q is not the key of the distinguishing traits", pure.Key)
	}
	if viaStore.Stream == nil || !viaStore.Stream.New {
		t.Errorf("in an empty store the event would start a new stream; explained %+v", viaStore.Stream)
	}
}

func explainShouldFire(t *testing.T, c *vectorCase, store db.Store, name string) {
	var in struct {
		FireCriteria yaml.Node        `yaml:"fire_criteria"`
		Events       []map[string]any `yaml:"events"`
	}
	c.decode(t, &in)
	want, noteOnly := decodeCriteriaOutcome(t, c)
	d, err := caseDefinition(t, c, wrapCriteria([]any{map[string]any{}}, &in.FireCriteria), name)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	events := make([]stream.Event, len(in.Events))
	var earliest time.Time
	for i, raw := range in.Events {
		events[i] = vectorEvent(t, raw, i)
		events[i].MessageID = name + "-" + events[i].MessageID
		if i == 0 || events[i].Timestamp.Before(earliest) {
			earliest = events[i].Timestamp
		}
	}
	if noteOnly {
		return
	}
	if want.Fire == nil {
		t.Fatalf("outcome has no fire")
	}
	fire := *want.Fire

	// Without a store: a stream holding the events, not yet ready.
	s := stream.Stream{ID: 1, Name: name, State: stream.StateActive, Open: true}
	checkFireExplanation(t, "without a store", explain.StreamOf(s, events, d, earliest), fire, false)
	if len(events) == 0 {
		return
	}

	// Through the store: the manager puts the events into one stream (its
	// clock at the earliest event, so the stream does not expire between
	// them) and the explainer reads it back.
	clock := fixedNow(earliest)
	mgr, err := trigger.NewManager(store, []*trigger.Definition{d}, trigger.ManagerConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	res, err := mgr.AddEvents(t.Context(), events)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Outcome != trigger.Stored {
			t.Fatalf("event %s: %s %s", r.MessageID, r.Outcome, r.Reason)
		}
	}
	found, err := store.FindStreams(t.Context(), db.FindStreamsParams{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("%d streams of %s, want 1", len(found), name)
	}
	x, err := explain.New(store, staticTriggers{d}, explain.Config{Clock: clock}).Stream(t.Context(), found[0].Stream.ID)
	if err != nil {
		t.Fatal(err)
	}
	if x.Events != len(events) {
		t.Errorf("explained %d events, want %d", x.Events, len(events))
	}
	checkFireExplanation(t, "through the store", x, fire, true)
}

// checkFireExplanation checks that a stream's explanation agrees with
// whether it should fire. stored says the manager wrote the stream (it then
// has a fire time exactly when it should fire).
func checkFireExplanation(t *testing.T, how string, x explain.Stream, fire, stored bool) {
	t.Helper()
	met := true
	for _, fc := range x.FireCriteria {
		if fc.Met != (fc.Has >= fc.Needs) {
			t.Errorf("%s: criterion %d: met %v with %d of %d", how, fc.Index, fc.Met, fc.Has, fc.Needs)
		}
		met = met && fc.Met
	}
	if met != fire {
		t.Errorf("%s: every fire criterion met = %v, want fire %v: %+v", how, met, fire, x.FireCriteria)
	}
	if waiting := strings.HasPrefix(x.Left, "waiting for "); waiting == fire {
		t.Errorf("%s: left %q, want fire %v", how, x.Left, fire)
	}
	if stored && (x.Fire != nil) != fire {
		t.Errorf("%s: fire time %+v, want fire %v", how, x.Fire, fire)
	}
}

// staticTriggers is a fixed list of definitions (explain.Triggers).
type staticTriggers []*trigger.Definition

func (s staticTriggers) Definitions() []*trigger.Definition { return s }

// fixedNow is a clock stopped at one time.
type fixedNow time.Time

func (f fixedNow) Now() time.Time { return time.Time(f) }
