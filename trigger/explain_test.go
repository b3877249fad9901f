package trigger

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExplainMatch(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `- name: t
  distinguished_by: [instance_id]
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria:
  - event_type: compute.*
    timestamp: day($launched_at)
    traits:
      memory_mb: {int: "> 1024"}
      state: active
      deleted_at: {datetime: "$launched_at to $launched_at + 1d"}
  - event_type: image.*
  fire_criteria:
  - number: 2
`)[0]
	const ts = "2014-08-01T10:00:00"
	launched := dt("2014-08-01T09:00:00")
	full := map[string]any{"instance_id": "i-1", "launched_at": launched, "memory_mb": 2048, "state": "active", "deleted_at": dt(ts)}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k2, v2 := range full {
			m[k2] = v2
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		typ    string
		ts     string
		traits map[string]any
		want   []string
	}{
		{name: "matches", typ: "compute.x", ts: ts, traits: full, want: nil},
		{name: "wrong type", typ: "volume.x", ts: ts, traits: full, want: []string{"Wrong event type", "Wrong event type", "No matching criteria"}},
		{name: "no referenced trait", typ: "compute.x", ts: ts, traits: with("launched_at", nil), want: []string{"Time: no referenced trait", "Wrong event type", "No matching criteria"}},
		{name: "not time yet", typ: "compute.x", ts: "2014-08-02T10:00:00", traits: full, want: []string{"Not time yet.", "Wrong event type", "No matching criteria"}},
		{name: "missing trait", typ: "compute.x", ts: ts, traits: with("memory_mb", nil), want: []string{"not memory_mb", "Wrong event type", "No matching criteria"}},
		{name: "greater failed", typ: "compute.x", ts: ts, traits: with("memory_mb", 512), want: []string{"> failed", "Wrong event type", "No matching criteria"}},
		{name: "equality failed", typ: "compute.x", ts: ts, traits: with("state", "deleted"), want: []string{"== failed", "Wrong event type", "No matching criteria"}},
		{name: "datetime missing", typ: "compute.x", ts: ts, traits: with("deleted_at", nil), want: []string{"Time: not 'deleted_at'", "Wrong event type", "No matching criteria"}},
		{name: "not in timerange", typ: "compute.x", ts: ts, traits: with("deleted_at", dt("2014-08-05T00:00:00")), want: []string{"Not in timerange", "Wrong event type", "No matching criteria"}},
		{name: "distinguishing trait missing", typ: "image.x", ts: ts, traits: nil, want: []string{"Wrong event type", "not 'instance_id'"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := testEvent(t, tc.typ, tc.ts, tc.traits)
			got := d.ExplainMatch(ev)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ExplainMatch (-want +got):\n%s", diff)
			}
			if _, ok := d.Match(ev); ok != (got == nil) {
				t.Errorf("Match = %v but ExplainMatch = %q", ok, got)
			}
		})
	}
	if got := d.ExplainFire([]int{1}); got != ReasonNotEnoughCriteria {
		t.Errorf("ExplainFire([1]) = %q, want %q", got, ReasonNotEnoughCriteria)
	}
	if got := d.ExplainFire([]int{2}); got != "" {
		t.Errorf("ExplainFire([2]) = %q, want empty", got)
	}
}

func TestWhyNot(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `- name: t
  distinguished_by: [instance_id]
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria:
  - event_type: compute.*
    traits:
      memory_mb: {int: "> 1024"}
      state: active
      launched_at: {datetime: "$timestamp - 1d to $timestamp"}
  - event_type: image.*
  fire_criteria:
  - number: 2
`)[0]
	const ts = "2014-08-01T10:00:00"
	tests := []struct {
		name      string
		typ       string
		traits    map[string]any
		matched   bool
		index     int
		reason    string
		trait     string
		criterion int
		value     string
		detail    string
	}{
		{name: "matches", typ: "compute.x", traits: map[string]any{"instance_id": "i", "memory_mb": 2048, "state": "active", "launched_at": dt("2014-08-01T09:00:00")},
			matched: true, index: 0},
		{name: "wrong type", typ: "volume.x", index: -1, reason: ReasonWrongEventType, criterion: -1,
			detail: `criteria 0: wrong event type: "volume.x" is not compute.*`},
		{name: "missing trait", typ: "compute.x", traits: map[string]any{"instance_id": "i"}, index: -1,
			reason: "not memory_mb", trait: "memory_mb", criterion: 0,
			detail: `criteria 0: missing trait "memory_mb" (trait criterion memory_mb > 1024 (int))`},
		{name: "comparison failed with the value", typ: "compute.x", traits: map[string]any{"instance_id": "i", "memory_mb": 512}, index: -1,
			reason: "> failed", trait: "memory_mb", criterion: 0, value: "512",
			detail: `criteria 0: trait criterion memory_mb > 1024 (int) failed: the event has 512 (int)`},
		{name: "equality failed with the value", typ: "compute.x", traits: map[string]any{"instance_id": "i", "memory_mb": 2048, "state": "deleted"}, index: -1,
			reason: "== failed", trait: "state", criterion: 1, value: "deleted",
			detail: `criteria 0: trait criterion state == "active" failed: the event has "deleted"`},
		{name: "datetime of another type", typ: "compute.x", traits: map[string]any{"instance_id": "i", "memory_mb": 2048, "state": "active", "launched_at": "yesterday"}, index: -1,
			reason: ReasonNotInTimerange, trait: "launched_at", criterion: 2, value: "yesterday",
			detail: `criteria 0: trait criterion launched_at in $timestamp - 1d to $timestamp failed: the event has the string "yesterday", not a datetime`},
		{name: "distinguishing trait missing", typ: "image.x", index: 1, reason: "not 'instance_id'", trait: "instance_id", criterion: -1,
			detail: `match criteria 1: the event has no distinguishing trait "instance_id"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := testEvent(t, tc.typ, ts, tc.traits)
			w := d.WhyNot(ev)
			if _, ok := d.Match(ev); ok != w.Matched {
				t.Fatalf("Match = %v but WhyNot.Matched = %v", ok, w.Matched)
			}
			if w.Matched != tc.matched || w.CriteriaIndex != tc.index {
				t.Fatalf("WhyNot = matched %v, index %d; want %v, %d", w.Matched, w.CriteriaIndex, tc.matched, tc.index)
			}
			m, ok := w.First()
			if ok == tc.matched {
				t.Fatalf("First() ok = %v with matched %v", ok, tc.matched)
			}
			if tc.matched {
				return
			}
			value := ""
			if !m.Value.IsZero() {
				value = m.Value.String()
			}
			got := []any{m.Reason, m.Trait, m.Criterion, value, m.Detail}
			want := []any{tc.reason, tc.trait, tc.criterion, tc.value, tc.detail}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("First() (-want +got):\n%s", diff)
			}
		})
	}
}
