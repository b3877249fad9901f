package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/sqlite"
)

// TestJobsAcrossWorkerProcesses runs an exec job every second in several
// pipeline_worker processes sharing a SQLite database, kills one with
// SIGKILL while they run and stops the rest with SIGTERM. Every window is
// completed once, the windows follow each other without gap, and no run
// failed: the killed worker's window was run again by another worker
// after its lease, the stopped workers handed theirs back.
func TestJobsAcrossWorkerProcesses(t *testing.T) {
	worker := buildCommand(t, "pipeline_worker")
	dir := t.TempDir()
	files := map[string]string{
		"winchester.yaml": `database: {url: 'sqlite:///w.db'}
pipeline_config: pipelines.yaml
pipeline_worker_delay: 0.2
worker_lease: 2s
shutdown_grace: 5s
jobs:
  tick:
    schedule: "@every 1s"
    handler: exec
    command: [./tick.sh]
    catch_up: all
`,
		"pipelines.yaml": "p: [logger]\n",
		"tick.sh":        "#!/bin/sh\necho \"$WINCHESTER_WINDOW_START $WINCHESTER_WINDOW_END\" >> ticks.txt\nsleep 0.3\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	type proc struct {
		cmd  *exec.Cmd
		out  *bytes.Buffer
		done chan error
	}
	start := func(name string) *proc {
		p := &proc{out: &bytes.Buffer{}, done: make(chan error, 1)}
		p.cmd = exec.Command(worker, "-c", filepath.Join(dir, "winchester.yaml"), "-n", name, "--log-level", "warning")
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		return p
	}
	procs := []*proc{start("w0"), start("w1"), start("w2")}
	time.Sleep(3 * time.Second)
	if err := procs[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-procs[0].done
	procs = append(procs[1:], start("w3"))
	time.Sleep(4 * time.Second)
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("pipeline_worker exited with %v after SIGTERM:\n%s", err, p.out)
			}
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Fatalf("pipeline_worker did not stop after SIGTERM:\n%s", p.out)
		}
	}

	s, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(dir, "w.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runs, err := s.JobRuns(t.Context(), "tick", 1000)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(runs, func(a, b db.JobRun) int { return a.WindowStart.Compare(b.WindowStart) })
	workers := map[string]bool{}
	for i, r := range runs {
		if r.Status != db.JobCompleted {
			t.Errorf("run %+v, want only completed runs", r)
		}
		if i > 0 && !r.WindowStart.Equal(runs[i-1].WindowEnd) {
			t.Errorf("window %d starts at %v, the one before ended at %v", i, r.WindowStart, runs[i-1].WindowEnd)
		}
		workers[r.Worker] = true
	}
	if len(runs) < 4 {
		t.Fatalf("%d windows completed in 7 seconds of a job every second, want at least 4", len(runs))
	}
	ticks, err := os.ReadFile(filepath.Join(dir, "ticks.txt"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(ticks)), "\n") {
		seen[l]++
	}
	repeats := 0
	for _, r := range runs {
		l := r.WindowStart.Format(time.RFC3339Nano) + " " + r.WindowEnd.Format(time.RFC3339Nano)
		if seen[l] == 0 {
			t.Errorf("completed window %s never ran the command", l)
		}
		repeats += seen[l] - 1
	}
	// At least once: only windows in flight when a worker was killed or
	// stopped may have run twice.
	if repeats > 4 {
		t.Errorf("%d repeated runs of the command, want at most one per stopped or killed worker", repeats)
	}
	t.Logf("%d windows completed by %d workers, %d repeated command runs", len(runs), len(workers), repeats)
}
