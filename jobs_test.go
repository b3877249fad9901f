package winchester

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
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
    keep_history: 50
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
	byName := map[string]job.Definition{}
	for _, d := range eng.Defs.Jobs {
		byName[d.Name] = d
	}
	if len(eng.Defs.Jobs) != 2+len(BuiltinJobs()) {
		t.Fatalf("jobs %+v, want 2 and the built-in ones", eng.Defs.Jobs)
	}
	// The built-in jobs: rescue every worker_lease and optimize (SQLite)
	// are on; trim and purge are off without their settings.
	for name, want := range map[string]struct {
		schedule string
		on       bool
	}{
		RescueStaleClaimsJob:     {"@every 30s", true},
		OptimizeDatabaseJob:      {DefaultOptimizeDatabaseSchedule, true},
		TrimEventsJob:            {DefaultTrimEventsSchedule, false},
		PurgeCompletedStreamsJob: {DefaultPurgeCompletedStreamsSchedule, false},
	} {
		d := byName[name]
		if d.Schedule.String() != want.schedule || d.Disabled == want.on || (want.on && d.Func == nil) || d.MaxRetries != -1 {
			t.Errorf("built-in job %s = %+v, want schedule %s, on %v, no retries", name, d, want.schedule, want.on)
		}
	}
	if r := byName["report"]; r.CatchUp != job.CatchUpAll || r.MaxRetries != -1 || r.Timeout != time.Minute || r.KeepHistory != 50 || r.Disabled {
		t.Errorf("report = %+v, want catch-up all, no retries, 1m, 50 runs kept", r)
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
	if err != nil || res.Completed != 3 { // and rescue_stale_claims
		t.Fatalf("Pass = %+v, %v; want 2 windows of report and one of rescue_stale_claims completed", res, err)
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
    keep_history: -1
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
		`winchester.yaml:10: jobs.b.keep_history: must not be negative`,
		`winchester.yaml:11: jobs.c.handler: required`,
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

func TestExecJob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "ok.sh", "#!/bin/sh\necho \"$WINCHESTER_JOB $WINCHESTER_WINDOW_START $WINCHESTER_WINDOW_END $WINCHESTER_IDEMPOTENCY_KEY\" >> seen.txt\necho ignored\n")
	writeFile(t, dir, "fail.sh", "#!/bin/sh\necho 'no route to the report host' >&2\nexit 3\n")
	writeFile(t, dir, "hang.sh", "#!/bin/sh\nexec sleep 30\n")
	for _, f := range []string{"ok.sh", "fail.sh", "hang.sh"} {
		if err := os.Chmod(filepath.Join(dir, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := writeFile(t, dir, "winchester.yaml", `database: {url: 'sqlite://'}
jobs:
  ok:
    schedule: "@hourly"
    handler: exec
    command: [./ok.sh]
  fail:
    schedule: "@hourly"
    handler: exec
    command: [./fail.sh]
    max_retries: 0
  hang:
    schedule: "@hourly"
    handler: exec
    command: [./hang.sh]
    timeout: 200ms
    max_retries: 0
  rescue_stale_claims: {enabled: false}
`)
	cfg, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	eng, clock, jr := openJobRunner(t, cfg, nil)
	t0 := clock.Now()
	clock.set(t0.Add(time.Hour))
	start := time.Now()
	res, err := jr.Pass(t.Context())
	if err != nil || res.Completed != 1 || res.GaveUp != 2 {
		t.Fatalf("Pass = %+v, %v; want ok completed, fail and hang given up", res, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the pass took %v: the hanging command was not stopped at its time limit", d)
	}
	seen, err := os.ReadFile(filepath.Join(dir, "seen.txt"))
	want := "ok 2026-12-01T00:00:00Z 2026-12-01T01:00:00Z job-ok-" + fmt.Sprint(t0.Add(time.Hour).UnixMicro()) + "\n"
	if err != nil || string(seen) != want {
		t.Errorf("the command saw %q (%v), want %q", seen, err, want)
	}
	js := eng.Store.(db.JobStore)
	for name, wantErr := range map[string]string{
		"fail": "command ./fail.sh: exit status 3: no route to the report host",
		"hang": "time limit 200ms exceeded",
	} {
		runs, err := js.JobRuns(t.Context(), name, 10)
		if err != nil || len(runs) != 1 || runs[0].Status != db.JobGaveUp || !strings.Contains(runs[0].Error, wantErr) {
			t.Errorf("runs of %s = %+v, %v; want one given up with %q", name, runs, err, wantErr)
		}
	}
}

func TestExecJobConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "winchester.yaml", `jobs:
  a:
    schedule: "@hourly"
    handler: exec
  b:
    schedule: "@hourly"
    handler: report
    command: [./x.sh]
`)
	_, err := Load(p)
	assertErrorContains(t, err, []string{
		`winchester.yaml:2: jobs.a.command: required by the exec handler`,
		`winchester.yaml:8: jobs.b.command: only the exec handler runs a command (handler is "report")`,
	})
	defer func() {
		if recover() == nil {
			t.Error(`RegisterJob("exec") did not panic`)
		}
	}()
	NewRegistry().RegisterJob(ExecJob, func(context.Context, time.Time, time.Time) error { return nil })
}

// openJobRunner opens cfg's engine (closed at cleanup) on a settable clock
// at 2026-12-01 00:00 UTC with reg (nil: the built-ins), and returns it
// with a runner "w1" of its jobs that made its first pass, in which it
// saw the jobs.
func openJobRunner(t *testing.T, cfg *Config, reg *Registry) (*Engine, *settableClock, *job.Runner) {
	t.Helper()
	clock := &settableClock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	eng, err := Open(t.Context(), cfg, Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	jr, err := eng.NewJobRunner("w1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jr.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	return eng, clock, jr
}
