package winchester

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/job"
)

// settableClock is the engine's clock in these tests.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestJobsFromConfig(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, map[string]string{"winchester.yaml": `database: {url: 'sqlite:///w.db'}
jobs:
  report:
    schedule: "*/5 * * * *"
    handler: report
    catch_up: all
    max_retries: 0
    timeout: 1m
  nightly:
    schedule: "0 3 ? * *"
    handler: not_in_this_program
    enabled: false
`})
	if got := cfg.Pos("jobs.report.catch_up"); !strings.HasSuffix(got, "winchester.yaml:6") {
		t.Errorf("Pos(jobs.report.catch_up) = %q, want line 6", got)
	}
	var (
		mu      sync.Mutex
		windows [][2]time.Time
	)
	reg := NewRegistry()
	reg.RegisterJob("report", func(_ context.Context, start, end time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		windows = append(windows, [2]time.Time{start, end})
		return nil
	})
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := &settableClock{now: t0}
	eng, err := Open(t.Context(), cfg, Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer eng.Close()
	if len(eng.Defs.Jobs) != 2 {
		t.Fatalf("jobs %+v, want 2", eng.Defs.Jobs)
	}
	byName := map[string]job.Definition{}
	for _, d := range eng.Defs.Jobs {
		byName[d.Name] = d
	}
	if r := byName["report"]; r.CatchUp != job.CatchUpAll || r.MaxRetries != -1 || r.Timeout != time.Minute || r.Disabled {
		t.Errorf("report = %+v, want catch-up all, no retries, 1m", r)
	}
	if !byName["nightly"].Disabled {
		t.Errorf("nightly = %+v, want disabled", byName["nightly"])
	}

	jr, err := eng.NewJobRunner("w1")
	if err != nil {
		t.Fatalf("NewJobRunner: %v", err)
	}
	if _, err := jr.Pass(t.Context()); err != nil {
		t.Fatalf("Pass: %v", err)
	}
	clock.set(t0.Add(11 * time.Minute))
	res, err := jr.Pass(t.Context())
	if err != nil || res.Completed != 2 {
		t.Fatalf("Pass = %+v, %v; want 2 windows completed", res, err)
	}
	want := [][2]time.Time{{t0, t0.Add(5 * time.Minute)}, {t0.Add(5 * time.Minute), t0.Add(10 * time.Minute)}}
	mu.Lock()
	defer mu.Unlock()
	if len(windows) != 2 || windows[0] != want[0] || windows[1] != want[1] {
		t.Errorf("windows %v, want %v", windows, want)
	}
}

func TestJobsConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "winchester.yaml", `jobs:
  a:
    handler: x
  b:
    schedule: "every day"
    handler: x
    catch_up: some
    max_retries: -1
    timeout: -1s
  c:
    schedule: "@hourly"
  d:
    schedule: "@hourly"
    handler: x
    schedul: "@daily"
`)
	_, err := Load(p)
	assertErrorContains(t, err, []string{
		`winchester.yaml:15: jobs.d.schedul: unknown key (did you mean schedule?)`,
	})
	writeFile(t, dir, "winchester.yaml", `jobs:
  a:
    handler: x
  b:
    schedule: "every day"
    handler: x
    timeout: -1s
    max_retries: -1
    catch_up: some
  c:
    schedule: "@hourly"
`)
	_, err = Load(p)
	assertErrorContains(t, err, []string{
		`winchester.yaml:2: jobs.a.schedule: required`,
		`winchester.yaml:5: jobs.b.schedule: schedule "every day":`,
		`winchester.yaml:7: jobs.b.timeout: must not be negative`,
		`winchester.yaml:8: jobs.b.max_retries: must not be negative`,
		`winchester.yaml:9: jobs.b.catch_up: unknown catch_up "some" (want all, latest or skip)`,
		`winchester.yaml:10: jobs.c.handler: required`,
	})
}

func TestJobHandlerNotRegistered(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, map[string]string{"winchester.yaml": "database: {url: 'sqlite://'}\njobs:\n  report:\n    schedule: '@hourly'\n    handler: report\n"})
	_, err := Open(t.Context(), cfg, Options{})
	assertErrorContains(t, err, []string{`winchester.yaml:5: jobs.report.handler: no Go job registered as "report" (Registry.RegisterJob; registered: none)`})
	if errors.Is(err, ErrPluginNotAvailable) {
		t.Errorf("error %v is a trait plugin error", err)
	}
}
