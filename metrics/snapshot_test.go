package metrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

func TestSnapshots(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)
	m := metrics.New(metrics.Config{NowFunc: func() time.Time { return now }})
	if got := m.Processed(); len(got) != 0 {
		t.Errorf("Processed() before any attempt = %v, want none", got)
	}
	attempt := func(trigger string, a db.Action, ok, lost bool) {
		m.ObserveAttempt(pipeline.Attempt{
			Action: a, Trigger: trigger, OK: ok, LostClaim: lost, Err: errors.New("x"),
			Stream: stream.Stream{FireTimestamp: time.Now().Add(-20 * time.Second), ExpireTimestamp: time.Now().Add(-20 * time.Second)},
		})
	}
	attempt("a", db.Fire, true, false)
	attempt("a", db.Fire, true, false)
	attempt("a", db.Expire, false, false)
	now = now.Add(-2 * time.Hour)
	attempt("a", db.Expire, true, false)
	now = now.Add(-30 * time.Hour) // beyond the kept hours
	attempt("a", db.Fire, true, false)
	now = now.Add(32 * time.Hour)
	attempt("b", db.Fire, false, true) // a lost claim is no outcome

	want := []metrics.Processed{
		{Trigger: "a", Action: "expire", Result: "error", Count: 1},
		{Trigger: "a", Action: "expire", Result: "ok", Count: 1},
		{Trigger: "a", Action: "fire", Result: "ok", Count: 3},
		{Trigger: "b", Action: "fire", Result: "lost_claim", Count: 1},
	}
	if diff := cmp.Diff(want, m.Processed()); diff != "" {
		t.Errorf("Processed() (-want +got):\n%s", diff)
	}

	by := m.ProcessedByHour()
	if _, ok := by["b"]; ok {
		t.Errorf("ProcessedByHour() has trigger b, which only lost a claim")
	}
	hours := by["a"]
	if len(hours) != metrics.Hours {
		t.Fatalf("ProcessedByHour()[a] has %d hours, want %d", len(hours), metrics.Hours)
	}
	last, twoAgo := hours[metrics.Hours-1], hours[metrics.Hours-3]
	if want := (metrics.HourCounts{Start: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC), Fired: 2, Errored: 1}); last != want {
		t.Errorf("last hour = %+v, want %+v", last, want)
	}
	if want := (metrics.HourCounts{Start: time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC), Expired: 1}); twoAgo != want {
		t.Errorf("two hours ago = %+v, want %+v", twoAgo, want)
	}
	var total int64
	for _, h := range hours {
		total += h.Fired + h.Expired + h.Errored
	}
	if total != 4 {
		t.Errorf("ProcessedByHour()[a] totals %d streams, want 4 (the one 32 hours ago is out)", total)
	}

	lag := m.FireLag()
	if len(lag) != 2 || lag[0].Action != "expire" || lag[1].Action != "fire" {
		t.Fatalf("FireLag() = %+v, want expire and fire", lag)
	}
	if lag[1].Count != 3 || lag[1].P50 != 30 || lag[1].P95 != 30 || lag[1].Mean < 19*time.Second {
		t.Errorf("FireLag() fire = %+v, want 3 samples of about 20 s (bucket bound 30)", lag[1])
	}
	var nilM *metrics.Metrics
	if nilM.Processed() != nil || nilM.FireLag() != nil || nilM.ProcessedByHour() != nil {
		t.Errorf("nil metrics return something")
	}
}
