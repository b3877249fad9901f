package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/explain"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

const explainTriggers = `
- name: usage
  distinguished_by: [instance_id]
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
    number: 2
- name: active_only
  distinguished_by: [instance_id]
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
    traits:
      state: active
  fire_criteria:
  - event_type: compute.instance.exists
`

const explainEventDefs = `
- event_type: compute.instance.*
  traits:
    instance_id:
      fields: payload.instance_id
    state:
      fields: payload.state
`

func TestExplainCommands(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"winchester.yaml": "log_level: error\ntrigger_definitions: triggers.yaml\ndistiller_config: events.yaml\n",
		"triggers.yaml":   explainTriggers,
		"events.yaml":     explainEventDefs,
	})
	cfg := filepath.Join(dir, "winchester.yaml")
	dbURL := "sqlite:///" + filepath.Join(dir, "w.db")

	s, err := db.Open(t.Context(), "sqlite://"+filepath.Join(dir, "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defs, _, err := trigger.Parse("triggers.yaml", []byte(explainTriggers))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := trigger.NewManager(s, defs, trigger.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	if _, err := mgr.AddEvent(t.Context(), stream.Event{MessageID: "m-1", Type: "compute.instance.exists", Timestamp: t0,
		Traits: map[string]stream.Value{"instance_id": stream.String("i-1"), "state": stream.String("deleted")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	common := []string{"-c", cfg, "--database-url", dbURL}

	out, _, err := runRoot(t, append([]string{"explain", "stream", "1"}, common...)...)
	if err != nil || !strings.Contains(out, "[0] compute.instance.exists: has 1 of 2 (waiting)") ||
		!strings.Contains(out, "left:             waiting for 1 more compute.instance.exists, or expiry at") {
		t.Errorf("explain stream 1: %v\n%s", err, out)
	}
	out, _, err = runRoot(t, append([]string{"explain", "stream", "1", "-o", "json"}, common...)...)
	var xs explain.Stream
	if err != nil || json.Unmarshal([]byte(out), &xs) != nil || xs.Stream.ID != 1 || len(xs.FireCriteria) != 1 || xs.FireCriteria[0].Has != 1 {
		t.Errorf("explain stream 1 -o json: %v\n%s", err, out)
	}

	out, _, err = runRoot(t, append([]string{"explain", "event", "m-1"}, common...)...)
	if err != nil || !strings.Contains(out, "stream: went into stream 1 (active)") ||
		!strings.Contains(out, `active_only: no: criteria 0: trait criterion state == "active" failed: the event has "deleted"`) {
		t.Errorf("explain event m-1: %v\n%s", err, out)
	}

	// A notification on standard input is distilled first.
	root := newRootCmd()
	root.SetArgs(append([]string{"explain", "event", "-", "-o", "json"}, common...))
	var buf strings.Builder
	root.SetOut(&buf)
	root.SetErr(&buf)
	root.SetIn(strings.NewReader(`{"message_id": "n-1", "event_type": "compute.instance.update", "timestamp": "2014-08-01 10:00:00.000000", "payload": {"instance_id": "i-2", "state": "active"}}`))
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("explain event - (notification): %v\n%s", err, buf.String())
	}
	var xe explain.Event
	if err := json.Unmarshal([]byte(buf.String()), &xe); err != nil {
		t.Fatalf("explain event - -o json: %v\n%s", err, buf.String())
	}
	if !xe.Distilled || xe.Stored || xe.Matched != 2 || xe.Triggers[0].Stream == nil || !xe.Triggers[0].Stream.New {
		t.Errorf("explain event - = %+v", xe)
	}

	failures := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{name: "no such stream", args: []string{"explain", "stream", "99"}, want: "stream 99 not found"},
		{name: "bad stream id", args: []string{"explain", "stream", "x"}, want: `stream id "x": want a positive integer`},
		{name: "no such event", args: []string{"explain", "event", "m-9"}, want: `no event with message_id "m-9"`},
		{name: "message id on stdin not stored", args: []string{"explain", "event", "-"}, stdin: `{"message_id": "m-9"}`, want: "not found"},
		{name: "bad input", args: []string{"explain", "event", "-"}, stdin: `not json`, want: "explain: bad input"},
		{name: "bad output", args: []string{"explain", "stream", "1", "-o", "yaml"}, want: `--output "yaml"`},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			root := newRootCmd()
			root.SetArgs(append(tc.args, common...))
			var buf strings.Builder
			root.SetOut(&buf)
			root.SetErr(&buf)
			root.SetIn(strings.NewReader(tc.stdin))
			err := root.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 1 {
				t.Errorf("%v = %v (exit %d), want an error with %q", tc.args, err, exitCode(err), tc.want)
			}
		})
	}
}
