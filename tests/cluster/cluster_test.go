package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	_ "github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// streamCount is the number of streams of the concurrency test: 2,000,
// small enough for every run of the suite; WINCHESTER_TEST_STREAMS sets
// another (.ci/run runs the package once more with 20,000).
func streamCount(t *testing.T) int {
	if s := os.Getenv("WINCHESTER_TEST_STREAMS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("WINCHESTER_TEST_STREAMS=%q: want a positive number", s)
		}
		return n
	}
	return 2000
}

var base = time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)

// pairEvents returns two events per key; both carry the key trait.
func pairEvents(keys int) []stream.Event {
	events := make([]stream.Event, 0, 2*keys)
	for k := range keys {
		key := fmt.Sprintf("k%06d", k)
		for i, typ := range []string{"test.start", "test.end"} {
			events = append(events, stream.Event{
				MessageID: fmt.Sprintf("%s-%d", key, i+1), Type: typ,
				Timestamp: base.Add(time.Duration(k)*time.Millisecond + time.Duration(i)*time.Microsecond),
				Traits:    map[string]stream.Value{"key": stream.String(key), "n": stream.Int(int64(i + 1))},
			})
		}
	}
	return events
}

// TestIngestersAndWorkersProcessEveryStreamOnce runs four ingesters (two
// goroutines, two processes) over overlapping keys — the two events of a key
// always go to different ingesters, and each ingester also re-sends some
// events of another one — while four worker processes fire the streams.
// Every key must be processed exactly once with both its events, nothing
// may be left in the database, and the set of fired streams must equal the
// one of a serial run.
func TestIngestersAndWorkersProcessEveryStreamOnce(t *testing.T) {
	store, url := pgStore(t)
	keys := streamCount(t)
	events := pairEvents(keys)

	const ingesters = 4
	parts := make([][]stream.Event, ingesters)
	for i, ev := range events {
		k, n := i/2, i%2
		parts[(k+n)%ingesters] = append(parts[(k+n)%ingesters], ev)
	}
	// Duplicates: every ingester also sends the first 5% of the next one's
	// events.
	for i := range parts {
		next := parts[(i+1)%ingesters]
		parts[i] = append(parts[i], next[:len(next)/20]...)
	}

	record := tempFile(t, "records.jsonl")
	var workers []*helper
	for i := range 4 {
		workers = append(workers, startHelper(t, "work",
			envDB+"="+url, envRecord+"="+record, envName+"=worker-"+strconv.Itoa(i)))
	}

	var procs []*helper
	for i := 2; i < ingesters; i++ {
		path := tempFile(t, fmt.Sprintf("input-%d.jsonl", i))
		writeEvents(t, path, parts[i])
		procs = append(procs, startHelper(t, "ingest", envDB+"="+url, envInput+"="+path))
	}
	defs, err := loadTriggers()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
			if err != nil {
				errs <- err
				return
			}
			errs <- ingest(t.Context(), mgr, parts[i], i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ingester: %v", err)
		}
	}
	for _, p := range procs {
		p.wait(t, 10*time.Minute)
	}

	waitFor(t, 10*time.Minute, fmt.Sprintf("%d processed streams", keys), func() bool {
		return countLines(t, record) >= keys
	}, workers...)
	for _, w := range workers {
		w.stop(t)
	}

	got := map[string][]string{}
	for _, l := range readRecords(t, record) {
		if prev, dup := got[l.Key]; dup {
			t.Errorf("key %s processed twice: %v and %v (worker %s)", l.Key, prev, l.Events, l.Worker)
		}
		got[l.Key] = l.Events
	}
	if n, err := store.CountStreams(t.Context(), db.FindStreamsParams{}); err != nil || n != 0 {
		t.Errorf("streams left in the database: %d (%v), want 0", n, err)
	}
	if n, err := store.CountEvents(t.Context(), db.FindEventsParams{}); err != nil || n != int64(len(events)) {
		t.Errorf("stored events: %d (%v), want %d (duplicates ignored)", n, err, len(events))
	}

	want := serialRun(t, events)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("fired streams differ from a serial run (-serial +concurrent):\n%s", d)
	}
}

// serialRun adds the events one at a time on a private SQLite store, runs
// one worker pass, and returns key → sorted event ids of the fired streams.
func serialRun(t *testing.T, events []stream.Event) map[string][]string {
	t.Helper()
	ctx := t.Context()
	store, err := db.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "serial.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	defs, err := loadTriggers()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(events); i += 500 {
		if _, err := mgr.AddEvents(ctx, events[i:min(i+500, len(events))]); err != nil {
			t.Fatal(err)
		}
	}
	record := tempFile(t, "serial.jsonl")
	w, err := newWorker(store, "serial", workerEnv{record: record})
	if err != nil {
		t.Fatal(err)
	}
	for {
		res, err := w.Pass(ctx, ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Attempts) == 0 {
			break
		}
	}
	out := map[string][]string{}
	for _, l := range readRecords(t, record) {
		out[l.Key] = l.Events
	}
	return out
}

// readyPair stores the two events of one key, making its stream ready.
func readyPair(t *testing.T, store db.Store, key string) {
	t.Helper()
	defs, err := loadTriggers()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	evs := pairEvents(1)
	for i := range evs {
		evs[i].MessageID = strings.Replace(evs[i].MessageID, "k000000", key, 1)
		evs[i].Traits["key"] = stream.String(key)
	}
	if _, err := mgr.AddEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
}

// TestWorkerKilledMidPipeline kills a worker process with SIGKILL while it
// runs a pipeline (in HandleEvents, or after its handlers committed). After
// the claim's lease another worker recovers the stream and completes it;
// the event the pipeline produces is stored once.
func TestWorkerKilledMidPipeline(t *testing.T) {
	cases := []struct {
		name   string
		killed string // pipelines of the worker that is killed
	}{
		{"in_handle_events", "fire: [emit, block]\n"},
		{"after_commit", "fire: [emit, record, commit_block]\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store, url := pgStore(t)
			readyPair(t, store, "victim")
			marker := tempFile(t, "marker")
			record := tempFile(t, "records.jsonl")

			a := startHelper(t, "work", envDB+"="+url, envName+"=doomed", envLease+"=1s",
				envMarker+"="+marker, envRecord+"="+record, envPipelines+"="+tc.killed)
			waitFor(t, time.Minute, "the pipeline to start", func() bool {
				_, err := os.Stat(marker)
				return err == nil
			}, a)
			if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-a.done

			s, err := store.FindStreams(t.Context(), db.FindStreamsParams{})
			if err != nil || len(s) != 1 || s[0].Stream.State != stream.StateFiring {
				t.Fatalf("after the kill: %v %+v, want one stream left in firing", err, s)
			}

			// The rescuer's own lease is long: with 1s, a loaded machine
			// delayed its renewal past the lease once, and it claimed and
			// ran the stream a second time (at-least-once, as designed,
			// but not what this test is about).
			b := startHelper(t, "work", envDB+"="+url, envName+"=rescuer", envLease+"=30s",
				envRecord+"="+record, envPipelines+"=fire: [emit, record]\n")
			waitFor(t, time.Minute, "the stream to be recovered", func() bool {
				n, err := store.CountStreams(t.Context(), db.FindStreamsParams{})
				return err == nil && n == 0
			}, b)
			b.stop(t)

			derived, err := store.FindEvents(t.Context(), db.FindEventsParams{EventType: "derived.event"})
			if err != nil || len(derived) != 1 || derived[0].Event.MessageID != "derived-victim" {
				t.Fatalf("derived events: %v %+v, want exactly one derived-victim", err, derived)
			}
			var byRescuer int
			for _, l := range readRecords(t, record) {
				if l.Worker == "rescuer" {
					byRescuer++
				}
			}
			if byRescuer != 1 {
				t.Errorf("the rescuing worker committed %d times, want 1", byRescuer)
			}
		})
	}
}

// TestDatabaseRestartUnderWorkers restarts a private PostgreSQL server while
// workers run and ingesters add events: the workers log, back off and
// reconnect, and every stream is processed.
func TestDatabaseRestartUnderWorkers(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" && os.Getenv("CI") == "" {
		t.Skip("TEST_DATABASE_URL not set: no PostgreSQL tests")
	}
	srv := startPrivatePostgres(t)
	ctx := t.Context()
	store, err := db.Open(ctx, srv.url, db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	keys := 600
	events := pairEvents(keys)
	record := tempFile(t, "records.jsonl")
	var workers []*helper
	for i := range 2 {
		workers = append(workers, startHelper(t, "work", envDB+"="+srv.url, envRecord+"="+record,
			envName+"=w"+strconv.Itoa(i), envLease+"=2s"))
	}
	defs, err := loadTriggers()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	half := len(events) / 2
	if err := ingest(ctx, mgr, events[:half], 3); err != nil {
		t.Fatal(err)
	}
	srv.restart(t)
	if err := ingest(ctx, mgr, events[half:], 4); err != nil {
		t.Fatal(err)
	}
	seen := func() map[string]bool {
		m := map[string]bool{}
		for _, l := range readRecords(t, record) {
			m[l.Key] = true
		}
		return m
	}
	waitFor(t, 5*time.Minute, "every stream processed after the restart", func() bool {
		return countLines(t, record) >= keys && len(seen()) >= keys
	}, workers...)
	waitFor(t, time.Minute, "no stream left", func() bool {
		n, err := store.CountStreams(ctx, db.FindStreamsParams{})
		if err == nil && n > 0 && n < 5 {
			left, _ := store.FindStreams(ctx, db.FindStreamsParams{})
			for _, s := range left {
				t.Logf("left: %+v", s.Stream)
			}
		}
		return err == nil && n == 0
	}, workers...)
	for _, w := range workers {
		w.stop(t)
	}
	for _, l := range readRecords(t, record) {
		if len(l.Events) != 2 {
			t.Errorf("stream %s processed with events %v, want both", l.Key, l.Events)
		}
	}
}

type privatePostgres struct {
	dir, url string
	script   string
}

// startPrivatePostgres starts a throw-away server with tests/pg.sh (its
// own directory and socket), so restarting it disturbs no other test.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	script, err := filepath.Abs("../pg.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "winchester-pg-restart-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	p := &privatePostgres{dir: dir, script: script}
	out, err := p.run("start")
	if err != nil {
		t.Skipf("cannot start a private PostgreSQL server: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_, _ = p.run("stop")
		_ = os.RemoveAll(dir)
	})
	url, err := p.run("url")
	if err != nil {
		t.Fatalf("pg.sh url: %v\n%s", err, url)
	}
	p.url = strings.TrimSpace(url)
	return p
}

func (p *privatePostgres) run(args ...string) (string, error) {
	cmd := exec.Command("sh", append([]string{p.script}, args...)...)
	cmd.Env = append(os.Environ(), "PGSH_DIR="+p.dir, "PGSH_PORT=5433")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// restart stops the server with a fast shutdown (every connection is
// terminated) and starts it again on the same data.
func (p *privatePostgres) restart(t *testing.T) {
	t.Helper()
	if out, err := p.run("restart"); err != nil {
		t.Fatalf("restart PostgreSQL: %v\n%s", err, out)
	}
}
