package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester"
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
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.Contains(lines[1], "old") || !strings.Contains(lines[1], "disabled") ||
		!strings.Contains(lines[2], "report") || !strings.Contains(lines[2], "idle") ||
		!strings.Contains(lines[2], "2026-12-01 01:00:00") || !strings.Contains(lines[2], "2026-12-01 02:00:00") {
		t.Errorf("jobs list:\n%s", out)
	}

	out, _, err = runRoot(t, "jobs", "history", "report", "-c", cfgPath, "-o", "json")
	if err != nil {
		t.Fatalf("jobs history: %v", err)
	}
	var got []runRow
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r runRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("history line %q: %v", l, err)
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[0].Status != "completed" || got[0].Attempt != 2 || got[1].Status != "failed" ||
		got[1].Error != "upstream unavailable" || got[1].Worker != "worker-1" || !got[1].WindowEnd.Equal(t0.Add(time.Hour)) {
		t.Errorf("jobs history:\n%s", out)
	}

	if _, _, err := runRoot(t, "jobs", "history", "nope", "-c", cfgPath); err == nil || !strings.Contains(err.Error(), `no job "nope" (configured: [old report])`) {
		t.Errorf("history of an unknown job: %v", err)
	}
	if _, _, err := runRoot(t, "jobs", "list", "-c", cfgPath, "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("jobs list -o yaml: %v", err)
	}
}
