package explain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/explain"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

const testTriggers = `
- name: usage
  distinguished_by: [instance_id]
  expiration: $last + 1h
  fire_pipeline: usage_pipeline
  expire_pipeline: cleanup
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
    number: 2
  - event_type: compute.instance.update
- name: big_active
  distinguished_by: [instance_id]
  expiration: $last + 1d
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
    traits:
      state: active
      memory_mb: {int: "> 1024"}
  fire_criteria:
  - event_type: compute.instance.exists
`

const testEventDefs = `
- event_type: compute.instance.*
  traits:
    instance_id:
      fields: payload.instance_id
    state:
      fields: payload.state
`

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

type bundle struct {
	store db.Store
	mgr   *trigger.Manager
	clock *clock
	x     *explain.Explainer
}

var t0 = time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)

func setup(t *testing.T) *bundle {
	t.Helper()
	store := enginetest.SQLite(t)
	c := &clock{now: t0}
	mgr := enginetest.Manager(t, store, testTriggers, trigger.ManagerConfig{
		Clock: c, DistillFunc: enginetest.Distill(t, testEventDefs),
	})
	x := explain.New(store, mgr, explain.Config{Clock: c, DistillFunc: mgr.Distill})
	return &bundle{store: store, mgr: mgr, clock: c, x: x}
}

func event(id, typ string, at time.Time, traits map[string]any) stream.Event {
	tr := map[string]stream.Value{}
	for k, v := range traits {
		val, err := stream.ValueOf(v)
		if err != nil {
			panic(err)
		}
		tr[k] = val
	}
	return stream.Event{MessageID: id, Type: typ, Timestamp: at, Traits: tr}
}

func (b *bundle) add(t *testing.T, evs ...stream.Event) {
	t.Helper()
	res, err := b.mgr.AddEvents(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Outcome != trigger.Stored {
			t.Fatalf("event %s: %s %s", r.MessageID, r.Outcome, r.Reason)
		}
	}
}

// streamOf returns the id of the only stream of trigger name.
func (b *bundle) streamOf(t *testing.T, name string) int64 {
	t.Helper()
	found, err := b.store.FindStreams(t.Context(), db.FindStreamsParams{Name: name})
	if err != nil || len(found) != 1 {
		t.Fatalf("streams of %s: %v, %v", name, found, err)
	}
	return found[0].Stream.ID
}

func find(t *testing.T, e explain.Event, name string) explain.TriggerMatch {
	t.Helper()
	for _, tm := range e.Triggers {
		if tm.Trigger == name {
			return tm
		}
	}
	t.Fatalf("no trigger %s in %+v", name, e.Triggers)
	return explain.TriggerMatch{}
}

func TestStreamWaitingForFireCriteria(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.add(t, event("m1", "compute.instance.exists", t0, map[string]any{"instance_id": "i-1"}))
	id := b.streamOf(t, "usage")

	x, err := b.x.Stream(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := []explain.FireCriterion{
		{Index: 0, Line: x.FireCriteria[0].Line, Criterion: "compute.instance.exists", Needs: 2, Has: 1},
		{Index: 1, Line: x.FireCriteria[1].Line, Criterion: "compute.instance.update", Needs: 1, Has: 0},
	}
	if diff := cmp.Diff(want, x.FireCriteria); diff != "" {
		t.Errorf("fire criteria (-want +got):\n%s", diff)
	}
	if x.FireCriteria[0].Line == 0 {
		t.Error("fire criterion has no line")
	}
	wantLeft := "waiting for 1 more compute.instance.exists and 1 more compute.instance.update, or expiry at 2014-08-01T11:00:00 (then expire pipeline cleanup)"
	if x.Left != wantLeft {
		t.Errorf("Left = %q, want %q", x.Left, wantLeft)
	}
	if x.Fire != nil {
		t.Errorf("Fire = %+v before the criteria are met", x.Fire)
	}
	wantExp := &explain.Deadline{At: "2014-08-01T11:00:00", Expression: "$last + 1h",
		Variables: map[string]string{"first": "2014-08-01T10:00:00", "last": "2014-08-01T10:00:00"}}
	if diff := cmp.Diff(wantExp, x.Expiry); diff != "" {
		t.Errorf("Expiry (-want +got):\n%s", diff)
	}
	if x.Stream.State != "active" || x.Stream.ID != id || x.Events != 1 || !x.TriggerDefined {
		t.Errorf("stream = %+v, events %d, defined %v", x.Stream, x.Events, x.TriggerDefined)
	}

	// Two more events meet both criteria: the stream is ready to fire.
	b.add(t, event("m2", "compute.instance.exists", t0.Add(time.Minute), map[string]any{"instance_id": "i-1"}),
		event("m3", "compute.instance.update", t0.Add(2*time.Minute), map[string]any{"instance_id": "i-1"}))
	x, err = b.x.Stream(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, fc := range x.FireCriteria {
		if !fc.Met {
			t.Errorf("criterion %d not met: %+v", fc.Index, fc)
		}
	}
	if x.Fire == nil || x.Fire.At != "2014-08-01T10:00:00" || x.Fire.Variables["criteria_met_at"] != "2014-08-01T10:00:00" || x.Fire.Variables["fire_delay"] != "0s" {
		t.Errorf("Fire = %+v", x.Fire)
	}
	if !strings.HasPrefix(x.Left, "its fire criteria are met: it fires at 2014-08-01T10:00:00") {
		t.Errorf("Left = %q", x.Left)
	}
	b.clock.now = t0.Add(time.Second)
	x, err = b.x.Stream(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !x.Fire.Due || !strings.Contains(x.Left, "due to fire since 2014-08-01T10:00:00: waiting for a worker to claim it and run fire pipeline usage_pipeline") {
		t.Errorf("Fire %+v, Left = %q", x.Fire, x.Left)
	}
}

func TestStreamNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.x.Stream(t.Context(), 99); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("Stream(99) = %v, want db.ErrNotFound", err)
	}
}

func TestStreamStates(t *testing.T) {
	t.Parallel()
	defs := enginetest.Triggers(t, testTriggers)
	d := defs[0]
	base := stream.Stream{ID: 7, Name: "usage", State: stream.StateActive, Open: true,
		FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour)}
	with := func(f func(s *stream.Stream)) stream.Stream {
		s := base
		f(&s)
		return s
	}
	tests := []struct {
		name string
		s    stream.Stream
		def  *trigger.Definition
		now  time.Time
		want string
	}{
		{name: "expired, waiting for a worker", s: base, def: d, now: t0.Add(2 * time.Hour),
			want: "it expired at 2014-08-01T11:00:00 without meeting its fire criteria: waiting for a worker to claim it and run expire pipeline cleanup"},
		{name: "error", s: with(func(s *stream.Stream) { s.State, s.Attempts, s.LastError = stream.StateError, 3, "boom\nstack" }), def: d, now: t0,
			want: "nothing until an operator resets it: its fire pipeline failed (3 attempts, last error: boom); `winchester streams reset 7` or POST /v1/streams/7/reset retries it"},
		{name: "expire error", s: with(func(s *stream.Stream) { s.State, s.Attempts = stream.StateExpireError, 1 }), def: d, now: t0,
			want: "nothing until an operator resets it: its expire pipeline failed (1 attempts, last error: -); `winchester streams reset 7` or POST /v1/streams/7/reset retries it"},
		{name: "firing", s: with(func(s *stream.Stream) {
			s.State, s.ClaimedBy, s.LeaseUntil, s.FireTimestamp = stream.StateFiring, "w1", t0.Add(time.Minute), t0
		}), def: d, now: t0,
			want: "a worker (w1) is firing it, under a lease until 2014-08-01T10:01:00; if the worker dies, the stream is rescued after the lease"},
		{name: "retry fire due", s: with(func(s *stream.Stream) { s.State, s.Attempts, s.FireTimestamp = stream.StateRetryFire, 1, t0 }), def: d, now: t0.Add(time.Second),
			want: "a worker retries firing it (attempt 2): it is due and waits for a worker to claim it"},
		{name: "retry expire later", s: with(func(s *stream.Stream) { s.State, s.Attempts = stream.StateRetryExpire, 2 }), def: d, now: t0,
			want: "a worker retries expiring it (attempt 3) at 2014-08-01T11:00:00"},
		{name: "completed, fired", s: with(func(s *stream.Stream) { s.State, s.FireTimestamp = stream.StateCompleted, t0 }), def: d, now: t0,
			want: "nothing: it fired and completed"},
		{name: "completed, expired", s: with(func(s *stream.Stream) { s.State = stream.StateCompleted }), def: d, now: t0,
			want: "nothing: it expired and completed"},
		{name: "trigger gone", s: base, def: nil, now: t0,
			want: `trigger "usage" is not defined now: when the stream is due, a worker moves it to error`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := explain.StreamOf(tc.s, nil, tc.def, tc.now)
			if x.Left != tc.want {
				t.Errorf("Left = %q\nwant   %q", x.Left, tc.want)
			}
			if x.TriggerDefined != (tc.def != nil) {
				t.Errorf("TriggerDefined = %v", x.TriggerDefined)
			}
		})
	}
}

func TestStreamExpirationChanged(t *testing.T) {
	t.Parallel()
	defs := enginetest.Triggers(t, testTriggers)
	s := stream.Stream{ID: 1, Name: "usage", State: stream.StateActive, Open: true,
		FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(3 * time.Hour), FireCounts: []int{0}}
	x := explain.StreamOf(s, nil, defs[0], t0)
	want := []string{
		"the expiration now gives 2014-08-01T11:00:00: the definition changed since the last event was added",
		"the stream stored 1 fire counts for 2 fire criteria: the definition changed since it was created (the next event recounts them)",
	}
	if diff := cmp.Diff(want, x.Notes); diff != "" {
		t.Errorf("Notes (-want +got):\n%s", diff)
	}
}

func TestEventStored(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.add(t, event("m1", "compute.instance.exists", t0, map[string]any{"instance_id": "i-1", "state": "active", "memory_mb": 512}))
	id := b.streamOf(t, "usage")

	e, err := b.x.Event(t.Context(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Stored || e.Matched != 1 || len(e.Triggers) != 2 || e.Event.MessageID != "m1" {
		t.Fatalf("Event = %+v", e)
	}
	u := find(t, e, "usage")
	if !u.Matched || u.CriteriaIndex == nil || *u.CriteriaIndex != 0 || u.DistinguishedBy["instance_id"].Text() != "i-1" ||
		u.Key != stream.Key(u.DistinguishedBy) || u.Reason != "" {
		t.Errorf("usage = %+v", u)
	}
	if diff := cmp.Diff([]int{0}, u.CountsFor); diff != "" {
		t.Errorf("CountsFor (-want +got):\n%s", diff)
	}
	wantRef := &explain.StreamRef{ID: id, State: "active", In: true, Text: "went into stream 1 (active)"}
	if diff := cmp.Diff(wantRef, u.Stream); diff != "" {
		t.Errorf("Stream (-want +got):\n%s", diff)
	}
	big := find(t, e, "big_active")
	if big.Matched || big.CriteriaIndex != nil || big.Stream != nil {
		t.Errorf("big_active = %+v", big)
	}
	wantReason := "criteria 0: trait criterion memory_mb > 1024 (int) failed: the event has 512 (int)"
	if big.Reason != wantReason {
		t.Errorf("Reason = %q, want %q", big.Reason, wantReason)
	}
	if len(big.Mismatches) != 1 || big.Mismatches[0].Trait != "memory_mb" || big.Mismatches[0].Value == nil ||
		big.Mismatches[0].Value.IntValue() != 512 || big.Mismatches[0].Reason != "> failed" {
		t.Errorf("Mismatches = %+v", big.Mismatches)
	}

	if _, err := b.x.Event(t.Context(), "nope"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("Event(nope) = %v, want db.ErrNotFound", err)
	}
}

func TestEventStoredStreamGone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.add(t, event("m1", "compute.instance.exists", t0, map[string]any{"instance_id": "i-1"}))
	id := b.streamOf(t, "usage")
	if err := b.store.PurgeStream(t.Context(), id, -1); err != nil {
		t.Fatal(err)
	}
	e, err := b.x.Event(t.Context(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	u := find(t, e, "usage")
	if u.Stream == nil || u.Stream.ID != 0 || u.Stream.In || !strings.HasPrefix(u.Stream.Text, "in no stream of this trigger now") {
		t.Errorf("Stream = %+v", u.Stream)
	}
}

func TestGivenEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.add(t, event("m1", "compute.instance.exists", t0, map[string]any{"instance_id": "i-1"}))
	id := b.streamOf(t, "usage")

	tests := []struct {
		name   string
		ev     stream.Event
		now    time.Time
		stored bool
		ref    *explain.StreamRef
	}{
		{name: "open stream", ev: event("m2", "compute.instance.exists", t0, map[string]any{"instance_id": "i-1"}), now: t0,
			ref: &explain.StreamRef{ID: id, State: "active", Text: "would go to stream 1 (open, active)"}},
		{name: "new values", ev: event("m2", "compute.instance.exists", t0, map[string]any{"instance_id": "i-2"}), now: t0,
			ref: &explain.StreamRef{New: true, Text: "would start a new stream: no stream with these distinguishing values is open"}},
		{name: "open stream expired", ev: event("m2", "compute.instance.exists", t0, map[string]any{"instance_id": "i-1"}), now: t0.Add(2 * time.Hour),
			ref: &explain.StreamRef{New: true, Text: "would start a new stream: the open stream 1 expired at 2014-08-01T11:00:00 and takes no more events"}},
		{name: "duplicate of a stored event", ev: event("m1", "compute.instance.exists", t0, map[string]any{"instance_id": "i-1"}), now: t0, stored: true,
			ref: &explain.StreamRef{ID: id, State: "active", In: true, Text: "went into stream 1 (active)"}},
		{name: "duplicate with another timestamp names the stored one's stream", ev: event("m1", "compute.instance.exists", t0.Add(30*time.Minute), map[string]any{"instance_id": "i-1"}), now: t0, stored: true,
			ref: &explain.StreamRef{ID: id, State: "active", In: true, Text: "went into stream 1 (active)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := explain.New(b.store, b.mgr, explain.Config{Clock: &clock{now: tc.now}})
			e, err := x.GivenEvent(t.Context(), tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if e.Stored != tc.stored {
				t.Errorf("Stored = %v, want %v", e.Stored, tc.stored)
			}
			if diff := cmp.Diff(tc.ref, find(t, e, "usage").Stream); diff != "" {
				t.Errorf("Stream (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMatchReasons(t *testing.T) {
	t.Parallel()
	defs := enginetest.Triggers(t, testTriggers)
	tests := []struct {
		name string
		ev   stream.Event
		want string
	}{
		{name: "wrong event type", ev: event("m", "image.create", t0, map[string]any{"instance_id": "i"}),
			want: `criteria 0: wrong event type: "image.create" is not compute.instance.*`},
		{name: "missing trait", ev: event("m", "compute.instance.exists", t0, map[string]any{"instance_id": "i"}),
			want: `criteria 0: missing trait "state" (trait criterion state == "active")`},
		{name: "criterion failed with the value", ev: event("m", "compute.instance.exists", t0, map[string]any{"instance_id": "i", "state": "deleted"}),
			want: `criteria 0: trait criterion state == "active" failed: the event has "deleted"`},
		{name: "missing distinguishing trait", ev: event("m", "compute.instance.exists", t0, map[string]any{"state": "active", "memory_mb": 2048}),
			want: `match criteria 0: the event has no distinguishing trait "instance_id"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tm := explain.MatchOf(defs[1], tc.ev)
			if tm.Matched || tm.Reason != tc.want {
				t.Errorf("MatchOf = matched %v, reason %q; want %q", tm.Matched, tm.Reason, tc.want)
			}
			if _, ok := defs[1].Match(tc.ev); ok {
				t.Error("Definition.Match disagrees")
			}
		})
	}
	all := explain.Match(defs, event("m", "compute.instance.exists", t0, map[string]any{"instance_id": "i", "state": "active", "memory_mb": 2048}))
	if len(all) != 2 || !all[0].Matched || !all[1].Matched {
		t.Errorf("Match = %+v, want both matched", all)
	}
}

func TestDistinguishFailure(t *testing.T) {
	t.Parallel()
	defs, _, err := trigger.Parse("triggers.yaml", []byte(`
- name: daily
  distinguished_by:
  - when: day
  expiration: $last + 1d
  fire_pipeline: p
  match_criteria:
  - event_type: x
  fire_criteria:
  - event_type: x
`))
	if err != nil {
		t.Fatal(err)
	}
	tm := explain.MatchOf(defs[0], event("m", "x", t0, map[string]any{"when": "not a time"}))
	if tm.Matched || tm.CriteriaIndex == nil || !strings.Contains(tm.Reason, `trait "when" is a string, not a datetime`) {
		t.Errorf("MatchOf = %+v", tm)
	}
}

func TestBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.add(t, event("m1", "compute.instance.exists", t0, map[string]any{"instance_id": "i-1"}))
	tests := []struct {
		name      string
		body      string
		err       error
		stored    bool
		distilled bool
		matched   int
	}{
		{name: "message id", body: `{"message_id": "m1"}`, stored: true, matched: 1},
		{name: "message id not stored", body: `{"message_id": "m9"}`, err: db.ErrNotFound},
		{name: "empty message id", body: `{"message_id": ""}`, err: explain.ErrBadInput},
		{name: "event", body: `{"message_id": "m2", "event_type": "compute.instance.update", "timestamp": "2014-08-01T10:00:00", "instance_id": "i-1", "state": "active", "memory_mb": 4096}`, matched: 2},
		{name: "notification", body: `{"message_id": "m3", "event_type": "compute.instance.update", "timestamp": "2014-08-01 10:00:00.000000", "payload": {"instance_id": "i-1", "state": "active"}}`, distilled: true, matched: 1},
		{name: "notification dropped", body: `{"message_id": "m4", "event_type": "compute.instance.update", "payload": {}}`, err: explain.ErrBadInput},
		{name: "not JSON", body: `{"message_id": `, err: explain.ErrBadInput},
		{name: "not an object", body: `[1]`, err: explain.ErrBadInput},
		{name: "not an event", body: `{"event_type": "x"}`, err: explain.ErrBadInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := b.x.Body(t.Context(), []byte(tc.body))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Body = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Stored != tc.stored || e.Distilled != tc.distilled || e.Matched != tc.matched {
				t.Errorf("Body = stored %v, distilled %v, matched %d; want %v, %v, %d", e.Stored, e.Distilled, e.Matched, tc.stored, tc.distilled, tc.matched)
			}
		})
	}
	noDistiller := explain.New(b.store, b.mgr, explain.Config{})
	if _, err := noDistiller.Body(t.Context(), []byte(`{"payload": {}}`)); !errors.Is(err, explain.ErrNoDistiller) || !errors.Is(err, explain.ErrBadInput) {
		t.Errorf("Body without a distiller = %v", err)
	}
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.add(t, event("m1", "compute.instance.exists", t0, map[string]any{"instance_id": "i-1", "state": "deleted"}))
	x, err := b.x.Stream(t.Context(), b.streamOf(t, "usage"))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := x.WriteText(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"stream 1 of trigger usage",
		"[0] compute.instance.exists: has 1 of 2 (waiting)",
		"[1] compute.instance.update: has 0 of 1 (waiting)",
		"expires:          2014-08-01T11:00:00 = $last + 1h with $first = 2014-08-01T10:00:00, $last = 2014-08-01T10:00:00",
		"left:             waiting for 1 more compute.instance.exists",
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("stream text lacks %q:\n%s", want, sb.String())
		}
	}
	e, err := b.x.Event(t.Context(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	sb.Reset()
	if err := e.WriteText(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"event m1: compute.instance.exists at 2014-08-01T10:00:00",
		"matched 1 of 2 triggers",
		"usage: matched by match criteria 0",
		"distinguished by: instance_id=i-1",
		"stream: went into stream 1 (active)",
		`big_active: no: criteria 0: trait criterion state == "active" failed: the event has "deleted"`,
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("event text lacks %q:\n%s", want, sb.String())
		}
	}
}
