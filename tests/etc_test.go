// Package tests holds the end-to-end tests: they build the commands and
// drive them, and check that the shipped samples in etc/ stay valid.
package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/stream"

	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/pipeline/handlers"
	"github.com/winchester-go/winchester/trigger"
)

const etcDir = "../etc"

// built holds the commands the tests of this package built: each is
// built once, into a directory TestMain removes.
var built struct {
	mu    sync.Mutex
	dir   string
	paths map[string]string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "winchester-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	built.dir, built.paths = dir, map[string]string{}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildCommand builds ./cmd/<name> once for the test binary and returns
// the binary's path. Tests must not change the file.
func buildCommand(t *testing.T, name string) string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if bin, ok := built.paths[name]; ok {
		return bin
	}
	bin := filepath.Join(built.dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	built.paths[name] = bin
	return bin
}

// TestEtcSamples loads every file in etc/ with the loader that will read
// it in production. A new file in etc/ needs a loader here.
func TestEtcSamples(t *testing.T) {
	loaders := map[string]func(t *testing.T, path string){
		"winchester.yaml": checkWinchesterYAML,
		"triggers.yaml": func(t *testing.T, path string) {
			defs, warns, err := trigger.Load(path)
			if err != nil {
				t.Fatalf("trigger.Load(%s): %v", path, err)
			}
			for _, w := range warns {
				t.Errorf("warning: %s", w)
			}
			if len(defs) != 1 || defs[0].Name != "test_trigger" {
				t.Fatalf("triggers = %d, want the one test_trigger", len(defs))
			}
			if len(defs[0].MatchCriteria) != 2 || defs[0].MatchCriteria[1].MapDistinguishedBy["timestamp"] != "audit_period_beginning" {
				t.Errorf("map_distinguished_by of the second match criteria not loaded")
			}
		},
		"pipelines.yaml": func(t *testing.T, path string) {
			reg, err := newBuiltinRegistry().Select(map[string]string{"logger": "logger", "usage": "usage"})
			if err != nil {
				t.Fatalf("select handlers: %v", err)
			}
			defs, err := pipeline.Load(path, reg)
			if err != nil {
				t.Fatalf("pipeline.Load(%s): %v", path, err)
			}
			if got := strings.Join(defs.Names(), ","); got != "test_expire_pipeline,test_pipeline" {
				t.Errorf("pipelines = %s", got)
			}
		},
		"notifications.json": checkSampleNotifications,
		"winchester.service": checkSystemdUnit,
		"event_schema.yaml": func(t *testing.T, path string) {
			schema, err := stream.LoadSchema(path)
			if err != nil {
				t.Fatalf("stream.LoadSchema(%s): %v", path, err)
			}
			// The sample notifications, distilled by the sample event
			// definitions, match the sample schema.
			data, err := os.ReadFile(filepath.Join(etcDir, "notifications.json"))
			if err != nil {
				t.Fatal(err)
			}
			var bodies []json.RawMessage
			if err := json.Unmarshal(data, &bodies); err != nil {
				t.Fatal(err)
			}
			edefs, err := distiller.LoadDefinitions(filepath.Join(etcDir, "event_definitions.yaml"), nil)
			if err != nil {
				t.Fatal(err)
			}
			d := distiller.New(edefs, distiller.Config{})
			checked := 0
			for i, b := range bodies {
				ev, _, err := d.Distill(b)
				if err != nil {
					continue // checkSampleNotifications covers these
				}
				checked++
				if err := schema.Check(ev); err != nil {
					t.Errorf("sample notification %d (%s): %v", i, ev.Type, err)
				}
			}
			if checked == 0 {
				t.Error("no sample notification was checked against the schema")
			}
		},
		"event_definitions.yaml": func(t *testing.T, path string) {
			defs, err := distiller.LoadDefinitions(path, nil)
			if err != nil {
				t.Fatalf("distiller.LoadDefinitions(%s): %v", path, err)
			}
			if len(defs) != 2 {
				t.Errorf("event definitions = %d, want 2", len(defs))
			}
		},
	}
	entries, err := os.ReadDir(etcDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".db") || strings.Contains(name, ".db-") ||
			strings.HasSuffix(name, ".migrate.lock") { // runtime files of the SQLite default
			continue
		}
		load, ok := loaders[name]
		if !ok {
			t.Errorf("etc/%s: no loader checks this file; add one to TestEtcSamples", name)
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) { load(t, filepath.Join(etcDir, name)) })
	}
	if seen != len(loaders) {
		t.Errorf("checked %d files in etc/, want %d", seen, len(loaders))
	}
}

// checkWinchesterYAML runs `winchester check` on the sample: it loads the
// configuration and every file it names with the production loaders.
func checkWinchesterYAML(t *testing.T, path string) {
	// Copy etc/ so that the default database beside the config file is
	// created, if at all, in a temporary directory.
	dir := t.TempDir()
	for _, f := range []string{"winchester.yaml", "triggers.yaml", "pipelines.yaml", "event_definitions.yaml"} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(path), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := buildCommand(t, "winchester")
	cmd := exec.Command(bin, "check", "-c", filepath.Join(dir, "winchester.yaml"))
	cmd.Env = append(os.Environ(), "WINCHESTER_DATABASE_URL=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("winchester check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"database           sqlite://" + filepath.Join(dir, "winchester.db"),
		"1 trigger in ", "2 pipelines in ", "2 event definitions in ", "handlers           logger, usage",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("winchester check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "warning") {
		t.Errorf("winchester check warns about the sample:\n%s", out)
	}
}

// newBuiltinRegistry returns a registry holding the built-in handlers.
func newBuiltinRegistry() *pipeline.Registry {
	r := pipeline.NewRegistry()
	handlers.RegisterBuiltins(r)
	return r
}

// checkSampleNotifications distills the quick start's notifications with
// the sample event definitions and plays them through the sample trigger:
// the stream of the exists notification is ready to fire.
func checkSampleNotifications(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []json.RawMessage
	if err := json.Unmarshal(data, &bodies); err != nil {
		t.Fatalf("%s: not a JSON array: %v", path, err)
	}
	edefs, err := distiller.LoadDefinitions(filepath.Join(etcDir, "event_definitions.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := distiller.New(edefs, distiller.Config{})
	defs, _, err := trigger.Load(filepath.Join(etcDir, "triggers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "s.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mgr, err := trigger.NewManager(store, defs, trigger.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var events []stream.Event
	for i, b := range bodies {
		ev, _, err := d.Distill(b)
		if err != nil {
			t.Fatalf("%s: notification %d: %v", path, i, err)
		}
		events = append(events, ev)
	}
	res, err := mgr.AddEvents(t.Context(), events)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Outcome != trigger.Stored || r.Matched != 1 {
			t.Errorf("%s: notification %d: %v, matched %d triggers; want stored and matched by test_trigger", path, i, r.Outcome, r.Matched)
		}
	}
	ready, err := store.ReadyStreams(t.Context(), db.ReadyParams{Action: db.Fire, Now: time.Now().Add(time.Second), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ready) != 1 {
		t.Errorf("%s: %d streams ready to fire, want 1", path, len(ready))
	}
}

// checkSystemdUnit checks that the unit runs winchester serve with a
// configuration and is stopped with SIGTERM within a timeout longer than
// the default shutdown_grace.
func checkSystemdUnit(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"[Unit]", "[Service]", "[Install]", "ExecStart=/usr/local/bin/winchester serve -c /etc/winchester/winchester.yaml", "KillSignal=SIGTERM", "TimeoutStopSec="} {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
	// systemd-analyze, when present, checks the syntax; the binary is
	// not installed here, which is the one complaint expected.
	if sd, err := exec.LookPath("systemd-analyze"); err == nil {
		out, _ := exec.Command(sd, "verify", "--man=no", path).CombinedOutput()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.Contains(line, "winchester.service") && !strings.Contains(line, "is not executable") {
				t.Errorf("systemd-analyze verify %s: %s", path, line)
			}
		}
	}
}
