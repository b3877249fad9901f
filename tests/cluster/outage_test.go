package cluster

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// TestDatabaseRestartMidPipeline restarts a private PostgreSQL server while
// workers are in the middle of pipelines (a handler that takes a second):
// the workers retry completing their streams until the server is back, so
// no claim is left to lapse (the lease is 30 s; everything finishes well
// within it) and no stream is charged an attempt.
func TestDatabaseRestartMidPipeline(t *testing.T) {
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
	defs, err := loadTriggers()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	keys := 40
	if err := ingest(ctx, mgr, pairEvents(keys), 2); err != nil {
		t.Fatal(err)
	}
	record := tempFile(t, "records.jsonl")
	pipes := "fire:\n  - name: exec\n    params: {command: [sleep, \"1\"], phases: [handle]}\n  - record\n"
	var workers []*helper
	for i := range 2 {
		workers = append(workers, startHelper(t, "work", envDB+"="+srv.url, envRecord+"="+record, envKeep+"=1",
			envConc+"=8", envLease+"=30s", envName+"=w"+strconv.Itoa(i), envPipelines+"="+pipes))
	}
	waitFor(t, time.Minute, "pipelines running", func() bool {
		n, err := store.CountStreams(ctx, db.FindStreamsParams{State: stream.StateFiring})
		return err == nil && n >= 8
	}, workers...)
	srv.restart(t)
	back := time.Now()
	var completed []db.FoundStream
	waitFor(t, 2*time.Minute, "every stream completed", func() bool {
		completed, err = store.FindStreams(ctx, db.FindStreamsParams{State: stream.StateCompleted})
		return err == nil && len(completed) == keys
	}, workers...)
	if d := time.Since(back); d > 20*time.Second {
		t.Errorf("the last stream completed %s after the restart, want well within the 30s lease", d)
	}
	retried := 0
	for _, w := range workers {
		w.stop(t)
		for _, line := range strings.Split(w.out.String(), "\n") {
			if strings.Contains(line, "database unavailable; retrying") && strings.Contains(line, "operation=") {
				retried++ // a claimed stream's write, not a pass's query
			}
		}
	}
	t.Logf("the last stream completed %s after the restart; %d storage writes waited for the database", time.Since(back).Round(time.Millisecond), retried)
	for _, s := range completed {
		if s.Stream.Attempts != 0 || s.Stream.LastError != "" {
			t.Errorf("stream %d: attempts %d, last error %q; want no attempt charged for the outage", s.Stream.ID, s.Stream.Attempts, s.Stream.LastError)
		}
	}
	seen := map[string]bool{}
	for _, l := range readRecords(t, record) {
		seen[l.Key] = true
	}
	if len(seen) != keys {
		t.Errorf("%d streams committed, want %d", len(seen), keys)
	}
}
