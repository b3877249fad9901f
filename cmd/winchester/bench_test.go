package main

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runBenchArgs runs the root command with args and returns its standard
// output and error streams.
func runBenchArgs(t *testing.T, args ...string) (string, string) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("winchester %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String()
}

func TestBenchGenerate(t *testing.T) {
	t.Parallel()
	defs := filepath.Join("..", "..", "etc", "event_definitions.yaml")
	tests := []struct {
		name     string
		args     []string
		wantKind string
	}{
		{name: "notifications", args: []string{"bench", "generate", "--instances", "4", "--days", "2", "--seed", "9"}, wantKind: "notifications"},
		{name: "events", args: []string{"bench", "generate", "--instances", "4", "--days", "2", "--seed", "9", "--events", "--definitions", defs}, wantKind: "events"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out1, err1 := runBenchArgs(t, tc.args...)
			out2, _ := runBenchArgs(t, tc.args...)
			if out1 != out2 {
				t.Errorf("two runs of %v differ", tc.args)
			}
			lines := strings.Count(out1, "\n")
			if want := tc.wantKind + ": " + strconv.Itoa(lines) + "\n"; err1 != want {
				t.Errorf("stderr = %q, want %q", err1, want)
			}
			if lines == 0 {
				t.Errorf("%v wrote nothing", tc.args)
			}
			file := filepath.Join(t.TempDir(), "out.jsonl")
			runBenchArgs(t, append(tc.args, "-o", file)...)
		})
	}
}

func TestBenchIngest(t *testing.T) {
	t.Parallel()
	etc := filepath.Join("..", "..", "etc")
	for _, mode := range []string{"events", "notifications"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			args := []string{"bench", "ingest", "--instances", "20", "--days", "2", "--batch", "50",
				"--definitions", filepath.Join(etc, "event_definitions.yaml"), "--triggers", filepath.Join(etc, "triggers.yaml"),
				"--database-url", "sqlite:///" + filepath.Join(t.TempDir(), "w.db")}
			if mode == "notifications" {
				args = append(args, "--notifications")
			}
			out, _ := runBenchArgs(t, args...)
			if !strings.Contains(out, "duplicates 0, rejected 0") || !strings.Contains(out, mode+"/s") {
				t.Errorf("bench ingest output:\n%s\nwant no duplicates or rejections and a rate in %s/s", out, mode)
			}
		})
	}
}
