package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "winchester.yaml")
	if err := os.WriteFile(cfgPath, []byte("pipeline_config: pipelines.yaml\nlog_level: info\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noPipelines := filepath.Join(dir, "bare.yaml")
	if err := os.WriteFile(noPipelines, []byte("log_level: info\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type got struct {
		Name, Daemon, LogLevel, DatabaseURL string
		Once                                bool
		MetricsListen                       string
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    got
		wantErr string
	}{
		{
			name: "defaults",
			args: []string{"-c", cfgPath},
			want: got{Name: "pipeline_worker", LogLevel: "info", DatabaseURL: "sqlite://" + filepath.Join(dir, "winchester.db")},
		},
		{
			name: "bare daemon flag and name",
			args: []string{"-c", cfgPath, "-d", "-n", "w1", "--once"},
			want: got{Name: "w1", Daemon: "true", Once: true, LogLevel: "info", DatabaseURL: "sqlite://" + filepath.Join(dir, "winchester.db")},
		},
		{
			name: "daemon with a value, long flags",
			args: []string{"--config", cfgPath, "--daemon=yes", "--log-level", "debug", "--log-format", "json"},
			want: got{Name: "pipeline_worker", Daemon: "yes", LogLevel: "debug", DatabaseURL: "sqlite://" + filepath.Join(dir, "winchester.db")},
		},
		{
			name: "environment database URL",
			args: []string{"-c", cfgPath},
			env:  map[string]string{cli.EnvDatabaseURL: "postgresql://w@db/winchester"},
			want: got{Name: "pipeline_worker", LogLevel: "info", DatabaseURL: "postgres://w@db/winchester"},
		},
		{name: "positional arguments", args: []string{"-c", cfgPath, "extra"}, wantErr: `unknown command "extra"`},
		{name: "bad level", args: []string{"-c", cfgPath, "--log-level", "loud"}, wantErr: "flag --log-level: log_level: unknown log level"},
		{name: "missing config", args: []string{"-c", filepath.Join(dir, "none.yaml")}, wantErr: "none.yaml: no such file"},
		{name: "no pipeline_config", args: []string{"-c", noPipelines}, wantErr: "pipeline_config: required by the pipeline worker"},
		{
			name: "metrics address",
			args: []string{"-c", cfgPath, "--metrics-listen", ":9103"},
			want: got{Name: "pipeline_worker", LogLevel: "info", DatabaseURL: "sqlite://" + filepath.Join(dir, "winchester.db"), MetricsListen: ":9103"},
		},
		{name: "metrics with --once", args: []string{"-c", cfgPath, "--once", "--metrics-listen", ":9103"}, wantErr: "--metrics-listen serves a running worker"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var seen *got
			fake := func(ctx context.Context, cfg *winchester.Config, opts options, logger *slog.Logger) error {
				seen = &got{Name: opts.Name, Daemon: opts.Daemon, Once: opts.Once, LogLevel: cfg.LogLevel, DatabaseURL: cfg.DatabaseURL,
					MetricsListen: opts.MetricsListen}
				return nil
			}
			getenv := func(k string) string { return tc.env[k] }
			var stderr bytes.Buffer
			cmd := newRootCmd(getenv, &stderr, fake)
			cmd.SetArgs(tc.args)
			cmd.SetOut(&stderr)
			cmd.SetErr(&stderr)
			err := cmd.ExecuteContext(t.Context())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("run %q: error %v, want one containing %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("run %q: %v", tc.args, err)
			}
			if seen == nil {
				t.Fatalf("run %q: worker not run", tc.args)
			}
			if diff := cmp.Diff(tc.want, *seen); diff != "" {
				t.Errorf("run %q (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}

func TestDaemonArgs(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{in: []string{"-d"}, want: []string{"-d"}},
		{in: []string{"-d", "1", "-c", "w.yaml"}, want: []string{"--daemon=1", "-c", "w.yaml"}},
		{in: []string{"--daemon", "yes"}, want: []string{"--daemon=yes"}},
		{in: []string{"-d", "-c", "w.yaml"}, want: []string{"-d", "-c", "w.yaml"}},
		{in: []string{"-c", "w.yaml", "-d"}, want: []string{"-c", "w.yaml", "-d"}},
		{in: []string{"--", "-d", "x"}, want: []string{"--", "-d", "x"}},
		{in: []string{}, want: []string{}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, daemonArgs(tc.in)); diff != "" {
			t.Errorf("daemonArgs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// TestOnce runs one real pass over the shipped samples on the embedded
// SQLite default.
func TestOnce(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"winchester.yaml", "triggers.yaml", "pipelines.yaml", "event_definitions.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "etc", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	cmd := newRootCmd(func(string) string { return "" }, &logs, run)
	cmd.SetArgs([]string{"-c", filepath.Join(dir, "winchester.yaml"), "--once", "-n", "w1"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("pipeline_worker --once: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "pass done") || !strings.Contains(logs.String(), "worker=w1") {
		t.Errorf("logs lack the pass summary:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "winchester.db")); err != nil {
		t.Errorf("embedded database not created beside the config: %v", err)
	}
}

func TestBadDefinitions(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"winchester.yaml": "pipeline_config: pipelines.yaml\n",
		"pipelines.yaml":  "p1:\n  - nosuchhandler\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := newRootCmd(func(string) string { return "" }, &bytes.Buffer{}, run)
	cmd.SetArgs([]string{"-c", filepath.Join(dir, "winchester.yaml"), "--once"})
	err := cmd.ExecuteContext(t.Context())
	if err == nil || !strings.Contains(err.Error(), "pipelines.yaml:2") || !strings.Contains(err.Error(), "nosuchhandler") {
		t.Errorf("error = %v, want one naming pipelines.yaml:2 and the handler", err)
	}
}

// A --once pass in which a stream fails exits non-zero, so that a cron job
// or a deployment check notices. Here the stream's trigger is no longer
// defined when the worker runs.
func TestOnceFailsWhenAStreamFails(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"winchester.yaml": "pipeline_config: pipelines.yaml\ntrigger_definitions: triggers.yaml\npipeline_handlers: {logger: logger}\n",
		"pipelines.yaml":  "p: [logger]\n",
		"triggers.yaml":   "- name: renamed\n  distinguished_by: [instance_id]\n  expiration: $last + 1h\n  fire_pipeline: p\n  expire_pipeline: p\n  match_criteria: [{event_type: x}]\n  fire_criteria: [{event_type: x}]\n",
		"old.yaml":        "- name: old\n  distinguished_by: [instance_id]\n  expiration: $last + 1h\n  fire_pipeline: p\n  expire_pipeline: p\n  match_criteria: [{event_type: x}]\n  fire_criteria: [{event_type: x}]\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A stream of the old trigger, ready to fire.
	store, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(dir, "winchester.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defs, _, err := trigger.Load(filepath.Join(dir, "old.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ev := stream.Event{MessageID: "m1", Type: "x", Timestamp: time.Now().UTC().Add(-time.Hour),
		Traits: map[string]stream.Value{"instance_id": stream.String("a")}}
	if res, err := mgr.AddEvent(t.Context(), ev); err != nil || res.Outcome != trigger.Stored {
		t.Fatalf("AddEvent = %+v, %v", res, err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	cmd := newRootCmd(func(string) string { return "" }, &logs, run)
	cmd.SetArgs([]string{"-c", filepath.Join(dir, "winchester.yaml"), "--once"})
	err = cmd.ExecuteContext(t.Context())
	if err == nil || !strings.Contains(err.Error(), "1 stream error(s)") {
		t.Fatalf("pipeline_worker --once = %v, want an error counting the failed stream\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "errors=1") {
		t.Errorf("logs lack the pass summary with errors=1:\n%s", logs.String())
	}
}

// With log_format json every line is an object without repeated keys: a
// stream's pipeline logged stream_id twice (the worker's logger carried it
// and the logger handler added it again).
func TestJSONLogsHaveUniqueKeys(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"winchester.yaml": "pipeline_config: pipelines.yaml\ntrigger_definitions: triggers.yaml\npipeline_handlers: {logger: logger}\nlog_format: json\n",
		"pipelines.yaml":  "p: [logger]\n",
		"triggers.yaml":   "- name: t\n  distinguished_by: [instance_id]\n  expiration: $last + 1h\n  fire_pipeline: p\n  expire_pipeline: p\n  match_criteria: [{event_type: x}]\n  fire_criteria: [{event_type: x}]\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(dir, "winchester.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defs, _, err := trigger.Load(filepath.Join(dir, "triggers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ev := stream.Event{MessageID: "m1", Type: "x", Timestamp: time.Now().UTC().Add(-time.Hour),
		Traits: map[string]stream.Value{"instance_id": stream.String("a")}}
	if res, err := mgr.AddEvent(t.Context(), ev); err != nil || res.Outcome != trigger.Stored {
		t.Fatalf("AddEvent = %+v, %v", res, err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	cmd := newRootCmd(func(string) string { return "" }, &logs, run)
	cmd.SetArgs([]string{"-c", filepath.Join(dir, "winchester.yaml"), "--once", "--log-level", "debug"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("pipeline_worker --once: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"received events"`) {
		t.Fatalf("the logger handler did not log:\n%s", logs.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if dup := repeatedKey(t, line); dup != "" {
			t.Errorf("key %q twice in %s", dup, line)
		}
	}
}

// repeatedKey returns the first top-level key that appears twice in the
// JSON object line, or "".
func repeatedKey(t *testing.T, line string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", line)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		key := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	return ""
}
