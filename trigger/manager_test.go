package trigger_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	_ "github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var now = time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)

const managerTriggers = `
- name: debugged
  debug_level: 2
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
- name: quiet
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: image.*
  fire_criteria: []
`

func newManager(t *testing.T) (*trigger.Manager, db.Store) {
	t.Helper()
	store := enginetest.SQLite(t)
	return enginetest.Manager(t, store, managerTriggers, trigger.ManagerConfig{Clock: fixedClock{now}}), store
}

func ev(id, typ string, traits map[string]stream.Value) stream.Event {
	return stream.Event{MessageID: id, Type: typ, Timestamp: now.Add(-time.Minute), Traits: traits}
}

func TestManagerOutcomes(t *testing.T) {
	m, _ := newManager(t)
	ctx := t.Context()
	inst := map[string]stream.Value{"instance_id": stream.String("i-1")}
	res, err := m.AddEvents(ctx, []stream.Event{
		ev("a", "compute.instance.update", inst),
		ev("a", "compute.instance.update", inst), // duplicate within the batch
		{MessageID: "", Type: "x", Timestamp: now},
		ev("b", "compute.instance.update", nil), // no instance_id: stored, matches nothing
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []trigger.Outcome{trigger.Stored, trigger.Duplicate, trigger.Rejected, trigger.Stored}
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Errorf("event %d: outcome %s (%s), want %s", i, r.Outcome, r.Reason, want[i])
		}
	}
	if res[0].Matched != 1 || res[3].Matched != 0 {
		t.Errorf("matched = %d, %d; want 1, 0", res[0].Matched, res[3].Matched)
	}
	if res[2].Reason == "" {
		t.Error("rejected event has no reason")
	}
	r, err := m.AddEventMap(ctx, map[string]any{"message_id": "c", "event_type": "x"})
	if err != nil || r.Outcome != trigger.Rejected {
		t.Errorf("AddEventMap without timestamp: %+v, %v; want rejected", r, err)
	}
	r, err = m.AddNotification(ctx, []byte(`{"event_type": "x", "message_id": "n", "timestamp": "2014-08-01 00:00:00"}`))
	if err != nil || r.Outcome != trigger.Rejected || r.Reason == "" {
		t.Errorf("AddNotification without a distiller: %+v, %v; want rejected with a reason", r, err)
	}
}

func TestManagerDebugCounters(t *testing.T) {
	m, _ := newManager(t)
	ctx := t.Context()
	inst := map[string]stream.Value{"instance_id": stream.String("i-1")}
	for _, e := range []stream.Event{
		ev("1", "compute.instance.update", inst),
		ev("2", "compute.instance.update", inst),
		ev("3", "image.upload", inst),
		ev("4", "compute.instance.update", nil),
	} {
		if _, err := m.AddEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	_, per := m.Stats().Snapshot(false)
	d := per["debugged"]
	if d["match_passed"] != 2 || d["match_failed"] != 2 {
		t.Errorf("debugged counters %v, want 2 passed and 2 failed", d)
	}
	if d["mismatch: Wrong event type"] != 1 || d["mismatch: No matching criteria"] != 1 || d["mismatch: not 'instance_id'"] != 1 {
		t.Errorf("debugged mismatch reasons %v", d)
	}
	if d["new_streams"] != 1 || d["added_events"] != 2 {
		t.Errorf("debugged stream counters %v, want 1 new stream, 2 added events", d)
	}
	q := per["quiet"]
	if _, ok := q["match_failed"]; ok {
		t.Errorf("a trigger without debug_level recorded match checks: %v", q)
	}
	if q["ready_to_fire"] != 1 {
		t.Errorf("quiet counters %v, want ready_to_fire 1", q)
	}
	var lines int
	m.LogStats(logFunc(func(string, ...any) { lines++ }))
	if lines != 3 {
		t.Errorf("LogStats wrote %d lines, want totals + 2 triggers", lines)
	}
	if totals, per := m.Stats().Snapshot(false); len(totals) != 0 || len(per) != 0 {
		t.Errorf("counters not reset after LogStats: %v %v", totals, per)
	}
	// The cumulative counters (metrics) are not reset.
	totals, per := m.Stats().Totals()
	if totals["saved_events"] == 0 || per["quiet"]["ready_to_fire"] != 1 {
		t.Errorf("Totals after LogStats = %v %v, want the counts since the start", totals, per)
	}
}

type logFunc func(msg string, args ...any)

func (f logFunc) Info(msg string, args ...any) { f(msg, args...) }

func TestManagerRuntimeDefinitions(t *testing.T) {
	m, store := newManager(t)
	ctx := t.Context()
	extra, _, err := trigger.Parse("extra.yaml", []byte(`
- name: extra
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria: [{event_type: "volume.*"}]
  fire_criteria: []
- name: quiet
  expiration: "$last + 1h"
  fire_pipeline: other
  match_criteria: [{event_type: "*"}]
  fire_criteria: []
`))
	if err != nil {
		t.Fatal(err)
	}
	added, err := m.AddDefinitions(extra)
	if err != nil || len(added) != 1 || added[0] != "extra" {
		t.Fatalf("AddDefinitions: %v %v, want only extra (quiet exists)", added, err)
	}
	if d, _ := m.Definition("quiet"); d.FirePipeline != "p" {
		t.Error("an existing definition was replaced")
	}
	if _, err := m.AddEvent(ctx, ev("v", "volume.create", nil)); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.CountStreams(ctx, db.FindStreamsParams{Name: "extra"}); n != 1 {
		t.Errorf("streams of the added trigger: %d, want 1", n)
	}
	if !m.DeleteDefinition("extra") || m.DeleteDefinition("extra") {
		t.Error("DeleteDefinition: want true then false")
	}
	if _, err := m.AddEvent(ctx, ev("v2", "volume.create", nil)); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.CountStreams(ctx, db.FindStreamsParams{Name: "extra"}); n != 1 {
		t.Errorf("a deleted trigger still collects events: %d streams", n)
	}
}

// TestManagerConcurrentIngestersShareStreams adds the same keys from many
// goroutines: every key ends in exactly one stream holding all its events.
func TestManagerConcurrentIngestersShareStreams(t *testing.T) {
	m, store := newManager(t)
	ctx := t.Context()
	const keys, perKey, workers = 20, 6, 6
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				inst := map[string]stream.Value{"instance_id": stream.String(string(rune('a' + k)))}
				e := ev(string(rune('a'+k))+"-"+string(rune('0'+w)), "compute.instance.update", inst)
				if _, err := m.AddEvent(ctx, e); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	found, err := store.FindStreams(ctx, db.FindStreamsParams{Name: "debugged", IncludeEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != keys {
		t.Fatalf("%d streams, want %d (one per key)", len(found), keys)
	}
	for _, f := range found {
		if len(f.Events) != perKey {
			t.Errorf("stream %v has %d events, want %d", f.Stream.DistinguishedBy, len(f.Events), perKey)
		}
	}
}

// A notification the DistillFunc refuses is Rejected with the reason and
// the error itself in Result.Err, for callers that branch on it.
func TestManagerRejectedNotificationKeepsTheError(t *testing.T) {
	errNoDefinition := errors.New("no definition")
	m := enginetest.Manager(t, enginetest.SQLite(t), managerTriggers, trigger.ManagerConfig{Clock: fixedClock{now},
		DistillFunc: func([]byte) (stream.Event, error) { return stream.Event{}, fmt.Errorf("drop: %w", errNoDefinition) }})
	r, err := m.AddNotification(t.Context(), []byte(`{}`))
	if err != nil || r.Outcome != trigger.Rejected || r.Reason != "drop: no definition" || !errors.Is(r.Err, errNoDefinition) {
		t.Errorf("AddNotification = %+v, %v; want rejected with reason %q and the DistillFunc's error", r, err, "drop: no definition")
	}
	stored, err := m.AddEvent(t.Context(), ev("a", "compute.instance.update", nil))
	if err != nil || stored.Err != nil {
		t.Errorf("AddEvent = %+v, %v; want no Err", stored, err)
	}
}
