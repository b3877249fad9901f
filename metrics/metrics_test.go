package metrics_test

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/metrics/metricstest"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/trigger"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	b, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRecordedMetricsAreServed(t *testing.T) {
	m := metrics.New(metrics.Config{Version: "v1.2.3"})
	m.EventsReceived("http", 4)
	m.CountResults("http", metrics.ReasonInvalidEvent, []trigger.Result{
		{Outcome: trigger.Stored}, {Outcome: trigger.Stored}, {Outcome: trigger.Duplicate}, {Outcome: trigger.Rejected},
	})
	m.EventsFailed("amqp", 2)
	m.GroupCommitted(3, 2, time.Millisecond, nil)
	m.GroupCommitted(3, 2, time.Millisecond, errors.New("down"))
	m.HTTPRequest("POST /v1/events", 202, time.Millisecond)
	m.ObserveStep(pipeline.Step{Trigger: "t1", Pipeline: "p1", Handler: "logger", Op: pipeline.OpCommit, Duration: 3 * time.Millisecond})
	m.ObserveStep(pipeline.Step{Trigger: "t1", Pipeline: "p1", Handler: "logger", Op: pipeline.OpCommit, Duration: time.Millisecond})
	text := scrape(t, m)
	for _, want := range []string{
		`winchester_build_info{go_version="go`,
		`version="v1.2.3"} 1`,
		`winchester_events_received_total{source="http"} 4`,
		`winchester_events_stored_total{source="http"} 2`,
		`winchester_events_duplicate_total{source="http"} 1`,
		`winchester_events_rejected_total{reason="invalid_event",source="http"} 1`,
		`winchester_events_failed_total{source="amqp"} 2`,
		`winchester_ingest_group_events_count 1`,
		`winchester_ingest_commit_duration_seconds_count{result="error"} 1`,
		`winchester_http_requests_total{code="202",route="POST /v1/events"} 1`,
		`winchester_handler_duration_seconds_count{handler="logger",op="commit",pipeline="p1",trigger="t1"} 2`,
		`winchester_handler_duration_seconds_sum{handler="logger",op="commit",pipeline="p1",trigger="t1"} 0.004`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	metricstest.Check(t, text)
}

// Two registries in one process do not share counters (no global
// default registry).
func TestRegistriesAreSeparate(t *testing.T) {
	a, b := metrics.New(metrics.Config{}), metrics.New(metrics.Config{})
	a.EventsReceived("http", 1)
	if text := scrape(t, b); strings.Contains(text, "winchester_events_received_total") {
		t.Error("metrics recorded in one registry appear in another")
	}
}

func TestNilMetricsDoNothing(t *testing.T) {
	var m *metrics.Metrics
	m.EventsReceived("http", 1)
	m.EventsRejected("http", "x", 1)
	m.EventsFailed("http", 1)
	m.CountResults("http", "x", []trigger.Result{{Outcome: trigger.Stored}})
	m.GroupCommitted(1, 1, time.Second, nil)
	m.HTTPRequest("x", 200, time.Second)
	m.ObserveStep(pipeline.Step{})
	if m.Registry() != nil {
		t.Error("nil metrics have a registry")
	}
}
