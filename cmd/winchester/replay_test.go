package main

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// A stream that became ready before the next record is processed at its
// deadline, as running workers would have done: the later event of the
// same key opens a new stream instead of joining the fired one.
func TestReplayRunsDeadlinesBeforeLaterRecords(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"winchester.yaml": "trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\npipeline_handlers: {logger: logger}\n",
		"pipelines.yaml":  "p: [logger]\n",
		"triggers.yaml": `
- name: t
  distinguished_by: [instance_id]
  expiration: "$last + 1d"
  fire_pipeline: p
  expire_pipeline: p
  match_criteria: [{event_type: "compute.*"}]
  fire_criteria: [{event_type: compute.instance.exists}]
`,
		"events.jsonl": `{"message_id":"m1","event_type":"compute.instance.exists","timestamp":"2014-08-01T10:00:00","instance_id":"a"}
{"message_id":"m2","event_type":"compute.instance.update","timestamp":"2014-08-01T12:00:00","instance_id":"a"}
`,
	})
	var out, errOut bytes.Buffer
	o := &replayOptions{output: "-"}
	o.flags.ConfigFile = filepath.Join(dir, "winchester.yaml")
	if err := runReplay(t.Context(), o, []string{filepath.Join(dir, "events.jsonl")}, nil, &out, &errOut); err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d records, want 2 (the fire, then the new stream's expiry):\n%s", len(lines), out.String())
	}
	var fire, expire replayRecord
	if err := json.Unmarshal([]byte(lines[0]), &fire); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &expire); err != nil {
		t.Fatal(err)
	}
	if fire.Action != "fire" || strings.Join(fire.Events, ",") != "m1" || fire.Clock != "2014-08-01T10:00:00.000001" {
		t.Errorf("first record %+v, want the fire of [m1] just after 10:00", fire)
	}
	if expire.Action != "expire" || strings.Join(expire.Events, ",") != "m2" || expire.Clock != "2014-08-02T12:00:00.000001" {
		t.Errorf("second record %+v, want the expiry of [m2] a day after 12:00", expire)
	}
	if !strings.Contains(errOut.String(), "1 fired, 1 expired, 0 errored") {
		t.Errorf("summary %q", errOut.String())
	}
}

// With --pacing records passes run only after each record, as in the
// original's playback: the stream that became ready at 10:00 is still
// active when the 12:00 event arrives, takes it in, and fires with both.
// The same input gives a different output with the default pacing (see
// TestReplayRunsDeadlinesBeforeLaterRecords).
func TestReplayPacingRecords(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"winchester.yaml": "trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\npipeline_handlers: {logger: logger}\n",
		"pipelines.yaml":  "p: [logger]\n",
		"triggers.yaml": `
- name: t
  distinguished_by: [instance_id]
  expiration: "$last + 1d"
  fire_pipeline: p
  expire_pipeline: p
  match_criteria: [{event_type: "compute.*"}]
  fire_criteria: [{event_type: compute.instance.exists}]
`,
		"events.jsonl": `{"message_id":"m1","event_type":"compute.instance.exists","timestamp":"2014-08-01T10:00:00","instance_id":"a"}
{"message_id":"m2","event_type":"compute.instance.update","timestamp":"2014-08-01T12:00:00","instance_id":"a"}
`,
	})
	var out, errOut bytes.Buffer
	o := &replayOptions{output: "-", pacing: pacingRecords}
	o.flags.ConfigFile = filepath.Join(dir, "winchester.yaml")
	if err := runReplay(t.Context(), o, []string{filepath.Join(dir, "events.jsonl")}, nil, &out, &errOut); err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d records, want 1 (one fire of both events):\n%s", len(lines), out.String())
	}
	var fire replayRecord
	if err := json.Unmarshal([]byte(lines[0]), &fire); err != nil {
		t.Fatal(err)
	}
	if fire.Action != "fire" || strings.Join(fire.Events, ",") != "m1,m2" || fire.Clock != "2014-08-01T12:00:00" {
		t.Errorf("record %+v, want the fire of [m1 m2] at 12:00", fire)
	}
	if !strings.Contains(errOut.String(), "1 fired, 0 expired, 0 errored") {
		t.Errorf("summary %q", errOut.String())
	}
}

func TestReplayRejectsUnknownPacing(t *testing.T) {
	o := &replayOptions{output: "-", pacing: "wallclock"}
	err := runReplay(t.Context(), o, []string{"-"}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `--pacing "wallclock"`) {
		t.Fatalf("runReplay(--pacing wallclock) = %v, want an error naming the flag", err)
	}
}
