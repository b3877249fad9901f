package metrics

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Hours is how many hours of processed streams ProcessedByHour keeps.
const Hours = 24

// Processed is one series of winchester_streams_processed_total: the
// streams of a trigger a worker of this process fired or expired, by
// result (ok, error, lost_claim).
type Processed struct {
	Trigger, Action, Result string
	Count                   int64
}

// Processed returns the counts of winchester_streams_processed_total since
// the process started, by trigger, action and result. It reads only that
// counter (no collector that asks the database runs). Nil for nil metrics.
func (m *Metrics) Processed() []Processed {
	if m == nil {
		return nil
	}
	var out []Processed
	for _, mt := range collect(m.streamsDone) {
		l := labels(mt)
		out = append(out, Processed{Trigger: l["trigger"], Action: l["action"], Result: l["result"], Count: int64(mt.GetCounter().GetValue())})
	}
	slices.SortFunc(out, func(a, b Processed) int {
		return cmp.Or(cmp.Compare(a.Trigger, b.Trigger), cmp.Compare(a.Action, b.Action), cmp.Compare(a.Result, b.Result))
	})
	return out
}

// Lag summarises winchester_fire_lag_seconds for one action: how many
// streams were observed and bounds of the median and 95th percentile (the
// upper bound of the histogram bucket they fall in; +Inf beyond the
// largest).
type Lag struct {
	Action   string
	Count    uint64
	Mean     time.Duration
	P50, P95 float64 // seconds
}

// FireLag summarises the fire lag histogram by action, reading only it.
// Nil for nil metrics.
func (m *Metrics) FireLag() []Lag {
	if m == nil {
		return nil
	}
	var out []Lag
	for _, mt := range collect(m.fireLag) {
		h := mt.GetHistogram()
		l := Lag{Action: labels(mt)["action"], Count: h.GetSampleCount()}
		if l.Count > 0 {
			l.Mean = time.Duration(h.GetSampleSum() / float64(l.Count) * float64(time.Second))
		}
		l.P50, l.P95 = quantile(h, 0.5), quantile(h, 0.95)
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Lag) int { return cmp.Compare(a.Action, b.Action) })
	return out
}

// quantile returns the upper bound of the bucket holding quantile q.
func quantile(h *dto.Histogram, q float64) float64 {
	n := h.GetSampleCount()
	if n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(n)))
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() >= want {
			return b.GetUpperBound()
		}
	}
	return math.Inf(1)
}

func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var out []*dto.Metric
	for pm := range ch {
		var mt dto.Metric
		if err := pm.Write(&mt); err == nil {
			out = append(out, &mt)
		}
	}
	return out
}

func labels(mt *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range mt.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// HourCounts are the streams of one trigger processed in one hour.
type HourCounts struct {
	Start                   time.Time // the hour's start (UTC)
	Fired, Expired, Errored int64
}

// hourly counts processed streams per trigger and hour, for the last
// Hours hours.
type hourly struct {
	mu  sync.Mutex
	now func() time.Time
	by  map[string]map[time.Time]*HourCounts
}

func (h *hourly) add(trigger string, expire, ok bool) {
	hour := h.now().UTC().Truncate(time.Hour)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.by == nil {
		h.by = map[string]map[time.Time]*HourCounts{}
	}
	per := h.by[trigger]
	if per == nil {
		per = map[time.Time]*HourCounts{}
		h.by[trigger] = per
	}
	c := per[hour]
	if c == nil {
		c = &HourCounts{Start: hour}
		per[hour] = c
		for t := range per {
			if !t.After(hour.Add(-Hours * time.Hour)) {
				delete(per, t)
			}
		}
	}
	switch {
	case !ok:
		c.Errored++
	case expire:
		c.Expired++
	default:
		c.Fired++
	}
}

// ProcessedByHour returns, per trigger, the streams this process's
// workers fired, expired or failed in each of the last Hours hours
// (oldest first, hours without any included), counted since the process
// started. Nil for nil metrics.
func (m *Metrics) ProcessedByHour() map[string][]HourCounts {
	if m == nil {
		return nil
	}
	h := m.hours
	first := h.now().UTC().Truncate(time.Hour).Add(-(Hours - 1) * time.Hour)
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]HourCounts{}
	for trigger, per := range h.by {
		row := make([]HourCounts, Hours)
		for i := range row {
			row[i].Start = first.Add(time.Duration(i) * time.Hour)
			if c := per[row[i].Start]; c != nil {
				row[i] = *c
			}
		}
		out[trigger] = row
	}
	return out
}
