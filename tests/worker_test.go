package tests

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPipelineWorkerDaemon leaves streams pending in a SQLite database
// (a replay that stops at its last record), runs the pipeline_worker
// daemon on it until the streams are processed, stops it with SIGTERM and
// expects a clean exit and no active stream left.
func TestPipelineWorkerDaemon(t *testing.T) {
	winchester := buildCommand(t, "winchester")
	worker := buildCommand(t, "pipeline_worker")
	dbURL := "sqlite:///" + filepath.Join(t.TempDir(), "w.db") // four slashes: an absolute path
	cfg := replayConfig

	mustRunBin(t, winchester, nil, "replay", "-c", cfg, "--database", dbURL, "--no-drain", replayEvents)
	count := func() string {
		return strings.TrimSpace(mustRunBin(t, winchester, nil, "streams", "list", "-c", cfg, "--database-url", dbURL, "--state", "active", "--count").stdout)
	}
	if n := count(); n == "0" {
		t.Fatal("the replay left no pending stream to process")
	}

	var out bytes.Buffer
	cmd := exec.Command(worker, "-c", cfg, "--database-url", dbURL, "-n", "daemon-test", "--log-format", "json", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for count() != "0" {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("streams left after a minute:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pipeline_worker exited with %v after SIGTERM, want 0:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("pipeline_worker did not stop after SIGTERM:\n%s", out.String())
	}
	for _, want := range []string{`"msg":"pipeline worker started"`, `"worker_id":"daemon-test"`, `"msg":"pipeline worker stopped"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, out.String())
		}
	}
}
