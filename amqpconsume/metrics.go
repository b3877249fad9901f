package amqpconsume

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the consumers' Prometheus metrics, labelled by consumer
// name. One Metrics serves every consumer of a process. A nil *Metrics
// counts nothing.
type Metrics struct {
	deliveries    *prometheus.CounterVec
	redeliveries  *prometheus.CounterVec
	acks          *prometheus.CounterVec
	outcomes      *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	drops         *prometheus.CounterVec
	reconnects    *prometheus.CounterVec
	ingestFails   *prometheus.CounterVec
	queueMessages *prometheus.GaugeVec
	pausedGauge   *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "winchester", Subsystem: "amqp", Name: name, Help: help}, append([]string{"consumer"}, labels...))
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "winchester", Subsystem: "amqp", Name: name, Help: help}, []string{"consumer"})
	}
	m := &Metrics{
		deliveries:    counter("deliveries_total", "Messages delivered by the broker (redeliveries included)."),
		redeliveries:  counter("redeliveries_total", "Messages delivered again by the broker (the redelivered flag was set)."),
		acks:          counter("acks_total", "Messages acknowledged after their batch was stored, dead-lettered or dropped."),
		outcomes:      counter("ingested_total", "Messages ingested and acknowledged, by outcome: stored, duplicate (stored before), or ignored (no event definition matches the notification; dropped, as the distiller drops it).", "outcome"),
		deadLetters:   counter("dead_lettered_total", "Messages published to the dead-letter exchange, by reason (envelope, rejected, refused).", "reason"),
		drops:         counter("dropped_total", "Messages that could not be ingested and were dropped for want of a dead-letter exchange, by reason.", "reason"),
		reconnects:    counter("reconnects_total", "Connections to the broker lost or refused, each followed by a reconnection attempt."),
		ingestFails:   counter("ingest_failures_total", "Failed attempts to store a batch (database unreachable or refusing); the batch is retried."),
		queueMessages: gauge("queue_messages", "Messages ready in the consumed queue, as the broker last reported (the consumer's lag)."),
		pausedGauge:   gauge("paused", "1 while the consumer holds a batch the database failed to store and waits to retry it."),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.redeliveries, m.acks, m.outcomes, m.deadLetters, m.drops, m.reconnects, m.ingestFails, m.queueMessages, m.pausedGauge} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) delivery(name string, redelivered bool) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(name).Inc()
	if redelivered {
		m.redeliveries.WithLabelValues(name).Inc()
	}
}

func (m *Metrics) acked(name string, n int) {
	if m != nil {
		m.acks.WithLabelValues(name).Add(float64(n))
	}
}

func (m *Metrics) outcome(name, outcome string) {
	if m != nil {
		m.outcomes.WithLabelValues(name, outcome).Inc()
	}
}

func (m *Metrics) deadLettered(name, reason string) {
	if m != nil {
		m.deadLetters.WithLabelValues(name, reason).Inc()
	}
}

func (m *Metrics) dropped(name, reason string) {
	if m != nil {
		m.drops.WithLabelValues(name, reason).Inc()
	}
}

func (m *Metrics) reconnect(name string) {
	if m != nil {
		m.reconnects.WithLabelValues(name).Inc()
	}
}

func (m *Metrics) ingestFailure(name string) {
	if m != nil {
		m.ingestFails.WithLabelValues(name).Inc()
	}
}

func (m *Metrics) lag(name string, messages int) {
	if m != nil {
		m.queueMessages.WithLabelValues(name).Set(float64(messages))
	}
}

func (m *Metrics) paused(name string, on bool) {
	if m == nil {
		return
	}
	v := 0.0
	if on {
		v = 1
	}
	m.pausedGauge.WithLabelValues(name).Set(v)
}
