package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/job"
)

type jobsClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *jobsClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jobsClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestJobsCommands(t *testing.T) {
	dir := writeFiles(t, map[string]string{"winchester.yaml": `log_level: error
database: {url: 'sqlite:///w.db'}
jobs:
  report:
    schedule: "@hourly"
    handler: report
    retry_backoff: 1m
  old:
    schedule: "@daily"
    handler: gone
    enabled: false
`})
	cfgPath := filepath.Join(dir, "winchester.yaml")

	// A program that registers the job runs a failure, then a success.
	cfg, err := winchester.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	reg := winchester.NewRegistry()
	calls := 0
	reg.RegisterJob("report", func(context.Context, time.Time, time.Time) error {
		calls++
		if calls == 1 {
			return errors.New("upstream unavailable")
		}
		return nil
	})
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := &jobsClock{now: t0}
	eng, err := winchester.Open(t.Context(), cfg, winchester.Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	jr, err := eng.NewJobRunner("worker-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{0, time.Hour, time.Hour + time.Minute} {
		clock.set(t0.Add(at))
		if _, err := jr.Pass(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	eng.Close()

	out, _, err := runRoot(t, "jobs", "list", "-c", cfgPath)
	if err != nil {
		t.Fatalf("jobs list: %v", err)
	}
	t.Logf("jobs list:\n%s", out)
	// The built-in jobs are listed beside the configured ones: trim and
	// purge are off without their settings.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.Contains(lines[1], "old") || !strings.Contains(lines[1], "disabled") ||
		!strings.Contains(lines[2], "optimize_database") || !strings.Contains(lines[2], "idle") ||
		!strings.Contains(lines[3], "purge_completed_streams") || !strings.Contains(lines[3], "disabled") ||
		!strings.Contains(lines[4], "report") || !strings.Contains(lines[4], "idle") ||
		!strings.Contains(lines[4], "2026-12-01 01:00:00") || !strings.Contains(lines[4], "2026-12-01 02:00:00") ||
		!strings.Contains(lines[5], "rescue_stale_claims") || !strings.Contains(lines[5], "@every 30s") ||
		!strings.Contains(lines[6], "trim_events") || !strings.Contains(lines[6], "disabled") {
		t.Errorf("jobs list:\n%s", out)
	}

	out, _, err = runRoot(t, "jobs", "history", "report", "-c", cfgPath, "-o", "json")
	if err != nil {
		t.Fatalf("jobs history: %v", err)
	}
	var got []job.RunView
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r job.RunView
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("history line %q: %v", l, err)
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[0].Status != "completed" || got[0].Attempt != 2 || got[1].Status != "failed" ||
		got[1].Error != "upstream unavailable" || got[1].Worker != "worker-1" || !got[1].WindowEnd.Equal(t0.Add(time.Hour)) {
		t.Errorf("jobs history:\n%s", out)
	}

	if _, _, err := runRoot(t, "jobs", "history", "nope", "-c", cfgPath); err == nil || !strings.Contains(err.Error(), `no job "nope" (configured: [old optimize_database purge_completed_streams report rescue_stale_claims trim_events])`) {
		t.Errorf("history of an unknown job: %v", err)
	}
	if _, _, err := runRoot(t, "jobs", "list", "-c", cfgPath, "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("jobs list -o yaml: %v", err)
	}
}

func TestJobsRun(t *testing.T) {
	dir := writeFiles(t, map[string]string{"winchester.yaml": `log_level: error
database: {url: 'sqlite:///w.db'}
jobs:
  tick:
    schedule: "@hourly"
    handler: exec
    command: [sh, -c, 'echo "$WINCHESTER_WINDOW_START $WINCHESTER_WINDOW_END" >> ticks.txt']
  broken:
    schedule: "@hourly"
    handler: exec
    command: [sh, -c, 'echo nope >&2; exit 2']
    max_retries: 0
  off:
    schedule: "@hourly"
    handler: exec
    command: ["true"]
    enabled: false
`})
	cfgPath := filepath.Join(dir, "winchester.yaml")
	out, _, err := runRoot(t, "jobs", "run", "tick", "--window", "2020-01-01T00:00:00Z", "2020-01-01T01:00:00Z", "-c", cfgPath, "-o", "json")
	if err != nil {
		t.Fatalf("jobs run --window: %v", err)
	}
	var r job.RunView
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Status != "completed" || r.WindowEnd.Format(time.RFC3339) != "2020-01-01T01:00:00Z" ||
		!strings.HasPrefix(r.Worker, "jobs-run@") {
		t.Fatalf("jobs run --window printed %s (%v), want the window completed", out, err)
	}
	// Only the job's next window runs: the same window again would run it
	// twice, one overlapping it would run part of it twice, a later one
	// leaves a gap.
	for _, tc := range []struct{ start, end, why string }{
		{"2020-01-01T00:00:00Z", "2020-01-01T01:00:00Z", "it is done already, and a window done is never run again"},
		{"2020-01-01T00:30:00Z", "2020-01-01T02:00:00Z", "it overlaps the windows done up to 2020-01-01T01:00:00Z"},
		{"2020-01-01T02:00:00Z", "2020-01-01T03:00:00Z", "it would leave (2020-01-01T01:00:00Z, 2020-01-01T02:00:00Z] unrun"},
	} {
		if _, _, err := runRoot(t, "jobs", "run", "tick", "--window", tc.start, tc.end, "-c", cfgPath); err == nil ||
			!strings.Contains(err.Error(), "must start where the last window done ended, 2020-01-01T01:00:00Z: "+tc.why) {
			t.Errorf("jobs run --window %s %s: %v, want refused: %s", tc.start, tc.end, err, tc.why)
		}
	}
	// The next due window: from 01:00 to the last hour (catch-up latest).
	if out, _, err = runRoot(t, "jobs", "run", "tick", "-c", cfgPath); err != nil || !strings.Contains(out, "2020-01-01 01:00:00") {
		t.Fatalf("jobs run: %v\n%s", err, out)
	}
	if _, _, err := runRoot(t, "jobs", "run", "tick", "-c", cfgPath); err == nil || !strings.Contains(err.Error(), "has not ended yet") {
		t.Errorf("jobs run with nothing due: %v", err)
	}
	ticks, err := os.ReadFile(filepath.Join(dir, "ticks.txt"))
	if err != nil || strings.Count(string(ticks), "\n") != 2 || !strings.HasPrefix(string(ticks), "2020-01-01T00:00:00Z 2020-01-01T01:00:00Z\n") {
		t.Errorf("the command ran for %q (%v), want two windows", ticks, err)
	}
	out, _, err = runRoot(t, "jobs", "history", "tick", "-c", cfgPath)
	if err != nil || strings.Count(out, "completed") != 2 {
		t.Errorf("jobs history after two runs: %v\n%s", err, out)
	}

	out, _, err = runRoot(t, "jobs", "run", "broken", "--window", "2020-01-01T00:00:00Z", "2020-01-01T01:00:00Z", "-c", cfgPath)
	if err == nil || !strings.Contains(err.Error(), "the run gave_up") || !strings.Contains(out, "nope") {
		t.Errorf("jobs run of a failing job: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"off"}, "disabled"},
		{[]string{"nope"}, `no job "nope"`},
		{[]string{"tick", "--window", "yesterday", "2020-01-01T01:00:00Z"}, "--window start"},
		{[]string{"tick", "--window", "2020-01-01T00:00:00Z"}, "--window takes two times"},
	} {
		args := append([]string{"jobs", "run"}, tc.args...)
		if _, _, err := runRoot(t, append(args, "-c", cfgPath)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("jobs run %v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
