package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestRunnerFailsOnAWrongCase runs this test binary's TestTimex against a
// directory holding one case whose expected result is wrong, and checks
// that it fails naming the case: a runner that cannot fail proves nothing.
func TestRunnerFailsOnAWrongCase(t *testing.T) {
	if os.Getenv("WINCHESTER_SELFCHECK") != "" {
		t.Skip("inside the self-check run")
	}
	d := t.TempDir()
	vectors := `version: 1
area: timex
cases:
- name: deliberately_wrong
  expr: $a + 1h
  vars:
    a: '2014-08-01T02:00:00'
  expected:
    result:
      type: timestamp
      value: '2014-08-01T05:00:00'
`
	if err := os.WriteFile(filepath.Join(d, "timex.yaml"), []byte(vectors), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTimex$", "-test.v")
	cmd.Env = append(os.Environ(), "WINCHESTER_CONFORMANCE_DIR="+d, "WINCHESTER_SELFCHECK=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the runner passed a wrong case:\n%s", out)
	}
	if !strings.Contains(string(out), "--- FAIL: TestTimex/deliberately_wrong") {
		t.Fatalf("the failure does not name the case:\n%s", out)
	}
}

// TestPurgeEventsRunner runs TestDBQueries against the fixture of
// db_queries.yaml with two purge_events cases (no shipped case uses the
// operation yet): the right outcome passes, a wrong one fails.
func TestPurgeEventsRunner(t *testing.T) {
	if os.Getenv("WINCHESTER_SELFCHECK") != "" {
		t.Skip("inside the self-check run")
	}
	data, err := os.ReadFile(filepath.Join(dir(t), "db_queries.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	// Fixture: events 1–4 (event 1 has 4 traits), streams 1–8; stream 1
	// holds events 3 and 4, stream 2 event 2, stream 3 events 1 and 2,
	// stream 4 event 2.
	var cases []any
	if err := yaml.Unmarshal([]byte(`
- name: purge_events_right
  operation: purge_events
  args: {event_ids: [2, 3]}
  expected:
    remaining_event_ids: [1, 4]
    stream_ids: [1, 2, 3, 4, 5, 6, 7, 8]
    streamevent_rows: [[1, 1], [3, 1]]
    trait_rows: 4
- name: purge_events_wrong
  operation: purge_events
  args: {event_ids: [2, 3]}
  expected:
    remaining_event_ids: [1, 4]
    streamevent_rows: 4
`), &cases); err != nil {
		t.Fatal(err)
	}
	file["cases"] = cases
	out, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "db_queries.yaml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDBQueries$", "-test.v")
	cmd.Env = append(os.Environ(), "WINCHESTER_CONFORMANCE_DIR="+d, "WINCHESTER_SELFCHECK=1")
	got, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the runner passed a wrong purge_events case:\n%s", got)
	}
	for _, want := range []string{"--- PASS: TestDBQueries/purge_events_right/sqlite", "--- FAIL: TestDBQueries/purge_events_wrong/sqlite"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("self-check output lacks %q:\n%s", want, got)
		}
	}
}
