// Package metrics holds Winchester's Prometheus metrics: one registry per
// engine, into which the ingest path, the HTTP API, the pipeline workers
// and the other front doors record. Nothing here uses the client library's
// global default registry, so several engines (or tests) in one process
// keep separate metrics.
//
// Every method of *Metrics is safe for concurrent use and does nothing on
// a nil *Metrics, so components take an optional *Metrics and call it
// without checking. The metric names are documented in docs/METRICS.md;
// all start with "winchester_".
package metrics

import (
	"errors"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

const namespace = "winchester"

// Reasons label rejected events (winchester_events_rejected_total).
const (
	// ReasonInvalidEvent: the event misses a required field or is not a
	// JSON object of the event encoding.
	ReasonInvalidEvent = "invalid_event"
	// ReasonUndistillable: the notification could not be turned into an
	// event (no definition matched, bad JSON, missing fields).
	ReasonUndistillable = "undistillable"
	// ReasonSchema: the event does not match its declaration in the
	// event schema (or its type is undeclared under strict).
	ReasonSchema = "schema"
)

// Config holds what the metrics describe about the build.
type Config struct {
	// Version is the build's version (winchester_build_info).
	Version string
	// NowFunc is the clock of the hourly counts of ProcessedByHour (nil:
	// time.Now).
	NowFunc func() time.Time
}

// Metrics is the registry and the metrics recorded into it.
type Metrics struct {
	reg *prometheus.Registry

	received   *prometheus.CounterVec
	stored     *prometheus.CounterVec
	duplicate  *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	failed     *prometheus.CounterVec
	groupSize  prometheus.Histogram
	groupSubs  prometheus.Histogram
	commitTime *prometheus.HistogramVec

	streamsDone   *prometheus.CounterVec
	pipelineTime  *prometheus.HistogramVec
	handlerTime   *prometheus.HistogramVec
	claimConflict prometheus.Counter
	fireLag       *prometheus.HistogramVec

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	hours *hourly

	jobRuns     *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
}

// New returns metrics registered in a new registry, with the Go runtime
// and process collectors and winchester_build_info.
func New(cfg Config) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, hours: &hourly{now: cfg.NowFunc}}
	if m.hours.now == nil {
		m.hours.now = time.Now
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m.received = counter("events_received_total", "Events and notifications handed to the ingest path, by source.", "source")
	m.stored = counter("events_stored_total", "Events stored (committed), by source.", "source")
	m.duplicate = counter("events_duplicate_total", "Events ignored because their message_id was stored before, by source.", "source")
	m.rejected = counter("events_rejected_total", "Events and notifications rejected, by source and reason.", "source", "reason")
	m.failed = counter("events_failed_total", "Events whose transaction failed (nothing stored; the sender was told to retry), by source.", "source")
	m.groupSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "ingest_group_events", Help: "Events per group-commit transaction.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 13),
	})
	m.groupSubs = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "ingest_group_submissions", Help: "Submissions (requests, deliveries, calls) per group-commit transaction.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	m.commitTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "ingest_commit_duration_seconds", Help: "Duration of group-commit transactions, by result (ok, error).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"result"})
	reg.MustRegister(m.groupSize, m.groupSubs, m.commitTime)

	m.streamsDone = counter("streams_processed_total",
		"Streams processed by pipeline workers, by trigger, action (fire, expire) and result (ok, error, lost_claim).",
		"trigger", "action", "result")
	m.pipelineTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "pipeline_duration_seconds",
		Help:    "Time from claiming a stream to its final state, by trigger and action.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	}, []string{"trigger", "action"})
	m.handlerTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "handler_duration_seconds",
		Help:    "Duration of pipeline handler calls, by trigger, pipeline, handler and op (handle_events, commit).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
	}, []string{"trigger", "pipeline", "handler", "op"})
	m.claimConflict = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "claim_conflicts_total", Help: "Claims lost to another worker (compare-and-set conflicts).",
	})
	m.fireLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "fire_lag_seconds",
		Help:    "Time from a stream's deadline (fire or expire timestamp) to the worker processing it, by action.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
	}, []string{"action"})
	reg.MustRegister(m.pipelineTime, m.handlerTime, m.claimConflict, m.fireLag)

	m.httpRequests = counter("http_requests_total", "HTTP requests, by route and status code.", "route", "code")
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds", Help: "HTTP request durations, by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	}, []string{"route"})
	reg.MustRegister(m.httpDuration)

	m.jobRuns = counter("job_runs_total",
		"Recorded runs of scheduled jobs, by job and status (completed, failed: retried, gave_up, skipped).", "job", "status")
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "job_run_duration_seconds", Help: "Duration of scheduled job runs, by job.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
	}, []string{"job"})
	reg.MustRegister(m.jobDuration)

	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info", Help: "Always 1; the labels describe the build.",
	}, []string{"version", "go_version"})
	build.WithLabelValues(cfg.Version, runtime.Version()).Set(1)
	reg.MustRegister(build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for components that register collectors
// of their own. Nil for nil metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// EventsReceived counts n events or notifications handed to the ingest
// path by source.
func (m *Metrics) EventsReceived(source string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.received.WithLabelValues(source).Add(float64(n))
}

// EventsRejected counts n events rejected for reason before or during
// ingest.
func (m *Metrics) EventsRejected(source, reason string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.rejected.WithLabelValues(source, reason).Add(float64(n))
}

// EventsFailed counts n events whose transaction failed.
func (m *Metrics) EventsFailed(source string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.failed.WithLabelValues(source).Add(float64(n))
}

// CountResults counts stored, duplicate and rejected results; rejected
// ones count with reason, or with ReasonSchema when the event schema
// refused them.
func (m *Metrics) CountResults(source, reason string, results []trigger.Result) {
	if m == nil {
		return
	}
	var stored, dup, rej, schema int
	for _, r := range results {
		switch {
		case r.Outcome == trigger.Stored:
			stored++
		case r.Outcome == trigger.Duplicate:
			dup++
		case r.Outcome == trigger.Rejected && errors.Is(r.Err, stream.ErrSchema):
			schema++
		case r.Outcome == trigger.Rejected:
			rej++
		}
	}
	m.EventsRejected(source, ReasonSchema, schema)
	if stored > 0 {
		m.stored.WithLabelValues(source).Add(float64(stored))
	}
	if dup > 0 {
		m.duplicate.WithLabelValues(source).Add(float64(dup))
	}
	m.EventsRejected(source, reason, rej)
}

// GroupCommitted records one group-commit transaction of events from subs
// submissions that took d (err: it failed).
func (m *Metrics) GroupCommitted(events, subs int, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.commitTime.WithLabelValues(result).Observe(d.Seconds())
	if err == nil {
		m.groupSize.Observe(float64(events))
		m.groupSubs.Observe(float64(subs))
	}
}

// HTTPRequest records one HTTP request of route answered with code.
func (m *Metrics) HTTPRequest(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, statusText(code)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

func statusText(code int) string {
	const digits = "0123456789"
	if code < 100 || code > 999 {
		return "000"
	}
	return string([]byte{digits[code/100], digits[code/10%10], digits[code%10]})
}
