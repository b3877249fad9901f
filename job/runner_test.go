package job_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/job"
)

// clock is a settable clock shared by the runners of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// jobStore is the store the tests use.
type jobStore interface {
	db.Store
	db.JobStore
}

// forEachStore runs fn against a fresh SQLite file store and, when
// TEST_DATABASE_URL is set, a fresh PostgreSQL schema.
func forEachStore(t *testing.T, fn func(t *testing.T, s jobStore)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		s, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "w.db"), db.Options{Migrate: true})
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		s, err := postgres.Open(t.Context(), dbtest.PostgresURL(t), db.Options{Migrate: true})
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
}

func newRunner(t *testing.T, s job.Store, name string, c *clock, defs ...job.Definition) *job.Runner {
	t.Helper()
	r, err := job.NewRunner(s, defs, job.RunnerConfig{Name: name, Clock: c, Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	return r
}

func pass(t *testing.T, r *job.Runner) job.PassResult {
	t.Helper()
	res, err := r.Pass(t.Context())
	if err != nil {
		t.Fatalf("Pass: %v", err)
	}
	return res
}

type window struct{ start, end time.Time }

func (w window) String() string {
	return w.start.Format("15:04") + "–" + w.end.Format("15:04")
}

// recorder is a job function that records its windows.
type recorder struct {
	mu    sync.Mutex
	calls []window
}

func (r *recorder) run(_ context.Context, start, end time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, window{start, end})
	return nil
}

func (r *recorder) windows() []window {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func runs(t *testing.T, s jobStore, name string) []db.JobRun {
	t.Helper()
	rs, err := s.JobRuns(t.Context(), name, 10000)
	if err != nil {
		t.Fatalf("JobRuns: %v", err)
	}
	slices.Reverse(rs) // oldest first
	return rs
}

// checkContiguous fails unless the windows follow each other from start
// to end without gap or overlap.
func checkContiguous(t *testing.T, ws []window, start, end time.Time) {
	t.Helper()
	at := start
	for i, w := range ws {
		if !w.start.Equal(at) || !w.end.After(w.start) {
			t.Fatalf("window %d is %v, want one starting at %v", i, w, at.Format("15:04"))
		}
		at = w.end
	}
	if !at.Equal(end) {
		t.Fatalf("windows end at %v, want %v", at, end)
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		from time.Time
		want time.Time
	}{
		{"*/5 * * * *", t0, t0.Add(5 * time.Minute)},
		{"*/5 * * * *", t0.Add(4*time.Minute + 59*time.Second), t0.Add(5 * time.Minute)},
		{"@hourly", t0.Add(time.Minute), t0.Add(time.Hour)},
		{"0 3 ? * *", t0, t0.Add(3 * time.Hour)},                 // the original's "?" for "any"
		{"30 2 * * ?", t0, t0.Add(2*time.Hour + 30*time.Minute)}, // in day of week too
		{"0 0 * * MON", t0, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)},
		{"@every 90m", t0, t0.Add(90 * time.Minute)},
		{"CRON_TZ=Europe/Paris 0 1 * * *", t0, t0}, // 01:00 in Paris is 00:00 UTC, not after t0
	}
	for _, tc := range tests {
		s, err := job.ParseSchedule(tc.spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tc.spec, err)
			continue
		}
		want := tc.want
		if tc.spec == "CRON_TZ=Europe/Paris 0 1 * * *" {
			want = t0.Add(24 * time.Hour)
		}
		if got := s.Next(tc.from); !got.Equal(want) {
			t.Errorf("ParseSchedule(%q).Next(%v) = %v, want %v", tc.spec, tc.from, got, want)
		}
	}
	for _, bad := range []string{"", "61 * * * *", "* * *", "@sometimes", "* * * * * * *"} {
		if _, err := job.ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) = nil error", bad)
		}
	}
}

// Four runners over a simulated day of a */5 job (the clock advancing by
// 2.5 minutes, all runners passing at once) run 288 contiguous windows,
// each completed once, although runners die in the middle of some runs
// (the goroutine ends without recording anything, as a killed process
// would): those windows are run again once the lease lapsed.
func TestExactlyOnceAcrossRunners(t *testing.T) {
	forEachStore(t, func(t *testing.T, s jobStore) {
		c := &clock{now: t0}
		killed := map[time.Time]bool{} // window ends whose first run dies
		for _, m := range []int{3, 40, 41, 150, 277} {
			killed[t0.Add(time.Duration(m)*5*time.Minute)] = true
		}
		var (
			mu    sync.Mutex
			calls = map[window]int{}
		)
		run := func(_ context.Context, start, end time.Time) error {
			mu.Lock()
			calls[window{start, end}]++
			n := calls[window{start, end}]
			mu.Unlock()
			if killed[end] && n == 1 {
				runtime.Goexit() // the worker dies: nothing is recorded
			}
			return nil
		}
		def := job.Definition{Name: "five", Schedule: job.MustParseSchedule("*/5 * * * *"), Func: run, CatchUp: job.CatchUpAll}
		runners := make([]*job.Runner, 4)
		for i := range runners {
			runners[i] = newRunner(t, s, fmt.Sprintf("w%d", i), c, def)
		}
		for now := t0; !now.After(t0.Add(24 * time.Hour)); now = now.Add(150 * time.Second) {
			c.set(now)
			var wg sync.WaitGroup
			errs := make([]error, len(runners))
			for i, r := range runners {
				wg.Go(func() { _, errs[i] = r.Pass(t.Context()) }) // a Goexit leaves errs[i] nil
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil && !errors.Is(err, db.ErrAborted) {
					t.Fatalf("Pass at %v: %v", now, err)
				}
			}
		}

		var done []window
		for _, r := range runs(t, s, "five") {
			if r.Status == db.JobCompleted {
				done = append(done, window{r.WindowStart, r.WindowEnd})
			} else {
				t.Errorf("run %+v, want only completed runs", r)
			}
		}
		if len(done) != 288 {
			t.Fatalf("%d windows completed, want 288", len(done))
		}
		checkContiguous(t, done, t0, t0.Add(24*time.Hour))
		for w, n := range calls {
			want := 1
			if killed[w.end] {
				want = 2
			}
			if n != want {
				t.Errorf("window %v ran %d times, want %d", w, n, want)
			}
		}
		if len(calls) != 288 {
			t.Errorf("%d distinct windows ran, want 288", len(calls))
		}
	})
}

func TestCatchUpPolicies(t *testing.T) {
	gap := 3 * time.Hour
	tests := []struct {
		policy     job.CatchUp
		wantRuns   int
		wantFirst  window // first window run after the gap
		wantSkips  []window
		wantResult job.PassResult
	}{
		{policy: job.CatchUpAll, wantRuns: 36, wantFirst: window{t0, t0.Add(5 * time.Minute)}, wantResult: job.PassResult{Completed: 36}},
		{policy: job.CatchUpLatest, wantRuns: 1, wantFirst: window{t0, t0.Add(gap)}, wantResult: job.PassResult{Completed: 1}},
		{policy: job.CatchUpSkip, wantRuns: 1, wantFirst: window{t0.Add(gap - 5*time.Minute), t0.Add(gap)},
			wantSkips: []window{{t0, t0.Add(gap - 5*time.Minute)}}, wantResult: job.PassResult{Completed: 1, Skipped: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.policy.String(), func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, s jobStore) {
				c := &clock{now: t0}
				rec := &recorder{}
				r := newRunner(t, s, "w1", c, job.Definition{Name: "five", Schedule: job.MustParseSchedule("*/5 * * * *"),
					Func: rec.run, CatchUp: tc.policy})
				if res := pass(t, r); !res.IsZero() {
					t.Fatalf("first pass = %+v, want nothing due", res)
				}
				c.set(t0.Add(gap + 30*time.Second)) // everything was down for 3 hours
				if res := pass(t, r); res != tc.wantResult {
					t.Errorf("pass after the gap = %+v, want %+v", res, tc.wantResult)
				}
				ws := rec.windows()
				if len(ws) != tc.wantRuns || ws[0] != tc.wantFirst {
					t.Fatalf("ran %v, want %d windows starting with %v", ws, tc.wantRuns, tc.wantFirst)
				}
				var all []window
				var skips []window
				for _, r := range runs(t, s, "five") {
					all = append(all, window{r.WindowStart, r.WindowEnd})
					if r.Status == db.JobSkipped {
						skips = append(skips, window{r.WindowStart, r.WindowEnd})
					}
				}
				if !slices.Equal(skips, tc.wantSkips) {
					t.Errorf("skipped %v, want %v", skips, tc.wantSkips)
				}
				checkContiguous(t, all, t0, t0.Add(gap)) // recorded windows, skips included, have no gap
			})
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s jobStore) {
		c := &clock{now: t0}
		fails := 2
		var calls int
		run := func(context.Context, time.Time, time.Time) error {
			calls++
			if calls <= fails {
				return fmt.Errorf("attempt %d: upstream unavailable", calls)
			}
			return nil
		}
		r := newRunner(t, s, "w1", c, job.Definition{Name: "hourly", Schedule: job.MustParseSchedule("@hourly"), Func: run,
			MaxRetries: 3, RetryBackoff: time.Minute})
		pass(t, r)
		c.set(t0.Add(time.Hour))
		if res := pass(t, r); res != (job.PassResult{Failed: 1}) {
			t.Fatalf("first run = %+v, want one failure", res)
		}
		st, _ := s.JobState(t.Context(), "hourly")
		if st.LastError != "attempt 1: upstream unavailable" || !st.RetryAt.Equal(t0.Add(time.Hour+time.Minute)) || st.ClaimedBy != "" {
			t.Errorf("after a failure: %+v, want the error, a retry in 1m and no claim", st)
		}
		if res := pass(t, r); !res.IsZero() {
			t.Fatalf("pass before the backoff = %+v, want nothing", res)
		}
		c.set(t0.Add(time.Hour + time.Minute))
		if res := pass(t, r); res != (job.PassResult{Failed: 1}) {
			t.Fatalf("second run = %+v, want one failure", res)
		}
		c.set(t0.Add(time.Hour + 3*time.Minute)) // the backoff doubled: 2m
		if res := pass(t, r); res != (job.PassResult{Completed: 1}) {
			t.Fatalf("third run = %+v, want completed", res)
		}
		var got []string
		for _, r := range runs(t, s, "hourly") {
			got = append(got, fmt.Sprintf("%s#%d %v", r.Status, r.Attempt, window{r.WindowStart, r.WindowEnd}))
		}
		want := []string{"failed#1 00:00–01:00", "failed#2 00:00–01:00", "completed#3 00:00–01:00"}
		if !slices.Equal(got, want) {
			t.Errorf("history %v, want %v", got, want)
		}
		st, _ = s.JobState(t.Context(), "hourly")
		if !st.LastEnd.Equal(t0.Add(time.Hour)) || st.LastError != "" || st.Attempts != 0 || !st.WindowEnd.IsZero() {
			t.Errorf("after success: %+v", st)
		}
	})
}

func TestGiveUpMovesOn(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s jobStore) {
		c := &clock{now: t0}
		r := newRunner(t, s, "w1", c, job.Definition{Name: "hourly", Schedule: job.MustParseSchedule("@hourly"),
			Func: func(context.Context, time.Time, time.Time) error { return errors.New("broken") }, MaxRetries: 1, RetryBackoff: time.Minute})
		pass(t, r)
		c.set(t0.Add(time.Hour))
		pass(t, r)
		c.set(t0.Add(time.Hour + time.Minute))
		if res := pass(t, r); res != (job.PassResult{GaveUp: 1}) {
			t.Fatalf("last retry = %+v, want given up", res)
		}
		st, _ := s.JobState(t.Context(), "hourly")
		if !st.LastEnd.Equal(t0.Add(time.Hour)) || !st.WindowEnd.IsZero() || st.LastError != "broken" {
			t.Errorf("after giving up: %+v, want the next window to start at 01:00 and the error kept", st)
		}
	})
}

func TestDisabledJobNeverRuns(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s jobStore) {
		c := &clock{now: t0}
		rec := &recorder{}
		r := newRunner(t, s, "w1", c, job.Definition{Name: "off", Schedule: job.MustParseSchedule("* * * * *"), Func: rec.run, Disabled: true})
		for i := range 10 {
			c.set(t0.Add(time.Duration(i) * time.Hour))
			pass(t, r)
		}
		if ws := rec.windows(); len(ws) != 0 {
			t.Errorf("disabled job ran %v", ws)
		}
		if _, err := s.JobState(t.Context(), "off"); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("disabled job has state (err %v), want none", err)
		}
	})
}

func TestTimeLimit(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s jobStore) {
		c := &clock{now: t0}
		hang := func(ctx context.Context, _, _ time.Time) error {
			<-ctx.Done()
			return ctx.Err()
		}
		r := newRunner(t, s, "w1", c, job.Definition{Name: "hang", Schedule: job.MustParseSchedule("@hourly"), Func: hang,
			Timeout: 20 * time.Millisecond, MaxRetries: -1})
		pass(t, r)
		c.set(t0.Add(time.Hour))
		if res := pass(t, r); res != (job.PassResult{GaveUp: 1}) {
			t.Fatalf("pass = %+v, want the run given up", res)
		}
		rs := runs(t, s, "hang")
		if len(rs) != 1 || !strings.Contains(rs[0].Error, "time limit 20ms exceeded") {
			t.Errorf("runs %+v, want one naming the time limit", rs)
		}
	})
}

// At shutdown a running window is handed back at once, its attempt not
// counted, for the next runner.
func TestShutdownHandsBack(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s jobStore) {
		c := &clock{now: t0}
		started := make(chan struct{})
		hang := func(ctx context.Context, _, _ time.Time) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}
		def := job.Definition{Name: "hourly", Schedule: job.MustParseSchedule("@hourly"), Func: hang}
		r := newRunner(t, s, "w1", c, def)
		pass(t, r)
		c.set(t0.Add(time.Hour))
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := r.Pass(ctx)
			errc <- err
		}()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the job did not start")
		}
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("Pass at shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Pass did not return after cancellation")
		}
		st, _ := s.JobState(t.Context(), "hourly")
		if st.ClaimedBy != "" || st.Attempts != 0 || !st.WindowEnd.Equal(t0.Add(time.Hour)) {
			t.Fatalf("after shutdown: %+v, want the window unclaimed with no attempt counted", st)
		}
		rec := &recorder{}
		def.Func = rec.run
		if res := pass(t, newRunner(t, s, "w2", c, def)); res != (job.PassResult{Completed: 1}) {
			t.Fatalf("next runner's pass = %+v, want the window completed", res)
		}
	})
}

func TestNewRunnerRejects(t *testing.T) {
	t.Parallel()
	sched := job.MustParseSchedule("@hourly")
	f := func(context.Context, time.Time, time.Time) error { return nil }
	for name, defs := range map[string][]job.Definition{
		"no name":     {{Schedule: sched, Func: f}},
		"twice":       {{Name: "a", Schedule: sched, Func: f}, {Name: "a", Schedule: sched, Func: f}},
		"no schedule": {{Name: "a", Func: f}},
		"no function": {{Name: "a", Schedule: sched}},
	} {
		if _, err := job.NewRunner(nil, defs, job.RunnerConfig{Name: "w"}); err == nil {
			t.Errorf("NewRunner(%s) = nil error", name)
		}
	}
	if _, err := job.NewRunner(nil, nil, job.RunnerConfig{}); err == nil {
		t.Error("NewRunner without a name = nil error")
	}
}

// An operator's run of the next due window is recorded like a pass's, and
// refused while another worker holds the job's claim.
func TestRunNow(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s jobStore) {
		c := &clock{now: t0}
		rec := &recorder{}
		var observed []db.JobRun
		def := job.Definition{Name: "five", Schedule: job.MustParseSchedule("*/5 * * * *"), Func: rec.run}
		r, err := job.NewRunner(s, []job.Definition{def}, job.RunnerConfig{Name: "cli", Clock: c, Logger: dbtest.Logger(t),
			RunFunc: func(run db.JobRun) { observed = append(observed, run) }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.RunNow(t.Context(), "five"); !errors.Is(err, job.ErrNotDue) {
			t.Fatalf("RunNow of a new job = %v, want ErrNotDue", err)
		}
		if _, err := r.RunNow(t.Context(), "nope"); !errors.Is(err, job.ErrUnknownJob) {
			t.Errorf("RunNow of an unknown job = %v, want ErrUnknownJob", err)
		}
		c.set(t0.Add(6 * time.Minute))
		run, err := r.RunNow(t.Context(), "five")
		if err != nil {
			t.Fatalf("RunNow: %v", err)
		}
		if run.Status != db.JobCompleted || run.Worker != "cli" || !run.WindowStart.Equal(t0) || !run.WindowEnd.Equal(t0.Add(5*time.Minute)) {
			t.Errorf("RunNow = %+v, want the window 00:00–00:05 completed by cli", run)
		}
		if rs := runs(t, s, "five"); len(rs) != 1 || rs[0].Status != db.JobCompleted {
			t.Errorf("history %+v, want the one completed run", rs)
		}
		if len(observed) != 1 || observed[0].Status != db.JobCompleted {
			t.Errorf("RunFunc saw %+v, want the completed run", observed)
		}
		if _, err := r.RunNow(t.Context(), "five"); !errors.Is(err, job.ErrNotDue) {
			t.Errorf("second RunNow = %v, want ErrNotDue", err)
		}

		// Another worker holds the next window: the operator's run is
		// refused and nothing runs twice.
		c.set(t0.Add(11 * time.Minute))
		st, err := s.JobState(t.Context(), "five")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateJob(t.Context(), db.UpdateJobParams{Name: "five", SerialNo: st.SerialNo, LastEnd: st.LastEnd,
			WindowStart: st.LastEnd, WindowEnd: t0.Add(10 * time.Minute), Attempts: 1, ClaimedBy: "w9",
			LeaseUntil: t0.Add(20 * time.Minute), Now: c.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.RunNow(t.Context(), "five"); !errors.Is(err, job.ErrBusy) {
			t.Errorf("RunNow while w9 holds the window = %v, want ErrBusy", err)
		}
		if _, err := r.RunWindow(t.Context(), "five", t0.Add(5*time.Minute), t0.Add(10*time.Minute)); !errors.Is(err, job.ErrBusy) {
			t.Errorf("RunWindow while w9 holds the window = %v, want ErrBusy", err)
		}
		if ws := rec.windows(); len(ws) != 1 {
			t.Errorf("ran %v, want only the first window", ws)
		}
		// Once w9's lease lapsed the window is run again.
		c.set(t0.Add(21 * time.Minute))
		run, err = r.RunNow(t.Context(), "five")
		if err != nil || run.Attempt != 2 || !run.WindowEnd.Equal(t0.Add(10*time.Minute)) {
			t.Errorf("RunNow after the lease = %+v, %v; want attempt 2 of 00:05–00:10", run, err)
		}
	})
}

// An operator's run of a window given: it must follow the last window
// done and have ended; the job then goes on from its end.
func TestRunWindow(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s jobStore) {
		c := &clock{now: t0.Add(time.Hour)}
		rec := &recorder{}
		fail := true
		def := job.Definition{Name: "five", Schedule: job.MustParseSchedule("*/5 * * * *"), MaxRetries: 1,
			Func: func(ctx context.Context, start, end time.Time) error {
				if fail {
					return errors.New("flaky")
				}
				return rec.run(ctx, start, end)
			}}
		r := newRunner(t, s, "cli", c, def)
		// A new job starts where the first window asked for starts.
		run, err := r.RunWindow(t.Context(), "five", t0, t0.Add(12*time.Minute))
		if err != nil || run.Status != db.JobFailed {
			t.Fatalf("RunWindow = %+v, %v; want a failed run", run, err)
		}
		if _, err := r.RunWindow(t.Context(), "five", t0, t0.Add(12*time.Minute)); !errors.Is(err, job.ErrWindow) {
			t.Errorf("RunWindow while the window waits for its retry = %v, want ErrWindow", err)
		}
		fail = false
		run, err = r.RunNow(t.Context(), "five") // the retry, without waiting for the backoff
		if err != nil || run.Status != db.JobCompleted || run.Attempt != 2 {
			t.Fatalf("RunNow of the retry = %+v, %v; want attempt 2 completed", run, err)
		}
		// Only the job's next window runs: a window done is not run again,
		// and no window may overlap one done or leave a gap.
		for _, tc := range []struct {
			name       string
			start, end time.Time
			want       string // in the error
		}{
			{"done already", t0, t0.Add(12 * time.Minute), "it is done already, and a window done is never run again"},
			{"part of one done", t0.Add(5 * time.Minute), t0.Add(10 * time.Minute), "it is done already"},
			{"overlap", t0.Add(5 * time.Minute), t0.Add(20 * time.Minute), "it overlaps the windows done up to 2026-12-01T00:12:00Z"},
			{"gap", t0.Add(15 * time.Minute), t0.Add(20 * time.Minute),
				"it would leave (2026-12-01T00:12:00Z, 2026-12-01T00:15:00Z] unrun"},
			{"empty", t0.Add(12 * time.Minute), t0.Add(12 * time.Minute), "ends before it starts"},
			{"backwards", t0.Add(10 * time.Minute), t0.Add(5 * time.Minute), "ends before it starts"},
			{"not ended", t0.Add(12 * time.Minute), t0.Add(2 * time.Hour), "has not ended yet"},
		} {
			_, err := r.RunWindow(t.Context(), "five", tc.start, tc.end)
			if !errors.Is(err, job.ErrWindow) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RunWindow(%s) = %v, want ErrWindow saying %q", tc.name, err, tc.want)
			}
		}
		if ws := rec.windows(); len(ws) != 1 {
			t.Errorf("ran %v, want only the window 00:00–00:12", ws)
		}
		// The schedule goes on from the end of the window run by hand.
		res := pass(t, r)
		ws := rec.windows()
		if res.Completed != 1 || len(ws) != 2 || ws[1] != (window{t0.Add(12 * time.Minute), t0.Add(time.Hour)}) {
			t.Errorf("pass = %+v, windows %v; want 00:12–01:00 (catch-up latest)", res, ws)
		}
	})
}

// A disabled job is not run by hand either.
func TestRunNowDisabled(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	r, err := job.NewRunner(nil, []job.Definition{{Name: "off", Schedule: job.MustParseSchedule("@hourly"), Disabled: true}},
		job.RunnerConfig{Name: "cli", Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RunNow(t.Context(), "off"); !errors.Is(err, job.ErrDisabled) {
		t.Errorf("RunNow of a disabled job = %v, want ErrDisabled", err)
	}
}

// countingStore counts the job states a runner reads.
type countingStore struct {
	job.Store
	mu    sync.Mutex
	reads int
}

func (s *countingStore) JobState(ctx context.Context, name string) (db.JobState, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Store.JobState(ctx, name)
}

func (s *countingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// Between windows a runner's passes do not touch the store: it knows
// from the state it read when the next window is due.
func TestIdlePassesReadNothing(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s jobStore) {
		cs := &countingStore{Store: s}
		c := &clock{now: t0}
		rec := &recorder{}
		r := newRunner(t, cs, "w1", c, job.Definition{Name: "five", Schedule: job.MustParseSchedule("*/5 * * * *"), Func: rec.run})
		pass(t, r)
		before := cs.count()
		for i := 1; i < 300; i++ {
			c.set(t0.Add(time.Duration(i) * time.Second))
			pass(t, r)
		}
		if n := cs.count() - before; n != 0 {
			t.Errorf("%d job state reads in the passes before the window ended, want 0", n)
		}
		c.set(t0.Add(5 * time.Minute))
		if res := pass(t, r); res.Completed != 1 {
			t.Errorf("pass at the window's end = %+v, want it completed", res)
		}
		// Another worker's live claim: no reads until its lease ends.
		other := newRunner(t, s, "w2", c, job.Definition{Name: "five", Schedule: job.MustParseSchedule("*/5 * * * *"),
			Func: func(ctx context.Context, _, _ time.Time) error { runtime.Goexit(); return nil }})
		c.set(t0.Add(10 * time.Minute))
		done := make(chan struct{})
		go func() { defer close(done); _, _ = other.Pass(t.Context()) }()
		<-done // w2 died holding the window 00:05–00:10
		before = cs.count()
		pass(t, r)
		c.set(t0.Add(12 * time.Minute)) // within w2's lease (DefaultLease)
		pass(t, r)
		if n := cs.count() - before; n != 1 {
			t.Errorf("%d job state reads while w2 held the window, want 1", n)
		}
		c.set(t0.Add(10*time.Minute + job.DefaultLease))
		if res := pass(t, r); res.Completed != 2 {
			t.Errorf("pass after w2's lease = %+v, want its window and the next completed", res)
		}
		if ws := rec.windows(); len(ws) != 3 || ws[1] != (window{t0.Add(5 * time.Minute), t0.Add(10 * time.Minute)}) {
			t.Errorf("windows %v, want 00:05–00:10 run again after w2 died", ws)
		}
	})
}

// TestKeepHistory: recording runs keeps the job's newest KeepHistory runs
// and deletes the older ones.
func TestKeepHistory(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s jobStore) {
		c := &clock{now: t0}
		var rec recorder
		r := newRunner(t, s, "w1", c, job.Definition{Name: "five", Schedule: job.MustParseSchedule("*/5 * * * *"),
			Func: rec.run, CatchUp: job.CatchUpAll, KeepHistory: 3})
		pass(t, r)
		c.set(t0.Add(time.Hour))
		if res := pass(t, r); res != (job.PassResult{Completed: 12}) {
			t.Fatalf("pass = %+v, want 12 windows completed", res)
		}
		var got []string
		for _, r := range runs(t, s, "five") {
			got = append(got, fmt.Sprintf("%s %v", r.Status, window{r.WindowStart, r.WindowEnd}))
		}
		want := []string{"completed 00:45–00:50", "completed 00:50–00:55", "completed 00:55–01:00"}
		if !slices.Equal(got, want) {
			t.Errorf("history = %q, want the newest 3 runs %q", got, want)
		}
	})
}
