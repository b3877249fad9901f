package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/winchester-go/winchester/db"
)

// replicaCollector exports the state of the read replica
// (database.read_url).
type replicaCollector struct {
	r       db.ReplicaReporter
	lag     *prometheus.Desc
	up      *prometheus.Desc
	standby *prometheus.Desc
}

// NewReplicaCollector returns a collector that asks the read store, at
// every scrape, how far it lags behind the primary
// (winchester_replica_lag_seconds: since the newest replayed transaction
// committed, 0 when everything received is replayed), whether it is a
// standby (winchester_replica_in_recovery) and whether it answered
// (winchester_replica_up). The lag and in_recovery gauges are absent
// while it does not answer.
func NewReplicaCollector(r db.ReplicaReporter) prometheus.Collector {
	return &replicaCollector{
		r: r,
		lag: prometheus.NewDesc(namespace+"_replica_lag_seconds",
			"How far the read replica (database.read_url) is behind the primary: seconds since the newest transaction it replayed committed, 0 when it has replayed all it received.", nil, nil),
		up: prometheus.NewDesc(namespace+"_replica_up",
			"1 when the read replica (database.read_url) answered the last scrape, 0 otherwise.", nil, nil),
		standby: prometheus.NewDesc(namespace+"_replica_in_recovery",
			"1 when the read database is a standby in recovery (pg_is_in_recovery()), 0 when it is a primary.", nil, nil),
	}
}

func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.up
	ch <- c.standby
}

func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.r.ReplicaStatus(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, st.Lag.Seconds())
	recovery := 0.0
	if st.InRecovery {
		recovery = 1
	}
	ch <- prometheus.MustNewConstMetric(c.standby, prometheus.GaugeValue, recovery)
}
