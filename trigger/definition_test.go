package trigger

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger/timex"
)

func mustParse(t testing.TB, src string) []*Definition {
	t.Helper()
	defs, _, err := Parse("triggers.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return defs
}

// testEvent builds a normalised event; traits use the encoded forms of
// stream.NewEvent.
func testEvent(t testing.TB, typ, ts string, traits map[string]any) stream.Event {
	t.Helper()
	raw := map[string]any{"message_id": "m-" + typ + ts, "event_type": typ, "timestamp": ts}
	for k, v := range traits {
		raw[k] = v
	}
	ev, _, err := stream.NewEvent(raw)
	if err != nil {
		t.Fatalf("NewEvent: %v", err)
	}
	return ev
}

func dt(s string) map[string]any { return map[string]any{"$datetime": s} }

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := stream.ParseTime(s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// kinded renders distinguishing values with their kinds.
func kinded(m map[string]stream.Value) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.Kind().String() + ":" + v.String()
	}
	return out
}

const sampleTrigger = `- name: test_trigger
  distinguished_by: [instance_id, {timestamp: day}]
  expiration: $last + 1h
  fire_pipeline: test_pipeline
  match_criteria:
  - event_type: [compute.instance.*, "!compute.instance.exists"]
  - event_type: compute.instance.exists
    map_distinguished_by:
      timestamp: audit_period_beginning
  fire_criteria:
  - event_type: compute.instance.exists
`

func TestDefinitionMatchAndDistinguish(t *testing.T) {
	t.Parallel()
	sample := mustParse(t, sampleTrigger)[0]
	tests := []struct {
		name      string
		def       *Definition
		ev        stream.Event
		wantIndex int
		wantOK    bool
		wantDist  map[string]string
	}{
		{
			name:      "first entry and day range",
			def:       sample,
			ev:        testEvent(t, "compute.instance.update", "2014-08-01T10:20:30", map[string]any{"instance_id": "i-1"}),
			wantIndex: 0, wantOK: true,
			wantDist: map[string]string{"instance_id": "string:i-1", "timestamp": "timerange:[2014-08-01T00:00:00, 2014-08-02T00:00:00)"},
		},
		{
			name: "exclusion falls through to the mapped entry",
			def:  sample,
			ev: testEvent(t, "compute.instance.exists", "2014-08-02T00:05:00", map[string]any{
				"instance_id": "i-1", "audit_period_beginning": dt("2014-08-01T00:00:00"),
			}),
			wantIndex: 1, wantOK: true,
			wantDist: map[string]string{"instance_id": "string:i-1", "timestamp": "timerange:[2014-08-01T00:00:00, 2014-08-02T00:00:00)"},
		},
		{
			name:   "mapped source missing is no match",
			def:    sample,
			ev:     testEvent(t, "compute.instance.exists", "2014-08-02T00:05:00", map[string]any{"instance_id": "i-1"}),
			wantOK: false,
		},
		{
			name:   "distinguishing trait missing",
			def:    sample,
			ev:     testEvent(t, "compute.instance.update", "2014-08-01T10:20:30", nil),
			wantOK: false,
		},
		{
			name:   "null distinguishing trait is missing",
			def:    sample,
			ev:     testEvent(t, "compute.instance.update", "2014-08-01T10:20:30", map[string]any{"instance_id": nil}),
			wantOK: false,
		},
		{
			name:   "no criteria entry matches",
			def:    sample,
			ev:     testEvent(t, "image.upload", "2014-08-01T10:20:30", map[string]any{"instance_id": "i-1"}),
			wantOK: false,
		},
		{
			name:      "typed values are kept",
			def:       sample,
			ev:        testEvent(t, "compute.instance.update", "2014-08-01T10:20:30", map[string]any{"instance_id": 42}),
			wantIndex: 0, wantOK: true,
			wantDist: map[string]string{"instance_id": "int:42", "timestamp": "timerange:[2014-08-01T00:00:00, 2014-08-02T00:00:00)"},
		},
		{
			name: "expression on a string trait is no match",
			def: mustParse(t, `- name: t
  distinguished_by: [{launched_at: month}]
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria: [{}]
  fire_criteria: []
`)[0],
			ev:     testEvent(t, "a", "2014-08-01T10:20:30", map[string]any{"launched_at": "2014-03-01T00:00:00"}),
			wantOK: false,
		},
		{
			name: "timestamp result and envelope traits",
			def: mustParse(t, `- name: t
  distinguished_by: [event_type, {timestamp: "$timestamp @ 0m 0s 0us"}]
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria: [{}]
  fire_criteria: []
`)[0],
			ev:        testEvent(t, "a.b", "2014-08-01T10:20:30.5", nil),
			wantIndex: 0, wantOK: true,
			wantDist: map[string]string{"event_type": "string:a.b", "timestamp": "datetime:2014-08-01T10:00:00"},
		},
		{
			name: "no distinguishing traits",
			def: mustParse(t, `- name: t
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria: [{timestamp: "day($launched_at)"}]
  fire_criteria: []
`)[0],
			ev:        testEvent(t, "a", "2014-08-01T10:20:30", map[string]any{"launched_at": dt("2014-08-01T01:00:00")}),
			wantIndex: 0, wantOK: true,
			wantDist: map[string]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Match checks presence; Distinguish may still find no value
			// (an expression over a non-datetime): both together decide.
			idx, ok := tc.def.Match(tc.ev)
			var dist map[string]stream.Value
			if ok {
				dist, ok = tc.def.Distinguish(tc.ev, idx)
			}
			if ok != tc.wantOK || (ok && idx != tc.wantIndex) {
				t.Fatalf("Match+Distinguish = %d, %v, want %d, %v", idx, ok, tc.wantIndex, tc.wantOK)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tc.wantDist, kinded(dist)); diff != "" {
				t.Errorf("Distinguish (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefinitionExpire(t *testing.T) {
	t.Parallel()
	now := mustTime(t, "2014-08-01T12:00:00")
	first := mustTime(t, "2014-08-01T10:00:00")
	last := mustTime(t, "2014-08-01T11:00:00")
	tests := []struct {
		expiration string
		want       string
	}{
		{expiration: "$last + 1h", want: "2014-08-01T12:00:00"},
		{expiration: "$first + 2h", want: "2014-08-01T12:00:00"},
		{expiration: "$timestamp + 1d", want: "2014-08-02T12:00:00"},
		{expiration: "day($first) + 1d", want: "2014-08-02T00:00:00"},
	}
	for _, tc := range tests {
		t.Run(tc.expiration, func(t *testing.T) {
			t.Parallel()
			d := mustParse(t, fmt.Sprintf("- name: t\n  expiration: %q\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: []\n", tc.expiration))[0]
			got, err := d.Expire(now, first, last)
			if err != nil {
				t.Fatalf("Expire: %v", err)
			}
			if want := mustTime(t, tc.want); !got.Equal(want) {
				t.Errorf("Expire(%q) = %v, want %v", tc.expiration, got, want)
			}
		})
	}
	// An undefined variable is a load error now (TestParseErrors); a
	// calendar date that does not exist still fails at evaluation.
	t.Run("impossible date", func(t *testing.T) {
		t.Parallel()
		d := mustParse(t, "- name: t\n  expiration: $last + 1mo\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: []\n")[0]
		_, err := d.Expire(now, first, mustTime(t, "2014-01-31T00:00:00"))
		var ee *timex.EvalError
		if !errors.As(err, &ee) {
			t.Fatalf("Expire error = %v, want a *timex.EvalError", err)
		}
	})
}

func TestDefinitionFireCounts(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `- name: t
  expiration: $last + 1h
  fire_pipeline: p
  fire_delay: 60
  match_criteria: [{}]
  fire_criteria:
  - event_type: a.*
    number: 2
  - event_type: a.end
  - event_type: never
    number: 0
`)[0]
	steps := []struct {
		typ       string
		want      []int
		satisfied bool
	}{
		{typ: "b.start", want: []int{0, 0, 0}},
		{typ: "a.start", want: []int{1, 0, 0}},
		{typ: "a.end", want: []int{2, 1, 0}},  // one event counts for two criteria
		{typ: "a.more", want: []int{2, 1, 0}}, // capped at number
	}
	var counts []int
	var events []stream.Event
	for i, s := range steps {
		ev := testEvent(t, s.typ, "2014-08-01T10:00:00", nil)
		events = append(events, ev)
		counts = d.FireCounts(ev, counts)
		if diff := cmp.Diff(s.want, counts); diff != "" {
			t.Fatalf("step %d (%s): FireCounts (-want +got):\n%s", i, s.typ, diff)
		}
		want := s.want[0] >= 2 && s.want[1] >= 1
		if got := d.Satisfied(counts); got != want {
			t.Errorf("step %d: Satisfied(%v) = %v, want %v", i, counts, got, want)
		}
		if got := d.ShouldFire(events); got != want {
			t.Errorf("step %d: ShouldFire = %v, want %v", i, got, want)
		}
	}
	if got := d.Satisfied(nil); got {
		t.Errorf("Satisfied(nil) = true, want false")
	}
	now := mustTime(t, "2014-08-01T10:00:00")
	if got, want := d.FireAt(now), now.Add(time.Minute); !got.Equal(want) {
		t.Errorf("FireAt = %v, want %v", got, want)
	}
}

func TestCriteriaMatch(t *testing.T) {
	t.Parallel()
	crit := func(t *testing.T, entry string) *Criteria {
		t.Helper()
		return mustParse(t, "- name: t\n  expiration: $last + 1h\n  fire_pipeline: p\n  match_criteria:\n  - "+entry+"\n  fire_criteria: []\n")[0].MatchCriteria[0]
	}
	const ts = "2014-08-01T10:00:00"
	tests := []struct {
		name   string
		entry  string
		traits map[string]any
		want   bool
	}{
		{name: "int equals float", entry: "traits: {foo: 3}", traits: map[string]any{"foo": 3.0}, want: true},
		{name: "float equals int", entry: "traits: {foo: 3.0}", traits: map[string]any{"foo": 3}, want: true},
		{name: "int never equals string", entry: "traits: {foo: 3}", traits: map[string]any{"foo": "3"}, want: false},
		{name: "string never equals int", entry: "traits: {foo: '3'}", traits: map[string]any{"foo": 3}, want: false},
		{name: "int criterion on float", entry: "traits: {foo: {int: '> 3'}}", traits: map[string]any{"foo": 3.5}, want: true},
		{name: "float criterion on int", entry: "traits: {foo: {float: '< 3.5'}}", traits: map[string]any{"foo": 3}, want: true},
		{name: "numeric criterion on string", entry: "traits: {foo: {int: '> 3'}}", traits: map[string]any{"foo": "booga"}, want: false},
		{name: "numeric criterion on datetime", entry: "traits: {foo: {int: '> 3'}}", traits: map[string]any{"foo": dt(ts)}, want: false},
		{name: "large ints compare exactly", entry: "traits: {foo: {int: '> 9007199254740992'}}", traits: map[string]any{"foo": int64(9007199254740993)}, want: true},
		{name: "datetime constant", entry: "traits: {foo: 2014-08-01T10:00:00Z}", traits: map[string]any{"foo": dt(ts)}, want: true},
		{name: "datetime criterion on string", entry: "traits: {foo: {datetime: day}}", traits: map[string]any{"foo": ts}, want: false},
		{name: "envelope trait", entry: "traits: {event_type: a.b}", want: true},
		{name: "timestamp criterion with missing variable", entry: "timestamp: day($launched_at)", want: false},
		{name: "exclusion only", entry: "event_type: '!a.*'", want: false},
		{name: "exclusion does not hit", entry: "event_type: '!b.*'", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := crit(t, tc.entry)
			ev := testEvent(t, "a.b", ts, tc.traits)
			if got := c.Match(ev); got != tc.want {
				t.Errorf("criteria %q Match(%v) = %v, want %v", tc.entry, tc.traits, got, tc.want)
			}
		})
	}
}

func TestSet(t *testing.T) {
	t.Parallel()
	defs := mustParse(t, `- name: compute
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria: [{event_type: "compute.*"}]
  fire_criteria: []
- name: everything_but_exists
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria: [{event_type: "!*.exists"}]
  fire_criteria: []
- name: images_or_exists
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria: [{event_type: image.*}, {event_type: compute.instance.exists}]
  fire_criteria: []
- name: none
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria: [{event_type: nothing.at.all}]
  fire_criteria: []
`)
	s, err := NewSet(defs)
	if err != nil {
		t.Fatalf("NewSet: %v", err)
	}
	names := func(ds []*Definition) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.Name)
		}
		return out
	}
	tests := []struct {
		eventType string
		want      []string
	}{
		{eventType: "compute.instance.update", want: []string{"compute", "everything_but_exists"}},
		{eventType: "compute.instance.exists", want: []string{"compute", "images_or_exists"}},
		{eventType: "image.upload", want: []string{"everything_but_exists", "images_or_exists"}},
		{eventType: "volume.exists", want: []string{}},
	}
	// Concurrent lookups share the cache (run with -race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tc := range tests {
				s.Candidates(tc.eventType)
			}
		}()
	}
	wg.Wait()
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, names(s.Candidates(tc.eventType))); diff != "" {
			t.Errorf("Candidates(%q) (-want +got):\n%s", tc.eventType, diff)
		}
	}
	if d, ok := s.Lookup("images_or_exists"); !ok || d != defs[2] {
		t.Errorf("Lookup(images_or_exists) = %v, %v", d, ok)
	}
	if _, ok := s.Lookup("missing"); ok {
		t.Errorf("Lookup(missing) found a definition")
	}
	w := s.Without("compute")
	if diff := cmp.Diff([]string{"everything_but_exists", "images_or_exists", "none"}, names(w.Definitions())); diff != "" {
		t.Errorf("Without(compute) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"everything_but_exists"}, names(w.Candidates("compute.instance.update"))); diff != "" {
		t.Errorf("Without(compute).Candidates (-want +got):\n%s", diff)
	}
	if s.Len() != 4 || w.Len() != 3 {
		t.Errorf("Len = %d, %d, want 4, 3", s.Len(), w.Len())
	}
	_, err = NewSet([]*Definition{defs[0], defs[0]})
	var de *DefinitionError
	if !errors.As(err, &de) || de.Trigger != "compute" {
		t.Errorf("NewSet(duplicates) error = %v, want a DefinitionError naming compute", err)
	}
}
