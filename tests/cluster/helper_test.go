// Package cluster holds the tests that prove the engine's guarantees with
// several OS processes on one database: concurrent ingesters and workers,
// a worker killed in the middle of a pipeline, a database restart under
// running workers (PostgreSQL), and scheduled jobs run by worker processes
// killed with SIGKILL over a simulated day on a shared virtual clock
// (SQLite and PostgreSQL).
//
// The test binary doubles as the ingester and worker processes: started
// with WINCHESTER_TEST_ROLE set, TestMain runs that role instead of the
// tests (the os/exec helper-process pattern), so the processes run the
// real trigger.Manager, pipeline.Worker and job.Runner with the test's
// handlers and jobs.
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	_ "github.com/winchester-go/winchester/db/postgres"
	_ "github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/pipeline/handlers"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Environment of a helper process.
const (
	envRole      = "WINCHESTER_TEST_ROLE"      // ingest | work | poison | jobs
	envDB        = "WINCHESTER_TEST_DB"        // database URL
	envInput     = "WINCHESTER_TEST_INPUT"     // ingest: events file (JSON lines)
	envRecord    = "WINCHESTER_TEST_RECORD"    // work: file the record handler appends to
	envMarker    = "WINCHESTER_TEST_MARKER"    // work: file the block handler creates when it starts
	envPipelines = "WINCHESTER_TEST_PIPELINES" // work: pipelines.yaml content
	envLease     = "WINCHESTER_TEST_LEASE"     // work: lease duration
	envName      = "WINCHESTER_TEST_NAME"      // work: worker name
	envGrace     = "WINCHESTER_TEST_GRACE"     // work: shutdown grace (default 5s)
	envKeep      = "WINCHESTER_TEST_KEEP"      // work: "1" keeps completed streams (no purge)
	envConc      = "WINCHESTER_TEST_CONC"      // work: worker concurrency (default 1)
)

// triggersYAML groups events by "key"; a stream fires when it has two
// events, so every key fires exactly once, whatever the interleaving.
const triggersYAML = `
- name: pairs
  distinguished_by: [key]
  expiration: "$timestamp + 1d"
  fire_pipeline: fire
  match_criteria:
  - event_type: "test.*"
  fire_criteria:
  - event_type: "test.*"
    number: 2
`

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "":
		os.Exit(m.Run())
	case "ingest":
		os.Exit(exitCode(runIngester()))
	case "work":
		os.Exit(exitCode(runWorkerProcess()))
	case "poison":
		os.Exit(exitCode(runPoisonIngester()))
	case "jobs":
		os.Exit(exitCode(runJobWorker()))
	default:
		fmt.Fprintln(os.Stderr, "unknown role", os.Getenv(envRole))
		os.Exit(2)
	}
}

func exitCode(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func loadTriggers() ([]*trigger.Definition, error) {
	defs, _, err := trigger.Parse("triggers.yaml", []byte(triggersYAML))
	return defs, err
}

// runIngester adds the events of a file in batches of varying size.
func runIngester() error {
	ctx := context.Background()
	store, err := db.Open(ctx, os.Getenv(envDB), db.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	defs, err := loadTriggers()
	if err != nil {
		return err
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		return err
	}
	events, err := readEvents(os.Getenv(envInput))
	if err != nil {
		return err
	}
	return ingest(ctx, mgr, events, 1)
}

// ingest adds events in batches of 1 to 50 events (seeded), retrying
// batches that hit an unavailable database.
func ingest(ctx context.Context, mgr *trigger.Manager, events []stream.Event, seed int) error {
	size := seed%7 + 1
	for len(events) > 0 {
		n := min(size, len(events))
		size = size*5%49 + 1
		for {
			_, err := mgr.AddEvents(ctx, events[:n])
			if err == nil {
				break
			}
			if !errors.Is(err, db.ErrUnavailable) {
				return err
			}
			time.Sleep(200 * time.Millisecond)
		}
		events = events[n:]
	}
	return nil
}

func readEvents(path string) ([]stream.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []stream.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev stream.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

func writeEvents(t *testing.T, path string, events []stream.Event) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// runWorkerProcess runs a pipeline worker until SIGTERM.
func runWorkerProcess() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	store, err := db.Open(ctx, os.Getenv(envDB), db.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	w, err := newWorker(store, os.Getenv(envName), workerEnv{
		record: os.Getenv(envRecord), marker: os.Getenv(envMarker), pipelines: os.Getenv(envPipelines), lease: os.Getenv(envLease),
		grace: os.Getenv(envGrace), keep: os.Getenv(envKeep) == "1", concurrency: os.Getenv(envConc),
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, signalsHandled)
	return w.Run(ctx)
}

type workerEnv struct {
	record, marker, pipelines, lease, grace, concurrency string
	keep                                                 bool
}

func newWorker(store db.Store, name string, env workerEnv) (*pipeline.Worker, error) {
	defs, err := loadTriggers()
	if err != nil {
		return nil, err
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		return nil, err
	}
	reg := pipeline.NewRegistry()
	handlers.RegisterBuiltins(reg)
	rec := &recorder{path: env.record}
	reg.Register("record", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return &recordHandler{rec: rec}, nil }, nil
	})
	reg.Register("block", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return &blockHandler{marker: env.marker}, nil }, nil
	})
	reg.Register("commit_block", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return &commitBlockHandler{marker: env.marker}, nil }, nil
	})
	reg.Register("emit", func(pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) { return emitHandler{}, nil }, nil
	})
	pipes := env.pipelines
	if pipes == "" {
		pipes = "fire: [record]\n"
	}
	pdefs, err := pipeline.Parse("pipelines.yaml", []byte(pipes), reg)
	if err != nil {
		return nil, err
	}
	lease := 30 * time.Second
	if env.lease != "" {
		if lease, err = time.ParseDuration(env.lease); err != nil {
			return nil, err
		}
	}
	grace := 5 * time.Second
	if env.grace != "" {
		if grace, err = time.ParseDuration(env.grace); err != nil {
			return nil, err
		}
	}
	conc := 1
	if env.concurrency != "" {
		if conc, err = strconv.Atoi(env.concurrency); err != nil {
			return nil, err
		}
	}
	lookup := func(name string) (string, string, bool) {
		d, ok := mgr.Definition(name)
		if !ok {
			return "", "", false
		}
		return d.FirePipeline, d.ExpirePipeline, true
	}
	feed := func(ctx context.Context, tx db.Ops, events []stream.Event) error {
		_, err := mgr.AddEventsTx(ctx, tx, events)
		return err
	}
	return pipeline.NewWorker(store, pdefs, lookup, feed, pipeline.WorkerConfig{
		Name: name, BatchSize: 200, Delay: 20 * time.Millisecond, Purge: !env.keep, Lease: lease, Concurrency: conc,
		MaxRetries: 5, RetryBackoff: 100 * time.Millisecond, ShutdownGrace: grace,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
}

// recorder appends one line per committed stream: the worker, the
// stream's key and its event ids. Each line is written with one write
// call on an O_APPEND file, so lines of several processes never mix.
type recorder struct {
	path string
	mu   sync.Mutex
}

type recordLine struct {
	Worker string   `json:"worker"`
	Stream int64    `json:"stream"`
	Key    string   `json:"key"`
	Events []string `json:"events"`
}

func (r *recorder) write(l recordLine) error {
	if r.path == "" {
		return errors.New("no record file")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return appendLine(r.path, l)
}

type recordHandler struct {
	rec  *recorder
	line recordLine
}

func (h *recordHandler) HandleEvents(_ context.Context, events []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	h.line = recordLine{Worker: os.Getenv(envName), Stream: env.StreamID}
	for _, ev := range events {
		h.line.Events = append(h.line.Events, ev.MessageID)
		if k, ok := ev.Traits["key"]; ok {
			h.line.Key = k.Text()
		}
	}
	return events, nil
}

func (h *recordHandler) Commit(context.Context) error   { return h.rec.write(h.line) }
func (h *recordHandler) Rollback(context.Context) error { return nil }

// blockHandler announces that it runs (creating the marker file) and then
// blocks until its run is cancelled: the test kills its process meanwhile.
type blockHandler struct{ marker string }

func (h *blockHandler) HandleEvents(ctx context.Context, events []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	if h.marker != "" {
		if err := os.WriteFile(h.marker, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return nil, err
		}
	}
	<-ctx.Done()
	return nil, context.Cause(ctx)
}

func (h *blockHandler) Commit(context.Context) error   { return nil }
func (h *blockHandler) Rollback(context.Context) error { return nil }

// commitBlockHandler passes events through and blocks in Commit after
// announcing it: the handlers before it have committed their side effects,
// the stream is not completed yet.
type commitBlockHandler struct{ marker string }

func (h *commitBlockHandler) HandleEvents(_ context.Context, events []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	return events, nil
}

func (h *commitBlockHandler) Commit(ctx context.Context) error {
	if err := os.WriteFile(h.marker, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	<-ctx.Done()
	return context.Cause(ctx)
}

func (h *commitBlockHandler) Rollback(context.Context) error { return nil }

// emitHandler adds one event whose id derives from the stream's key, so a
// re-run produces the same id (and the store keeps it once).
type emitHandler struct{}

func (emitHandler) HandleEvents(_ context.Context, events []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	key := ""
	if len(events) > 0 {
		key = events[0].Traits["key"].Text()
	}
	return append(events, stream.Event{
		MessageID: "derived-" + key, Type: "derived.event", Timestamp: events[0].Timestamp,
		Traits: map[string]stream.Value{"source_key": stream.String(key)},
	}), nil
}

func (emitHandler) Commit(context.Context) error   { return nil }
func (emitHandler) Rollback(context.Context) error { return nil }

// helper is a running helper process.
type helper struct {
	cmd  *exec.Cmd
	done chan error
	out  *syncBuffer
}

// syncBuffer collects a helper's output; safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startHelper(t *testing.T, role string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{envRole + "=" + role}, env...)...)
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s helper: %v", role, err)
	}
	h := &helper{cmd: cmd, done: make(chan error, 1), out: out}
	go func() { h.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-h.done
		}
	})
	return h
}

// wait waits for the helper to exit and fails the test if it did not exit
// cleanly in time.
func (h *helper) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("helper %v: %v\n%s", h.cmd.Args, err, h.out.String())
		}
	case <-time.After(timeout):
		_ = h.cmd.Process.Kill()
		t.Fatalf("helper %v did not finish within %s\n%s", h.cmd.Args, timeout, h.out.String())
	}
}

// signalsHandled is the line a worker helper prints once it has started
// and SIGTERM stops it cleanly; before that, SIGTERM kills the process or
// cancels its start.
const signalsHandled = "helper: running, SIGTERM stops it"

// stop sends SIGTERM, once the helper handles it, and waits for a clean
// exit. A helper started just before the test stops it may not handle
// the signal yet.
func (h *helper) stop(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(h.out.String(), signalsHandled) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	h.wait(t, 30*time.Second)
}

// readRecords reads a record file (missing: none).
func readRecords(t *testing.T, path string) []recordLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []recordLine
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var l recordLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("record line %q: %v", line, err)
		}
		slices.Sort(l.Events)
		out = append(out, l)
	}
	return out
}

// countLines counts the lines of a record file (missing: 0) without
// decoding them.
func countLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte{'\n'})
}

// pgStore opens a migrated store in a fresh schema of the test database.
// sqliteStore opens a migrated SQLite store in a file named name of a
// temporary directory and returns it with its URL.
func sqliteStore(t *testing.T, name string) (db.Store, string) {
	t.Helper()
	url := "sqlite://" + filepath.Join(t.TempDir(), name)
	s, err := db.Open(t.Context(), url, db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, url
}

func pgStore(t *testing.T) (db.Store, string) {
	t.Helper()
	url := dbtest.PostgresURL(t)
	s, err := db.Open(t.Context(), url, db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, url
}

// waitFor polls cond until it holds or the timeout passes; on a timeout it
// shows what the helpers printed.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, helpers ...*helper) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, h := range helpers {
				fmt.Fprintf(&b, "--- %v:\n%s\n", h.cmd.Env[len(h.cmd.Env)-1], h.out.String())
			}
			t.Fatalf("timed out after %s waiting for %s\n%s", timeout, what, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tempFile(t *testing.T, name string) string {
	return filepath.Join(t.TempDir(), name)
}
