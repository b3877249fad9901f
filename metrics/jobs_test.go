package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/job"
	"github.com/winchester-go/winchester/metrics"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

type jobStates struct {
	states []db.JobState
	err    error
}

func (s jobStates) JobStates(context.Context) ([]db.JobState, error) { return s.states, s.err }

func TestJobMetrics(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m := metrics.New(metrics.Config{})
	m.ObserveJobRun(db.JobRun{Job: "report", Status: db.JobCompleted, StartedAt: t0, FinishedAt: t0.Add(2 * time.Second)})
	m.ObserveJobRun(db.JobRun{Job: "report", Status: db.JobFailed, StartedAt: t0, FinishedAt: t0.Add(time.Second)})
	m.ObserveJobRun(db.JobRun{Job: "report", Status: db.JobSkipped, FinishedAt: t0})
	five := job.MustParseSchedule("*/5 * * * *")
	defs := []job.Definition{{Name: "late", Schedule: five}, {Name: "ok", Schedule: five}, {Name: "retry", Schedule: five},
		{Name: "off", Schedule: five, Disabled: true}}
	now := t0.Add(time.Hour + 30*time.Second)
	store := jobStates{states: []db.JobState{
		{Name: "late", LastEnd: t0.Add(50 * time.Minute)},                                 // 00:55 due 5m30s ago
		{Name: "ok", LastEnd: t0.Add(time.Hour)},                                          // next window ends 01:05
		{Name: "retry", WindowStart: t0, WindowEnd: t0.Add(5 * time.Minute), Attempts: 2}, // waiting since 00:05
		{Name: "off", LastEnd: t0},
	}}
	if err := m.Registry().Register(metrics.NewJobCollector(store, defs, fixedClock(now))); err != nil {
		t.Fatal(err)
	}
	text := scrape(t, m)
	for _, want := range []string{
		`winchester_job_runs_total{job="report",status="completed"} 1`,
		`winchester_job_runs_total{job="report",status="failed"} 1`,
		`winchester_job_runs_total{job="report",status="skipped"} 1`,
		`winchester_job_run_duration_seconds_count{job="report"} 2`,
		`winchester_job_run_duration_seconds_sum{job="report"} 3`,
		`winchester_job_behind_seconds{job="late"} 330`,
		`winchester_job_behind_seconds{job="ok"} 0`,
		`winchester_job_behind_seconds{job="retry"} 3330`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, `job="off"`) {
		t.Error("/metrics reports the disabled job")
	}

	bad := metrics.New(metrics.Config{})
	if err := bad.Registry().Register(metrics.NewJobCollector(jobStates{err: errors.New("down")}, defs, fixedClock(now))); err != nil {
		t.Fatal(err)
	}
	if text := scrape(t, bad); strings.Contains(text, "winchester_job_behind_seconds{") {
		t.Errorf("job collector with a failing store reported values:\n%s", text)
	}
}
