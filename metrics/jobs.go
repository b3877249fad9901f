package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/job"
	"github.com/winchester-go/winchester/stream"
)

// ObserveJobRun records a run of a scheduled job as the job runner
// recorded it (job.RunnerConfig.RunFunc): winchester_job_runs_total and,
// for runs that ran (not skipped windows),
// winchester_job_run_duration_seconds.
func (m *Metrics) ObserveJobRun(run db.JobRun) {
	if m == nil {
		return
	}
	m.jobRuns.WithLabelValues(run.Job, run.Status.String()).Inc()
	if !run.StartedAt.IsZero() {
		m.jobDuration.WithLabelValues(run.Job).Observe(run.FinishedAt.Sub(run.StartedAt).Seconds())
	}
}

// JobStates is what the job collector reads (db.JobStore).
type JobStates interface {
	JobStates(ctx context.Context) ([]db.JobState, error)
}

// jobCollector reports how far each job is behind at scrape time.
type jobCollector struct {
	store  JobStates
	scheds map[string]job.Schedule
	clock  stream.Clock
	behind *prometheus.Desc
}

// NewJobCollector returns a collector that reads, at every scrape, the
// state of the enabled jobs of defs and reports
// winchester_job_behind_seconds{job}: how long the job's oldest undone
// window has been due (0 when none is).
func NewJobCollector(store JobStates, defs []job.Definition, clock stream.Clock) prometheus.Collector {
	if clock == nil {
		clock = stream.SystemClock{}
	}
	scheds := map[string]job.Schedule{}
	for _, d := range defs {
		if !d.Disabled {
			scheds[d.Name] = d.Schedule
		}
	}
	return &jobCollector{store: store, scheds: scheds, clock: clock,
		behind: prometheus.NewDesc(namespace+"_job_behind_seconds",
			"How long the oldest undone window of a scheduled job has been due (0: none is), by job.", []string{"job"}, nil)}
}

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.behind }

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	states, err := c.store.JobStates(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.behind, err)
		return
	}
	now := c.clock.Now()
	for _, st := range states {
		sched, ok := c.scheds[st.Name]
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.behind, prometheus.GaugeValue, job.Behind(st, sched, now).Seconds(), st.Name)
	}
}
