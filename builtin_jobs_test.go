package winchester

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/stream"
)

// statementCounter counts the statements a store sends.
type statementCounter struct {
	mu    sync.Mutex
	stmts []string
}

func (c *statementCounter) add(sql string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stmts = append(c.stmts, strings.Join(strings.Fields(sql), " "))
}

// take returns the statements counted since the last call.
func (c *statementCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stmts
	c.stmts = nil
	return s
}

// An idle pass of a pipeline worker, counted in SQL statements at the
// driver: with the built-in jobs rescue_stale_claims and trim_events
// switched off, every pass also looks for stale claims and trims events
// (the behaviour before the jobs existed); with them on (the default) it
// only looks for ready streams, and the job runner beside it sends
// nothing until a window is due.
func TestIdlePassStatements(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(*testing.T) string { return "sqlite:///w.db" },
		"postgres": func(t *testing.T) string { return dbtest.PostgresURL(t) },
	}
	for _, storeName := range []string{"sqlite", "postgres"} {
		t.Run(storeName, func(t *testing.T) {
			t.Parallel()
			url := stores[storeName](t)
			// housekeeping reports a statement that looks for stale claims
			// or trims events.
			housekeeping := func(sql string) bool {
				return strings.Contains(sql, "lease_until <") || strings.Contains(sql, "DELETE FROM event")
			}
			count := func(t *testing.T, jobs string) (pass, chores, jobPasses int) {
				cfg := loadConfig(t, map[string]string{
					"winchester.yaml": fmt.Sprintf("database: {url: '%s'}\npipeline_config: pipelines.yaml\ntrim_events: true\n%s", url, jobs),
					"pipelines.yaml":  "p: [logger]\n",
				})
				t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
				clock := &settableClock{now: t0}
				c := &statementCounter{}
				eng, err := Open(t.Context(), cfg, Options{Clock: clock, Migrate: true, StatementFunc: c.add})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer eng.Close()
				w, err := eng.NewWorker(eng.WorkerConfig("w1"))
				if err != nil {
					t.Fatal(err)
				}
				jr, err := eng.NewJobRunner("w1")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := jr.Pass(t.Context()); err != nil { // first sight of the jobs: their state is created
					t.Fatal(err)
				}
				c.take()
				if _, err := w.Pass(t.Context(), t.Context()); err != nil {
					t.Fatal(err)
				}
				stmts := c.take()
				t.Logf("idle pass, %d statements:\n%s", len(stmts), strings.Join(stmts, "\n"))
				for _, s := range stmts {
					if housekeeping(s) {
						chores++
					}
				}
				clock.set(t0.Add(10 * time.Second)) // no window due yet
				if _, err := jr.Pass(t.Context()); err != nil {
					t.Fatal(err)
				}
				return len(stmts), chores, len(c.take())
			}
			before, choresBefore, _ := count(t, "jobs:\n  rescue_stale_claims: {enabled: false}\n  trim_events: {enabled: false}\n")
			after, choresAfter, jobs := count(t, "")
			t.Logf("%s: an idle worker pass sends %d statements with the built-in jobs off, %d with them on; the idle job pass %d",
				storeName, before, after, jobs)
			if choresBefore != 2 || after != before-2 || choresAfter != 0 {
				t.Errorf("idle pass: %d statements (%d rescue or trim) with the built-in jobs off, %d (%d) with them on; want 2 fewer, none of them rescue or trim",
					before, choresBefore, after, choresAfter)
			}
			if jobs != 0 {
				t.Errorf("idle job pass: %d statements, want none before a window is due", jobs)
			}
		})
	}
}

// The built-in jobs do the housekeeping: a stale claim is rescued, old
// events trimmed (more than one batch), old completed streams purged.
func TestBuiltinJobsWork(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, map[string]string{
		"winchester.yaml": `database: {url: 'sqlite:///w.db'}
pipeline_config: pipelines.yaml
purge_completed_streams: false
purge_completed_streams_after: 48h
trim_events: true
trim_events_age: "$timestamp - 1d"
trim_events_batch_size: 2
worker_lease: 1m
max_retries: 3
`,
		"pipelines.yaml": "p: [logger]\n",
	})
	t0 := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	clock := &settableClock{now: t0}
	var (
		mu       sync.Mutex
		observed []db.JobRun
	)
	eng, err := Open(t.Context(), cfg, Options{Clock: clock, JobRunFunc: func(r db.JobRun) {
		mu.Lock()
		defer mu.Unlock()
		observed = append(observed, r)
	}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer eng.Close()
	wc := eng.WorkerConfig("w1")
	if !wc.NoRescue || wc.Trim {
		t.Errorf("worker config NoRescue %v, Trim %v; want the passes to leave rescue and trim to the jobs", wc.NoRescue, wc.Trim)
	}
	ctx := t.Context()
	s := eng.Store
	var events []stream.Event
	for i := range 5 { // three days old: trimmed; two recent ones are kept
		events = append(events, stream.Event{MessageID: fmt.Sprintf("old-%d", i), Type: "x", Timestamp: t0.Add(-72 * time.Hour)})
	}
	events = append(events, stream.Event{MessageID: "new-0", Type: "x", Timestamp: t0.Add(-time.Hour)},
		stream.Event{MessageID: "new-1", Type: "x", Timestamp: t0.Add(-time.Hour)})
	ids, err := s.SaveEvents(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	newStream := func(name string, first time.Time, id int64) stream.Stream {
		t.Helper()
		sid, _, err := s.CreateStream(ctx, db.NewStream{Name: name, Key: stream.Key(nil), FirstEvent: first, LastEvent: first,
			ExpireTimestamp: first.Add(time.Hour), EventIDs: []int64{id}, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.StreamByID(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	setState := func(st stream.Stream, state stream.State, claimedBy string, lease time.Time) stream.Stream {
		t.Helper()
		st, err := s.SetStreamState(ctx, db.SetStateParams{ID: st.ID, SerialNo: st.SerialNo, State: state, ClaimedBy: &claimedBy, LeaseUntil: &lease})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// A stream whose worker died: its lease ended a minute ago.
	stale := setState(newStream("stale", t0.Add(-time.Hour), ids[5]), stream.StateFiring, "dead", t0.Add(-time.Minute))
	// Completed streams: one older than 48h (purged), one recent (kept).
	oldDone := newStream("old_done", t0.Add(-72*time.Hour), ids[0])
	oldDone = setState(setState(oldDone, stream.StateFiring, "w", t0), stream.StateCompleted, "", time.Time{})
	newDone := newStream("new_done", t0.Add(-time.Hour), ids[6])
	newDone = setState(setState(newDone, stream.StateFiring, "w", t0), stream.StateCompleted, "", time.Time{})

	jr, err := eng.NewJobRunner("w1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jr.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	clock.set(t0.Add(6 * time.Hour)) // every built-in job has a window due
	res, err := jr.Pass(ctx)
	if err != nil || res.Completed != 4 {
		t.Fatalf("Pass = %+v, %v; want the four built-in jobs' windows completed", res, err)
	}
	if st, err := s.StreamByID(ctx, stale.ID); err != nil || st.State != stream.StateRetryFire || st.ClaimedBy != "" {
		t.Errorf("stale stream after the rescue job: %+v, %v; want retry_fire, unclaimed", st, err)
	}
	if _, err := s.StreamByID(ctx, oldDone.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("old completed stream after the purge job: %v, want it gone", err)
	}
	if _, err := s.StreamByID(ctx, newDone.ID); err != nil {
		t.Errorf("recent completed stream after the purge job: %v, want it kept", err)
	}
	n, err := s.CountEvents(ctx, db.FindEventsParams{})
	if err != nil || n != 2 {
		t.Errorf("%d events after the trim job (%v), want the 2 recent ones", n, err)
	}
	mu.Lock()
	if len(observed) != 4 {
		t.Errorf("JobRunFunc saw %+v, want the 4 runs", observed)
	}
	mu.Unlock()
	for _, name := range BuiltinJobs() {
		runs, err := s.(db.JobStore).JobRuns(ctx, name, 10)
		if err != nil || len(runs) != 1 || runs[0].Status != db.JobCompleted {
			t.Errorf("runs of %s = %+v, %v; want one completed", name, runs, err)
		}
	}
}

// A built-in job switched off gives its housekeeping back to every pass;
// entries of built-in jobs take no handler other than their own and no
// command.
func TestBuiltinJobsConfig(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, map[string]string{
		"winchester.yaml": `database: {url: 'sqlite:///w.db'}
pipeline_config: pipelines.yaml
trim_events: true
jobs:
  rescue_stale_claims: {enabled: false}
  trim_events: {schedule: "@daily"}
  optimize_database: {handler: optimize_database, timeout: 1m}
`,
		"pipelines.yaml": "p: [logger]\n",
	})
	eng, err := Open(t.Context(), cfg, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer eng.Close()
	wc := eng.WorkerConfig("w1")
	if wc.NoRescue || wc.Trim {
		t.Errorf("worker config NoRescue %v, Trim %v; want rescue in the passes, trim by the job", wc.NoRescue, wc.Trim)
	}
	for _, d := range eng.Defs.Jobs {
		switch d.Name {
		case TrimEventsJob:
			if d.Schedule.String() != "@daily" || d.Disabled {
				t.Errorf("trim_events = %+v, want @daily, on", d)
			}
		case OptimizeDatabaseJob:
			if d.Timeout != time.Minute || d.Disabled {
				t.Errorf("optimize_database = %+v, want 1m, on", d)
			}
		case RescueStaleClaimsJob:
			if !d.Disabled {
				t.Errorf("rescue_stale_claims = %+v, want off", d)
			}
		}
	}

	dir := t.TempDir()
	p := writeFile(t, dir, "winchester.yaml", `jobs:
  rescue_stale_claims:
    handler: exec
  trim_events:
    command: [./x]
`)
	_, err = Load(p)
	assertErrorContains(t, err, []string{
		`winchester.yaml:3: jobs.rescue_stale_claims.handler: rescue_stale_claims is a built-in job: leave handler out`,
		`winchester.yaml:5: jobs.trim_events.command: trim_events is a built-in job: it runs no command`,
	})
}

// max_retries: 0 means no retry; without the key a job has the default
// retries.
func TestJobMaxRetriesZeroAndAbsent(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, map[string]string{"winchester.yaml": `database: {url: 'sqlite:///w.db'}
jobs:
  none:
    schedule: "@hourly"
    handler: broken
    max_retries: 0
  default:
    schedule: "@hourly"
    handler: broken
`})
	reg := NewRegistry()
	reg.RegisterJob("broken", func(context.Context, time.Time, time.Time) error { return errors.New("broken") })
	eng, clock, jr := openJobRunner(t, cfg, reg)
	clock.set(clock.Now().Add(time.Hour))
	if _, err := jr.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	js := eng.Store.(db.JobStore)
	for name, want := range map[string]db.JobRunStatus{"none": db.JobGaveUp, "default": db.JobFailed} {
		runs, err := js.JobRuns(t.Context(), name, 10)
		if err != nil || len(runs) != 1 || runs[0].Status != want {
			t.Errorf("runs of %s = %+v, %v; want one %s", name, runs, err, want)
		}
	}
	st, err := js.JobState(t.Context(), "default")
	if err != nil || !st.RetryAt.After(clock.Now()) {
		t.Errorf("state of default = %+v, %v; want a retry waiting", st, err)
	}
}
