package tests

import (
	"bytes"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/winchester-go/winchester/metrics/metricstest"
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

// metricsAddress returns the address a process's JSON log says it serves
// its metrics on ("" until it says so).
func metricsAddress(log string) string {
	for _, line := range strings.Split(log, "\n") {
		var rec struct {
			Msg     string `json:"msg"`
			Address string `json:"address"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving metrics" {
			return rec.Address
		}
	}
	return ""
}

// TestPipelineWorkerMetrics runs pipeline_worker with --metrics-listen on
// streams a replay left pending: /livez and /readyz answer, /metrics shows
// the streams it processed, the backlog read from the database and the
// build, and passes promtool; after SIGTERM it exits 0.
func TestPipelineWorkerMetrics(t *testing.T) {
	winchester := buildCommand(t, "winchester")
	worker := buildCommand(t, "pipeline_worker")
	dbURL := "sqlite:///" + filepath.Join(t.TempDir(), "w.db")
	cfg := replayConfig
	mustRunBin(t, winchester, nil, "replay", "-c", cfg, "--database", dbURL, "--no-drain", replayEvents)
	count := func() string {
		return strings.TrimSpace(mustRunBin(t, winchester, nil, "streams", "list", "-c", cfg, "--database-url", dbURL, "--state", "active", "--count").stdout)
	}
	if count() == "0" {
		t.Fatal("the replay left no pending stream to process")
	}

	p := startLogProcess(t, worker, "-c", cfg, "--database-url", dbURL, "-n", "metrics-test", "--log-format", "json",
		"--log-level", "info", "--metrics-listen", "127.0.0.1:0")
	var addr string
	waitFor(t, "the metrics address in the log", 30*time.Second, func() bool { addr = metricsAddress(p.output()); return addr != "" }, p.output)
	base := "http://" + addr
	for path, want := range map[string]string{"/livez": `{"status":"ok"}`, "/readyz": `{"status":"ready"}`} {
		if code, body := httpDo(t, "GET", base+path, nil); code != 200 || strings.TrimSpace(body) != want {
			t.Errorf("GET %s = %d %s, want 200 %s", path, code, body, want)
		}
	}
	waitFor(t, "the pending streams processed", time.Minute, func() bool { return count() == "0" }, p.output)

	var exposition string
	waitFor(t, "the processed streams in /metrics", 30*time.Second, func() bool {
		_, exposition = httpDo(t, "GET", base+"/metrics", nil)
		return strings.Contains(exposition, `winchester_streams_processed_total{action="expire",result="ok",trigger="test_trigger"} 3`)
	}, p.output, func() string { return exposition })
	for _, want := range []string{
		"winchester_build_info{",
		"winchester_database_up 1",
		`winchester_streams_ready{action="fire"} 0`,
		`winchester_pipeline_duration_seconds_count{action="expire",trigger="test_trigger"} 3`,
		`winchester_handler_duration_seconds_count{`,
		"winchester_definitions_version 1",
		"process_start_time_seconds",
	} {
		if !strings.Contains(exposition, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, exposition)
		}
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("pipeline_worker exited with %v after SIGTERM, want 0:\n%s", err, p.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("pipeline_worker did not stop after SIGTERM:\n%s", p.output())
	}
	metricstest.Check(t, exposition) // last: it skips without promtool
}

// TestPipelineWorkerMetricsAddressInUse: a worker asked to serve metrics
// on an address taken exits 1 at once and says which flag is wrong.
func TestPipelineWorkerMetricsAddressInUse(t *testing.T) {
	worker := buildCommand(t, "pipeline_worker")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dbURL := "sqlite:///" + filepath.Join(t.TempDir(), "w.db")
	res := runBin(t, worker, nil, "-c", replayConfig, "--database-url", dbURL, "--metrics-listen", busy.Addr().String())
	if res.code != 1 || !strings.Contains(res.stderr, "--metrics-listen: listen tcp "+busy.Addr().String()) {
		t.Fatalf("pipeline_worker on a busy address: exit %d, stderr:\n%s\nwant exit 1 naming --metrics-listen", res.code, res.stderr)
	}
}
