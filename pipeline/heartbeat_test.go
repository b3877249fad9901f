package pipeline_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// lineWriter sends each log line to a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// An idle worker is not silent: at each statistics period with nothing
// done it logs a heartbeat, so that an operator can tell a quiet worker
// from a hung one.
func TestIdleWorkerLogsHeartbeat(t *testing.T) {
	store, err := db.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	defs, err := pipeline.Parse("pipelines.yaml", []byte("p: [logger]\n"), builtinRegistry())
	if err != nil {
		t.Fatal(err)
	}
	lines := make(lineWriter, 100)
	w, err := pipeline.NewWorker(store, defs,
		func(string) (string, string, bool) { return "p", "p", true },
		func(context.Context, db.Ops, []stream.Event) error { return nil },
		pipeline.WorkerConfig{
			Name: "idle", Delay: time.Millisecond, StatsPeriod: 20 * time.Millisecond,
			Clock: fixedClock(time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)), Logger: slog.New(slog.NewTextHandler(lines, nil)),
		})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, `msg="worker idle"`) {
				if !strings.Contains(l, "worker_id=idle") {
					t.Errorf("heartbeat %q lacks the worker id", l)
				}
				return
			}
		case <-timeout:
			t.Fatal("no heartbeat from an idle worker within 10s (statistics period 20ms)")
		}
	}
}
