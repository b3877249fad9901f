package subscriber_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/subscriber"
)

// lockedBuffer is a log destination read while the runner writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gauge returns the value of metric name for subscriber sub in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name, sub string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelOf(m, "subscriber") == sub {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestHorizonWaitIsVisible holds a transaction open on another connection
// (an ingest transaction that stored an event and does not commit) while
// later events commit: the subscriber's status, its report, the metrics
// and, after the threshold, the runner's log say that delivery waits for
// the snapshot horizon, since when, how many events are held back and by
// which transaction; once it commits, every event is delivered and the
// wait ends.
func TestHorizonWaitIsVisible(t *testing.T) {
	s := openPostgres(t)
	in := newIngester(t, s)
	rec := newRecorder()
	var logs lockedBuffer
	r, err := subscriber.NewRunner(s, []subscriber.Definition{{Name: "audit", Deliver: rec.deliver}}, subscriber.RunnerConfig{
		Name: "w1", PollInterval: 10 * time.Millisecond, HorizonWarning: 300 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	created(t, s, "audit")

	held := in.events("held.open", 1)
	stored := make(chan time.Time)
	commit := make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- s.InTx(context.Background(), func(ctx context.Context, tx db.Ops) error {
			if _, err := in.m.AddEventsTx(ctx, tx, held); err != nil {
				return err
			}
			stored <- time.Now()
			<-commit
			return nil
		})
	}()
	heldSince := <-stored
	committed := in.add(in.events("committed.later", 3))

	var st subscriber.Status
	eventually(t, func() (bool, string) {
		st, err = subscriber.ReadStatus(t.Context(), s, "audit")
		return err == nil && st.WaitsForHorizon() && st.Horizon.HeldBack == 3,
			"status " + describe(st) + ", want a wait for the horizon with 3 events held back"
	})
	t.Logf("held back by %s since %v", st.Horizon.Holder, st.Horizon.Since)
	// The holder is the oldest transaction still running on the server:
	// ours, or an older one of another session.
	if st.Horizon.Since.IsZero() || st.Horizon.Since.After(heldSince.Add(time.Second)) {
		t.Errorf("horizon wait since %v, want a time no later than the held transaction's (%v)", st.Horizon.Since, heldSince)
	}
	if !strings.HasPrefix(st.Horizon.Holder, "pid ") && !strings.HasPrefix(st.Horizon.Holder, "prepared transaction ") {
		t.Errorf("holder %q, want it to name the server process or prepared transaction", st.Horizon.Holder)
	}
	rep := st.Report(time.Now())
	if rep.HorizonWait == nil || rep.HorizonWait.HeldBack != 3 || rep.HorizonWait.Since == nil || rep.HorizonWait.Holder != st.Horizon.Holder {
		t.Errorf("report's horizon_wait = %+v, want 3 held back since %v by %s", rep.HorizonWait, st.Horizon.Since, st.Horizon.Holder)
	}
	if rep.Lag != 0 {
		t.Errorf("report's lag = %d, want 0: the held-back events are not readable yet", rep.Lag)
	}

	met := metrics.New(metrics.Config{})
	met.Registry().MustRegister(metrics.NewSubscriberCollector(s))
	if v, ok := gauge(t, met.Registry(), "winchester_subscriber_held_back_events", "audit"); !ok || v != 3 {
		t.Errorf("winchester_subscriber_held_back_events = %v (%v), want 3", v, ok)
	}
	if v, ok := gauge(t, met.Registry(), "winchester_subscriber_horizon_wait_seconds", "audit"); !ok || v <= 0 {
		t.Errorf("winchester_subscriber_horizon_wait_seconds = %v (%v), want > 0", v, ok)
	}

	eventually(t, func() (bool, string) {
		return strings.Contains(logs.String(), `"msg":"delivery waits for the snapshot horizon`) &&
			strings.Contains(logs.String(), `"held_back":3`), "no warning in the log:\n" + logs.String()
	})
	if got := rec.received(); len(got) != 0 {
		t.Fatalf("delivered %v while the held transaction was open", got)
	}

	close(commit)
	if err := <-txDone; err != nil {
		t.Fatalf("held transaction: %v", err)
	}
	want := append(messageIDs(held), committed...)
	if got := rec.waitFor(t, len(want)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	eventually(t, func() (bool, string) {
		st, err := subscriber.ReadStatus(t.Context(), s, "audit")
		return err == nil && !st.WaitsForHorizon() && st.Report(time.Now()).HorizonWait == nil, "still waiting: " + describe(st)
	})
	eventually(t, func() (bool, string) {
		return strings.Contains(logs.String(), `"msg":"delivery goes on`), "no end of the wait in the log:\n" + logs.String()
	})
	if v, _ := gauge(t, met.Registry(), "winchester_subscriber_horizon_wait_seconds", "audit"); v != 0 {
		t.Errorf("winchester_subscriber_horizon_wait_seconds after the commit = %v, want 0", v)
	}
}

// TestHorizonNeverWaitsOnSQLite: SQLite serialises writers, so no event
// ever waits for an older transaction.
func TestHorizonNeverWaitsOnSQLite(t *testing.T) {
	s := openSQLite(t)
	in := newIngester(t, s)
	rec := newRecorder()
	run(t, s, "w1", subscriber.Definition{Name: "audit", Deliver: rec.deliver})
	created(t, s, "audit")
	in.add(in.events("e", 2))
	rec.waitFor(t, 2)
	st, err := subscriber.ReadStatus(t.Context(), s, "audit")
	if err != nil {
		t.Fatal(err)
	}
	if st.WaitsForHorizon() || st.Horizon != (db.HorizonWait{}) || st.Report(time.Now()).HorizonWait != nil {
		t.Errorf("SQLite status = %+v, want no horizon wait", st)
	}
}

// describe summarises a status's lag and horizon wait for a failure.
func describe(st subscriber.Status) string {
	return fmt.Sprintf("lag=%d held_back=%d since=%v holder=%q", st.Lag, st.Horizon.HeldBack, st.Horizon.Since, st.Horizon.Holder)
}

// horizonStore counts the HorizonWait calls and fails them with err.
type horizonStore struct {
	store
	calls atomic.Int32
	err   error
}

func (h *horizonStore) HorizonWait(ctx context.Context, after db.Position, limit int) (db.HorizonWait, error) {
	h.calls.Add(1)
	if h.err != nil {
		return db.HorizonWait{}, h.err
	}
	return h.store.HorizonWait(ctx, after, limit)
}

// TestHorizonWatch: a runner looks at the horizon of a subscriber that
// caught up unless HorizonWarning is negative, and goes on delivering when
// the look fails; a status whose look fails is an error.
func TestHorizonWatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		warning time.Duration
		err     error
		looks   bool
	}{
		{"default", 0, nil, true},
		{"off", -1, nil, false},
		{"failing", 0, errors.New("connection reset"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := &horizonStore{store: openSQLite(t), err: tc.err}
			in := newIngester(t, hs.store)
			rec := newRecorder()
			r, err := subscriber.NewRunner(hs, []subscriber.Definition{{Name: "audit", Deliver: rec.deliver}}, subscriber.RunnerConfig{
				Name: "w1", PollInterval: 5 * time.Millisecond, HorizonWarning: tc.warning, Logger: dbtest.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			created(t, hs, "audit")
			in.add(in.events("e", 2))
			rec.waitFor(t, 2)
			time.Sleep(100 * time.Millisecond) // twenty polls after catching up
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if n := hs.calls.Load(); (n > 0) != tc.looks {
				t.Errorf("HorizonWait called %d times, want calls: %v", n, tc.looks)
			}
			_, err = subscriber.ReadStatus(t.Context(), hs, "audit")
			if tc.err != nil && (err == nil || !strings.Contains(err.Error(), "connection reset")) {
				t.Errorf("ReadStatus with a failing HorizonWait = %v, want its error", err)
			}
			if tc.err == nil && err != nil {
				t.Errorf("ReadStatus: %v", err)
			}
		})
	}
}
