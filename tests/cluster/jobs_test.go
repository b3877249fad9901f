package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/job"
)

// Environment of a job worker helper (role "jobs"), besides envDB,
// envName and envRecord (the file the job appends its runs to).
const (
	envClock = "WINCHESTER_TEST_CLOCK" // file holding the virtual time (RFC 3339)
	envBlock = "WINCHESTER_TEST_BLOCK" // window ends (RFC 3339, comma-separated) whose first attempt blocks until killed
)

// The job of the day test: every five minutes, catch-up all, so every
// window of the day runs as its own window whatever the clock's steps.
const (
	dayJob = "five"
	// dayLease is the claim's lease on the virtual clock. The test moves
	// the clock at most one step (up to dayMaxStep) while a live worker
	// holds a claim, so a live run never loses its lease.
	dayLease   = 10 * time.Minute
	dayMaxStep = 7 * time.Minute
)

// fileClock is a virtual clock shared by processes: the time is read from
// a file the test rewrites (atomically, by rename) to move it.
type fileClock struct{ path string }

// Now reads the virtual time. A clock that cannot be read ends the
// process: a runner must not go on with a wrong time.
func (c fileClock) Now() time.Time {
	data, err := os.ReadFile(c.path)
	if err != nil {
		panic(fmt.Sprintf("virtual clock: %v", err))
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(data)))
	if err != nil {
		panic(fmt.Sprintf("virtual clock: %v", err))
	}
	return t
}

// setClock moves the virtual clock of path to now.
func setClock(t *testing.T, path string, now time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(now.UTC().Format(time.RFC3339Nano)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// runLine is what the day job appends to the record file: "start" when a
// run begins (after checking that this worker holds the window's claim),
// "done" when its work is done (before the runner records it).
type runLine struct {
	Event   string    `json:"event"`
	Worker  string    `json:"worker"`
	PID     int       `json:"pid"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Attempt int       `json:"attempt"`
	Block   bool      `json:"block,omitempty"`
}

// appendLine appends v as a JSON line to path with one write on an
// O_APPEND file, so the lines of several processes never mix.
func appendLine(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// slowness is how long the work of the window ending at end takes (real
// time): most windows are quick, some slow enough for a kill to land in
// the middle of their run.
func slowness(end time.Time) time.Duration {
	switch n := end.Unix() / 300; {
	case n%11 == 0:
		return 150 * time.Millisecond
	case n%3 == 0:
		return 20 * time.Millisecond
	}
	return 0
}

// runJobWorker runs a job.Runner with the day job on the virtual clock
// until SIGTERM.
func runJobWorker() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	store, err := db.Open(ctx, os.Getenv(envDB), db.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	js, ok := store.(job.Store)
	if !ok {
		return errors.New("the store keeps no jobs")
	}
	name, record := os.Getenv(envName), os.Getenv(envRecord)
	block := map[time.Time]bool{}
	for s := range strings.SplitSeq(os.Getenv(envBlock), ",") {
		if s == "" {
			continue
		}
		end, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return fmt.Errorf("%s: %w", envBlock, err)
		}
		block[end] = true
	}
	work := func(ctx context.Context, start, end time.Time) error {
		// The window runs under this worker's claim, and the claim says
		// which attempt this is.
		st, err := js.JobState(ctx, dayJob)
		if err != nil {
			return err
		}
		if st.ClaimedBy != name || !st.WindowStart.Equal(start) || !st.WindowEnd.Equal(end) {
			return fmt.Errorf("window (%v, %v] runs without its claim: %+v", start, end, st)
		}
		l := runLine{Event: "start", Worker: name, PID: os.Getpid(), Start: start, End: end, Attempt: st.Attempts,
			Block: block[end] && st.Attempts == 1}
		if err := appendLine(record, l); err != nil {
			return err
		}
		if l.Block {
			select { // the test kills this process now
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Minute):
				return errors.New("blocked run was not killed")
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(slowness(end)):
		}
		l.Event = "done"
		return appendLine(record, l)
	}
	def := job.Definition{Name: dayJob, Schedule: job.MustParseSchedule("*/5 * * * *"), Func: work,
		CatchUp: job.CatchUpAll, MaxRetries: 100, Timeout: 2 * time.Minute, KeepHistory: 100_000}
	r, err := job.NewRunner(js, []job.Definition{def}, job.RunnerConfig{
		Name: name, Lease: dayLease, PollInterval: 5 * time.Millisecond, Clock: fileClock{os.Getenv(envClock)},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, signalsHandled)
	return r.Run(ctx)
}

// dayHours is the length of the simulated day: 24 hours (288 windows);
// WINCHESTER_LONG_TESTS=1 makes it a week (2,016 windows, about 90
// kills).
func dayHours() int {
	if os.Getenv("WINCHESTER_LONG_TESTS") == "1" {
		return 7 * 24
	}
	return 24
}

// TestJobDayAcrossKilledProcesses runs four job worker processes over a
// simulated day of a */5 job on a virtual clock they share, on SQLite
// (the four processes on one database file) and on PostgreSQL, while the
// test kills them with SIGKILL and starts new ones: in the middle of
// chosen runs (which block until killed), at random moments (mostly idle),
// and a random moment after a worker claimed a window (claiming, running,
// recording; some runs are slow). Leases expire on the virtual clock. At
// the end the history holds exactly the day's 288 windows, contiguous,
// each completed once; every run killed before its completion was
// recorded is followed by a completed run of its window; no live worker
// abandoned a run.
func TestJobDayAcrossKilledProcesses(t *testing.T) {
	for _, sc := range []struct {
		name string
		open func(t *testing.T) (db.Store, string)
	}{
		{"sqlite", func(t *testing.T) (db.Store, string) { return sqliteStore(t, "jobs.db") }},
		{"postgres", pgStore},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			store, url := sc.open(t)
			runDay(t, store.(db.JobStore), url)
		})
	}
}

// jobWorker is a job worker helper process of the day test.
type jobWorker struct {
	name string
	h    *helper
}

func runDay(t *testing.T, store db.JobStore, url string) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WINCHESTER_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("WINCHESTER_TEST_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (WINCHESTER_TEST_SEED reruns it)", seed)
	rng := rand.New(rand.NewPCG(seed, 15))

	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	day := time.Duration(dayHours()) * time.Hour
	end := t0.Add(day)
	windows := int(day / (5 * time.Minute))
	// Kills happen until two hours before the end, so that every killed
	// claim has lapsed and been run again by the end of the day.
	lastKill := end.Add(-2 * time.Hour)

	// Windows whose first attempt blocks until the test kills its worker.
	var blocked []time.Time
	for len(blocked) < max(2, windows/60) {
		w := t0.Add(time.Duration(1+rng.IntN(int(lastKill.Sub(t0)/(5*time.Minute))-1)) * 5 * time.Minute)
		if !slices.ContainsFunc(blocked, w.Equal) {
			blocked = append(blocked, w)
		}
	}
	slices.SortFunc(blocked, time.Time.Compare)
	// Virtual times after which a random worker is killed at a random
	// moment.
	var randomKills []time.Time
	for range max(3, windows/36) {
		randomKills = append(randomKills, t0.Add(time.Duration(rng.Int64N(int64(lastKill.Sub(t0))))))
	}
	slices.SortFunc(randomKills, time.Time.Compare)
	var blockEnv []string
	for _, w := range blocked {
		blockEnv = append(blockEnv, w.Format(time.RFC3339))
	}

	dir := t.TempDir()
	clockPath, record := filepath.Join(dir, "clock"), filepath.Join(dir, "runs.jsonl")
	now := t0
	setClock(t, clockPath, now)

	killed := map[string]bool{}
	workers := make([]*jobWorker, 4)
	gen := 0
	start := func(i int) {
		gen++
		name := fmt.Sprintf("w%d.%d", i, gen)
		workers[i] = &jobWorker{name: name, h: startHelper(t, "jobs", envDB+"="+url, envClock+"="+clockPath,
			envRecord+"="+record, envBlock+"="+strings.Join(blockEnv, ","), envName+"="+name)}
	}
	kill := func(i int) {
		w := workers[i]
		if err := w.h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s: %v", w.name, err)
		}
		<-w.h.done
		killed[w.name] = true
		start(i)
	}
	for i := range workers {
		start(i)
	}
	all := func() []*helper {
		var hs []*helper
		for _, w := range workers {
			hs = append(hs, w.h)
		}
		return hs
	}
	fail := func(format string, args ...any) {
		t.Helper()
		var b strings.Builder
		for _, w := range workers {
			fmt.Fprintf(&b, "--- %s:\n%s\n", w.name, w.h.out.String())
		}
		t.Fatalf("%s (virtual time %s)\n%s", fmt.Sprintf(format, args...), now.Format("15:04:05"), b.String())
	}

	// The first runner to see the job starts its first window at t0.
	waitFor(t, time.Minute, "the job's state", func() bool {
		_, err := store.JobState(t.Context(), dayJob)
		return err == nil
	}, all()...)

	var (
		lines      []runLine
		tail       = &lineTail{path: record}
		midKills   int
		claimKills int // kills due of a worker holding a claim
		steps      int
	)
	// The test fails when the job makes no progress for a minute.
	var (
		progress    = time.Now()
		lastEndSeen time.Time
	)
	for {
		if time.Since(progress) > time.Minute {
			fail("no window done for a minute: the job is stuck at %v", lastEndSeen)
		}
		// Kill the workers whose run blocks: they are in the middle of it.
		for _, l := range tail.read(t) {
			lines = append(lines, l)
			if l.Event != "start" || !l.Block {
				continue
			}
			for i, w := range workers {
				if w.name == l.Worker {
					kill(i)
					midKills++
				}
			}
		}
		st, err := store.JobState(t.Context(), dayJob)
		if err != nil {
			fail("job state: %v", err)
		}
		if !st.LastEnd.Equal(lastEndSeen) {
			lastEndSeen, progress = st.LastEnd, time.Now()
		}
		due := t0.Add(now.Sub(t0).Truncate(5 * time.Minute)) // the end of the last window due
		claimed := st.ClaimedBy != "" && st.LeaseUntil.After(now)
		switch {
		case claimed && !killed[st.ClaimedBy] && claimKills > 0:
			// Kill the worker holding the claim a moment later: while it
			// claims, runs, or records the run.
			claimKills--
			time.Sleep(time.Duration(rng.Int64N(int64(40 * time.Millisecond))))
			for i, w := range workers {
				if w.name == st.ClaimedBy {
					kill(i)
				}
			}
			continue
		case claimed && !killed[st.ClaimedBy]:
			// A live worker runs a window: let it finish under its lease.
			time.Sleep(time.Millisecond)
			continue
		case !claimed && st.LastEnd.Before(due) && !st.RetryAt.After(now):
			// Due, and free to claim: a worker picks it up.
			time.Sleep(time.Millisecond)
			continue
		case !claimed && st.LastEnd.Equal(end) && now.Equal(end):
		default:
			// Settled, or held by a killed worker: the lease lapses as the
			// clock moves on.
			if !now.Before(end) {
				fail("stuck at the end of the day: %+v", st)
			}
			prev := now
			now = now.Add(time.Minute + time.Duration(rng.Int64N(int64(dayMaxStep-time.Minute))))
			if now.After(end) {
				now = end
			}
			setClock(t, clockPath, now)
			steps++
			for len(randomKills) > 0 && !randomKills[0].After(now) {
				randomKills = randomKills[1:]
				switch {
				case !prev.Before(lastKill):
				case rng.IntN(2) == 0:
					claimKills++ // the next worker seen holding a claim
				default:
					time.Sleep(time.Duration(rng.Int64N(int64(30 * time.Millisecond))))
					kill(rng.IntN(len(workers)))
				}
			}
			continue
		}
		break
	}
	for _, w := range workers {
		w.h.stop(t)
	}
	lines = append(lines, tail.read(t)...)
	t.Logf("%d windows on the virtual clock in %d steps; %d processes killed (%d in the middle of a blocked run), %d run lines",
		windows, steps, len(killed), midKills, len(lines))
	checkDay(t, store, lines, killed, blocked, t0, end, windows)
}

// checkDay checks the history and the runs the job recorded at the end
// of the day.
func checkDay(t *testing.T, store db.JobStore, lines []runLine, killed map[string]bool, blocked []time.Time, t0, end time.Time, windows int) {
	t.Helper()
	runs, err := store.JobRuns(t.Context(), dayJob, 10*windows)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(runs) // oldest first
	type key struct {
		end     time.Time
		worker  string
		attempt int
	}
	completed := map[time.Time]key{}
	at := t0
	for _, r := range runs {
		if r.Status != db.JobCompleted {
			t.Errorf("run %+v, want only completed runs", r)
			continue
		}
		if !r.WindowStart.Equal(at) || !r.WindowEnd.Equal(at.Add(5*time.Minute)) {
			t.Fatalf("completed window (%v, %v], want the one starting at %v: windows must be contiguous, each once",
				r.WindowStart, r.WindowEnd, at)
		}
		completed[r.WindowEnd] = key{r.WindowEnd, r.Worker, r.Attempt}
		at = r.WindowEnd
	}
	if len(completed) != windows || !at.Equal(end) {
		t.Fatalf("%d windows completed up to %v, want %d up to %v", len(completed), at, windows, end)
	}

	done := map[key]int{}   // done lines
	starts := map[key]int{} // start lines, by position
	for i, l := range lines {
		k := key{l.End, l.Worker, l.Attempt}
		if !l.Start.Equal(l.End.Add(-5 * time.Minute)) {
			t.Errorf("run of (%v, %v], want five-minute windows", l.Start, l.End)
		}
		switch l.Event {
		case "start":
			if _, dup := starts[k]; dup {
				t.Errorf("attempt %d of window %v started twice by %s", l.Attempt, l.End, l.Worker)
			}
			starts[k] = i
		case "done":
			done[k]++
		}
	}
	abandoned, redone := 0, 0
	for k, i := range starts {
		c := completed[k.end]
		if done[k] > 0 {
			if c != k {
				redone++
			}
			if c != k && !killed[k.worker] {
				t.Errorf("%s did window %v (attempt %d) but its completion is not the recorded one (%s, attempt %d), and it was not killed",
					k.worker, k.end.Format("15:04"), k.attempt, c.worker, c.attempt)
			}
			continue
		}
		// A run without completion: its worker was killed, and the window
		// was run again later and completed.
		abandoned++
		if !killed[k.worker] {
			t.Errorf("%s abandoned window %v (attempt %d) but was not killed", k.worker, k.end.Format("15:04"), k.attempt)
		}
		if c.attempt <= k.attempt || starts[c] <= i {
			t.Errorf("window %v killed in attempt %d by %s, then completed by %s in attempt %d (line %d after %d): want a later attempt",
				k.end.Format("15:04"), k.attempt, k.worker, c.worker, c.attempt, starts[c], i)
		}
	}
	for _, c := range completed {
		if done[c] != 1 {
			t.Errorf("the recorded completion of window %v (%s, attempt %d) has %d done lines, want 1",
				c.end.Format("15:04"), c.worker, c.attempt, done[c])
		}
	}
	for _, b := range blocked {
		if c := completed[b]; c.attempt < 2 {
			t.Errorf("blocked window %v completed in attempt %d, want a later attempt than the killed one", b.Format("15:04"), c.attempt)
		}
	}
	// A blocked run is killed before its completion (unless its claim was
	// killed first, before the run started).
	blockedRuns := 0
	for _, l := range lines {
		if l.Block {
			blockedRuns++
		}
	}
	if blockedRuns == 0 || abandoned < blockedRuns {
		t.Errorf("%d runs killed before completion, want at least the %d blocked ones (and some)", abandoned, blockedRuns)
	}
	lapsed := 0 // claims of killed workers that lapsed before their run started
	for _, c := range completed {
		lapsed += c.attempt - 1
	}
	lapsed -= len(starts) - len(completed)
	t.Logf("killed runs: %d before their work was done, %d after it but before it was recorded, %d claims before the work started; all run again",
		abandoned, redone, lapsed)
}

// lineTail reads the complete lines appended to a file since the last
// read.
type lineTail struct {
	path   string
	offset int64
}

func (lt *lineTail) read(t *testing.T) []runLine {
	t.Helper()
	f, err := os.Open(lt.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(lt.offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.LastIndexByte(data, '\n') + 1
	lt.offset += int64(n)
	var out []runLine
	for _, line := range bytes.Split(data[:n], []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		var l runLine
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("run line %q: %v", line, err)
		}
		out = append(out, l)
	}
	return out
}
