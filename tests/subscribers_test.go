package tests

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/pipeline/handlers"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/subscriber"
)

// deliveryLog is a webhook receiver that records the message ids it is
// sent, in order, and the most requests it had in flight at once.
type deliveryLog struct {
	mu       sync.Mutex
	got      []string
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

func (l *deliveryLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	for m := l.maxIn.Load(); n > m && !l.maxIn.CompareAndSwap(m, n); m = l.maxIn.Load() {
	}
	id := strings.TrimPrefix(r.Header.Get(handlers.HeaderIdempotencyKey), "subscriber-audit-")
	time.Sleep(2 * time.Millisecond) // a receiver that takes a moment: kills land mid-delivery
	l.mu.Lock()
	l.got = append(l.got, id)
	l.mu.Unlock()
}

func (l *deliveryLog) received() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// TestSubscriberAcrossWorkerProcessesWithKills runs four pipeline_worker
// processes delivering to one webhook subscriber while events are
// ingested, kills the worker holding the subscriber with SIGKILL several
// times (starting a new one each time) and checks that every event was
// delivered, in order, and that the only repeats are the event in flight
// at each kill (batch_size 1), delivered again right after; no event was
// ever being delivered twice at once. Both stores; the full size runs
// with WINCHESTER_LONG_TESTS=1.
func TestSubscriberAcrossWorkerProcessesWithKills(t *testing.T) {
	worker := buildCommand(t, "pipeline_worker")
	events, kills := 60, 2
	if os.Getenv("WINCHESTER_LONG_TESTS") == "1" {
		events, kills = 2000, 10
	}
	for _, st := range []struct {
		name string
		url  func(t *testing.T, dir string) string
	}{
		{"sqlite", func(t *testing.T, dir string) string { return "sqlite:///" + filepath.Join(dir, "w.db") }},
		{"postgres", func(t *testing.T, _ string) string { return dbtest.PostgresURL(t) }},
	} {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			runSubscriberCluster(t, worker, dir, st.url(t, dir), events, kills)
		})
	}
}

func runSubscriberCluster(t *testing.T, worker, dir, url string, events, kills int) {
	rec := &deliveryLog{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	cfgText := fmt.Sprintf(`database: {url: %q}
pipeline_config: pipelines.yaml
pipeline_worker_delay: 0.2
worker_lease: 2s
shutdown_grace: 5s
subscribers:
  audit:
    handler: webhook
    params: {url: %q, max_attempts: 1}
    batch_size: 1
    backoff: 50ms
`, url, srv.URL)
	for name, text := range map[string]string{"winchester.yaml": cfgText, "pipelines.yaml": "p: [logger]\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "winchester.yaml")
	cfg, err := winchester.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := winchester.Open(t.Context(), cfg, winchester.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ss := eng.Store.(subscriber.Store)

	type proc struct {
		cmd  *exec.Cmd
		out  *bytes.Buffer
		done chan error
	}
	var procs []*proc
	start := func(name string) *proc {
		p := &proc{out: &bytes.Buffer{}, done: make(chan error, 1)}
		p.cmd = exec.Command(worker, "-c", cfgPath, "-n", name, "--log-level", "warning")
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		procs = append(procs, p)
		return p
	}
	byName := map[string]*proc{}
	for i := range 4 {
		name := fmt.Sprintf("w%d", i)
		byName[name] = start(name)
	}
	defer func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		// A transaction another test holds open on the server holds
		// PostgreSQL deliveries back: a generous limit.
		deadline := time.Now().Add(3 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after three minutes; delivered %d", what, len(rec.received()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("a worker created the subscriber", func() bool { _, err := ss.SubscriberState(t.Context(), "audit"); return err == nil })

	// Ingest in batches from one goroutine while the workers deliver: the
	// expected order is the order of ingest.
	var want []string
	ingested := make(chan error, 1)
	go func() {
		ts := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < events; i += 10 {
			var batch []stream.Event
			for j := i; j < min(i+10, events); j++ {
				id := fmt.Sprintf("ev-%05d", j)
				batch = append(batch, stream.Event{MessageID: id, Type: "compute.instance.update", Timestamp: ts.Add(time.Duration(j) * time.Second),
					Traits: map[string]stream.Value{}})
			}
			if _, err := eng.Manager.AddEvents(context.Background(), batch); err != nil {
				ingested <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		ingested <- nil
	}()
	for i := range events {
		want = append(want, fmt.Sprintf("ev-%05d", i))
	}

	next := 0
	for k := range kills {
		at := (k + 1) * events / (kills + 1)
		// Wait for the deliveries and for a live worker to hold the
		// claim: the worker killed last may have delivered past this
		// mark before it died, while its lease still shows until it
		// lapses and a live worker claims the subscriber.
		var holder string
		waitFor(fmt.Sprintf("kill %d: %d deliveries by a live worker", k+1, at), func() bool {
			if len(rec.received()) < at {
				return false
			}
			st, err := ss.SubscriberState(t.Context(), "audit")
			if err != nil {
				t.Fatal(err)
			}
			holder = strings.SplitN(st.ClaimedBy, "/", 2)[0]
			_, live := byName[holder]
			return live
		})
		p := byName[holder]
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		next++
		name := fmt.Sprintf("r%d", next)
		byName[name] = start(name)
		delete(byName, holder)
	}
	if err := <-ingested; err != nil {
		t.Fatalf("ingest: %v", err)
	}
	waitFor("every event delivered", func() bool {
		got := rec.received()
		return len(got) > 0 && got[len(got)-1] == want[len(want)-1]
	})
	for _, p := range byName {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range byName {
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("pipeline_worker exited with %v after SIGTERM:\n%s", err, p.out)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("pipeline_worker did not stop after SIGTERM:\n%s", p.out)
		}
	}

	got := rec.received()
	index := map[string]int{}
	for i, id := range want {
		index[id] = i
	}
	dups, pos := 0, -1
	for i, id := range got {
		n, ok := index[id]
		switch {
		case !ok:
			t.Fatalf("delivery %d is %q, not an ingested event", i, id)
		case n == pos:
			dups++ // the event in flight at a kill, delivered again
		case n == pos+1:
			pos = n
		default:
			t.Fatalf("delivery %d is %s after %s: out of order or an event skipped", i, id, want[max(pos, 0)])
		}
	}
	if pos != len(want)-1 {
		t.Fatalf("delivered up to %s, want all %d events", want[pos], len(want))
	}
	t.Logf("%d events, %d kills, %d deliveries repeated", events, kills, dups)
	if dups > kills {
		t.Errorf("%d repeated deliveries for %d kills: only the event in flight at a kill may be delivered twice", dups, kills)
	}
	if m := rec.maxIn.Load(); m != 1 {
		t.Errorf("%d deliveries in flight at once, want 1 (one worker delivers the subscriber at a time)", m)
	}
	if n, _ := ss.CountDeadLetters(t.Context(), "audit"); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}
