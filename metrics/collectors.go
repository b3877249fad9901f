package metrics

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/subscriber"
	"github.com/winchester-go/winchester/trigger"
)

// ObserveAttempt records one stream a pipeline worker processed (give it
// to pipeline.WorkerConfig.AttemptFunc): the outcome by trigger, the
// pipeline's duration, claim conflicts and the fire lag.
func (m *Metrics) ObserveAttempt(a pipeline.Attempt) {
	if m == nil {
		return
	}
	action := a.Action.String()
	result := "ok"
	switch {
	case a.LostClaim:
		result = "lost_claim"
		m.claimConflict.Inc()
	case !a.OK:
		result = "error"
	}
	m.streamsDone.WithLabelValues(a.Trigger, action, result).Inc()
	if a.LostClaim {
		return
	}
	m.hours.add(a.Trigger, a.Action == db.Expire, a.OK)
	m.pipelineTime.WithLabelValues(a.Trigger, action).Observe(a.Duration.Seconds())
	deadline := a.Stream.FireTimestamp
	if a.Action == db.Expire {
		deadline = a.Stream.ExpireTimestamp
	}
	if !deadline.IsZero() {
		started := time.Now().Add(-a.Duration)
		m.fireLag.WithLabelValues(action).Observe(max(0, started.Sub(deadline).Seconds()))
	}
}

// ObserveStep records the duration of one pipeline handler call (give it
// to pipeline.WorkerConfig.StepFunc).
func (m *Metrics) ObserveStep(s pipeline.Step) {
	if m == nil {
		return
	}
	m.handlerTime.WithLabelValues(s.Trigger, s.Pipeline, s.Handler, s.Op).Observe(s.Duration.Seconds())
}

// Stats is what the manager collector reads: trigger.Manager.
type Stats interface {
	Stats() *trigger.Stats
}

// managerCollector exports the trigger manager's per-trigger counters.
type managerCollector struct {
	m        Stats
	perTrig  *prometheus.Desc
	mismatch *prometheus.Desc
}

// NewManagerCollector returns a collector of the trigger manager's
// cumulative per-trigger counters, read at every scrape:
// winchester_trigger_stats_total{trigger,stat} (matches, added_events,
// new_streams, ready_to_fire and, for triggers with a debug_level,
// match_passed, match_failed, distinguish_failed) and
// winchester_trigger_mismatches_total{trigger,reason} (debug_level 2).
func NewManagerCollector(m Stats) prometheus.Collector {
	return &managerCollector{
		m: m,
		perTrig: prometheus.NewDesc(namespace+"_trigger_stats_total",
			"The trigger manager's per-trigger counters (matches, added_events, new_streams, ready_to_fire; match_passed, match_failed, distinguish_failed at debug_level 1 and 2).",
			[]string{"trigger", "stat"}, nil),
		mismatch: prometheus.NewDesc(namespace+"_trigger_mismatches_total",
			"Why events did not match a trigger with debug_level 2, by reason.",
			[]string{"trigger", "reason"}, nil),
	}
}

func (c *managerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.perTrig
	ch <- c.mismatch
}

func (c *managerCollector) Collect(ch chan<- prometheus.Metric) {
	_, per := c.m.Stats().Totals()
	for name, counters := range per {
		for k, n := range counters {
			if reason, ok := strings.CutPrefix(k, "mismatch: "); ok {
				ch <- prometheus.MustNewConstMetric(c.mismatch, prometheus.CounterValue, float64(n), name, reason)
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.perTrig, prometheus.CounterValue, float64(n), name, k)
		}
	}
}

// storeCollector reports the backlog from the database at scrape time.
type storeCollector struct {
	store   db.Ops
	clock   stream.Clock
	ready   *prometheus.Desc
	byState *prometheus.Desc
	up      *prometheus.Desc
}

// BacklogCap bounds the ready-stream counts of winchester_streams_ready:
// counting beyond it would make every scrape expensive.
const BacklogCap = 10000

// NewStoreCollector returns a collector that asks the store, at every
// scrape, how many streams wait to fire or expire
// (winchester_streams_ready{action}, capped at BacklogCap), how many wait
// for an operator (winchester_streams_in_error{state}), and whether the
// database answered (winchester_database_up).
func NewStoreCollector(store db.Ops, clock stream.Clock) prometheus.Collector {
	if clock == nil {
		clock = stream.SystemClock{}
	}
	return &storeCollector{
		store: store, clock: clock,
		ready: prometheus.NewDesc(namespace+"_streams_ready",
			"Streams whose fire or expire time has passed and that wait for a worker, by action (capped at 10000).",
			[]string{"action"}, nil),
		byState: prometheus.NewDesc(namespace+"_streams_in_error",
			"Streams whose pipeline failed and that wait for an operator (winchester streams reset), by state.",
			[]string{"state"}, nil),
		up: prometheus.NewDesc(namespace+"_database_up",
			"1 when the database answered the last scrape's queries, 0 otherwise.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.byState
	ch <- c.up
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := stream.NormalizeTime(c.clock.Now())
	var errs []error
	for _, a := range []db.Action{db.Fire, db.Expire} {
		s, err := c.store.ReadyStreams(ctx, db.ReadyParams{Action: a, Now: now, Limit: BacklogCap})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(len(s)), a.String())
	}
	for _, st := range []stream.State{stream.StateError, stream.StateExpireError} {
		n, err := c.store.CountStreams(ctx, db.FindStreamsParams{State: st})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.byState, prometheus.GaugeValue, float64(n), st.String())
	}
	up := 1.0
	if err := errors.Join(errs...); err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}

// NewDefinitionsCollector returns the gauge winchester_definitions_version:
// the version of the live definitions the process runs, read from version
// at scrape time.
func NewDefinitionsCollector(version func() int64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "winchester_definitions_version",
		Help: "Version of the trigger and pipeline definitions this process runs (0: none yet).",
	}, func() float64 { return float64(version()) })
}

// subscriberCollector reports the event subscribers' progress from the
// database at scrape time.
type subscriberCollector struct {
	store       subscriber.Store
	now         func() time.Time // the clock of horizonWait
	lag         *prometheus.Desc
	delivered   *prometheus.Desc
	failures    *prometheus.Desc
	dead        *prometheus.Desc
	heldBack    *prometheus.Desc
	horizonWait *prometheus.Desc
	up          *prometheus.Desc
}

// NewSubscriberCollector returns a collector that reads, at every scrape,
// each event subscriber's delivery lag (winchester_subscriber_lag_events:
// events stored after its position, capped at subscriber.LagCap), its
// deliveries and failed attempts (winchester_subscriber_delivered_total,
// winchester_subscriber_failures_total: kept in the database, so they
// count the work of every process) and its dead letters
// (winchester_subscriber_dead_letters), and whether its delivery waits for
// the snapshot horizon (winchester_subscriber_held_back_events,
// winchester_subscriber_horizon_wait_seconds).
func NewSubscriberCollector(store subscriber.Store) prometheus.Collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, []string{"subscriber"}, nil)
	}
	return &subscriberCollector{
		store:     store,
		now:       time.Now,
		lag:       desc("subscriber_lag_events", "Events stored after the subscriber's position, by subscriber (whether or not they pass its filter)."),
		delivered: desc("subscriber_delivered_total", "Events delivered to the subscriber, by subscriber, by every process."),
		failures:  desc("subscriber_failures_total", "Failed delivery attempts, by subscriber, by every process."),
		dead:      desc("subscriber_dead_letters", "Events the subscriber gave up on after its attempts and that wait for an operator, by subscriber."),
		heldBack: desc("subscriber_held_back_events",
			"Committed events after the subscriber's position that wait for an older transaction still running on the database server (the snapshot horizon), by subscriber."),
		horizonWait: desc("subscriber_horizon_wait_seconds",
			"How long the transaction holding back the subscriber's delivery (the snapshot horizon) has been running while delivery waits for it; 0: delivery does not wait, or the database does not tell."),
		up: prometheus.NewDesc(namespace+"_subscriber_metrics_up",
			"1 when the database answered the last scrape's subscriber queries, 0 otherwise.", nil, nil),
	}
}

func (c *subscriberCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.delivered, c.failures, c.dead, c.heldBack, c.horizonWait, c.up} {
		ch <- d
	}
}

func (c *subscriberCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	statuses, err := subscriber.ReadStatuses(ctx, c.store)
	up := 1.0
	if err != nil {
		up = 0
	}
	for _, s := range statuses {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.Lag), s.Name)
		ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(s.State.Delivered), s.Name)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(s.State.Failures), s.Name)
		ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(s.DeadLetters), s.Name)
		ch <- prometheus.MustNewConstMetric(c.heldBack, prometheus.GaugeValue, float64(s.Horizon.HeldBack), s.Name)
		wait := 0.0
		if s.WaitsForHorizon() && !s.Horizon.Since.IsZero() {
			wait = max(0, c.now().Sub(s.Horizon.Since).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.horizonWait, prometheus.GaugeValue, wait, s.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}
