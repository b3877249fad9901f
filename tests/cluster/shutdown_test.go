package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// TestShutdownGraceHandsBackHungStream sends SIGTERM to a worker whose
// pipeline never returns, with shutdown_grace 2s: the process exits about
// 2 s later, the stream is handed back without a charged attempt, and
// another worker processes it.
func TestShutdownGraceHandsBackHungStream(t *testing.T) {
	store, url := pgStore(t)
	readyPair(t, store, "hung")
	marker := tempFile(t, "marker")
	record := tempFile(t, "records.jsonl")

	a := startHelper(t, "work", envDB+"="+url, envName+"=stopping", envGrace+"=2s", envKeep+"=1", envConc+"=4",
		envMarker+"="+marker, envPipelines+"=fire: [block]\n")
	waitFor(t, time.Minute, "the pipeline to start", func() bool {
		_, err := os.Stat(marker)
		return err == nil
	}, a)
	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 30*time.Second)
	if d := time.Since(start); d < 1900*time.Millisecond || d > 5*time.Second {
		t.Errorf("the worker exited %s after SIGTERM, want about the 2s grace", d)
	}
	s, err := store.FindStreams(t.Context(), db.FindStreamsParams{})
	if err != nil || len(s) != 1 {
		t.Fatalf("streams: %v %+v, want one", err, s)
	}
	if st := s[0].Stream; st.State != stream.StateRetryFire || st.Attempts != 0 || st.ClaimedBy != "" {
		t.Fatalf("after the shutdown: state %s attempts %d owner %q, want retry_fire, 0, none", st.State, st.Attempts, st.ClaimedBy)
	}

	b := startHelper(t, "work", envDB+"="+url, envName+"=later", envKeep+"=1", envRecord+"="+record, envPipelines+"=fire: [record]\n")
	waitFor(t, time.Minute, "the stream to be processed by another worker", func() bool {
		s, err := store.StreamByID(t.Context(), s[0].Stream.ID)
		return err == nil && s.State == stream.StateCompleted
	}, b)
	b.stop(t)
	if recs := readRecords(t, record); len(recs) != 1 || recs[0].Worker != "later" || recs[0].Key != "hung" {
		t.Errorf("records %+v, want the stream committed once by the later worker", recs)
	}
}

// hookReceiver records the Idempotency-Key of every webhook request by
// stream id. It answers after a short delay, so that workers are killed
// while requests are in flight and after receivers accepted them.
type hookReceiver struct {
	mu   sync.Mutex
	keys map[int64][]string
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var doc struct {
		StreamID int64 `json:"stream_id"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	r.keys[doc.StreamID] = append(r.keys[doc.StreamID], req.Header.Get("Idempotency-Key"))
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// TestWebhookKeysAcrossKills kills webhook workers with SIGKILL again and
// again while they work: every stream's request arrives at least once, and
// every repeat of a stream carries the same Idempotency-Key (distinct
// streams, distinct keys), so the receiver can drop the repeats.
func TestWebhookKeysAcrossKills(t *testing.T) {
	store, url := pgStore(t)
	recv := &hookReceiver{keys: map[int64][]string{}}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	keys := 100
	defs, err := loadTriggers()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ingest(t.Context(), mgr, pairEvents(keys), 5); err != nil {
		t.Fatal(err)
	}
	pipes := fmt.Sprintf("fire:\n  - name: webhook\n    params: {url: %q, retry_backoff: 10ms}\n", srv.URL)
	start := func(i, gen int) *helper {
		return startHelper(t, "work", envDB+"="+url, envName+"=w"+strconv.Itoa(i)+"-"+strconv.Itoa(gen), envLease+"=1s",
			envConc+"=4", envPipelines+"="+pipes)
	}
	workers := []*helper{start(0, 0), start(1, 0)}
	left := func() int64 {
		n, err := store.CountStreams(t.Context(), db.FindStreamsParams{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	kills := 0
	for gen := 1; kills < 8 && left() > 0; gen++ {
		time.Sleep(150 * time.Millisecond)
		i := gen % 2
		if err := workers[i].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-workers[i].done
		kills++
		workers[i] = start(i, gen)
	}
	waitFor(t, 2*time.Minute, "every stream completed", func() bool { return left() == 0 }, workers...)
	for _, w := range workers {
		w.stop(t)
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	seen := map[string]int64{}
	repeats := 0
	for id, ks := range recv.keys {
		for _, k := range ks {
			if k == "" || k != ks[0] {
				t.Errorf("stream %d: keys %q, want one non-empty key on every request", id, ks)
				break
			}
		}
		if other, dup := seen[ks[0]]; dup {
			t.Errorf("streams %d and %d share the key %s", id, other, ks[0])
		}
		seen[ks[0]] = id
		repeats += len(ks) - 1
	}
	if len(recv.keys) != keys {
		t.Errorf("the receiver saw %d streams, want all %d", len(recv.keys), keys)
	}
	t.Logf("%d kills, %d streams, %d repeated requests (each with its stream's key)", kills, len(recv.keys), repeats)
}
