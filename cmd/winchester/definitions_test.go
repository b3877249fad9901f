package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefinitionsCommands(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"winchester.yaml": "log_level: error\ndatabase: {url: 'sqlite:///w.db'}\ntrigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n",
		"triggers.yaml":   goodTriggers,
		"pipelines.yaml":  goodPipelines,
	})
	cfg := filepath.Join(dir, "winchester.yaml")
	run := func(args ...string) string {
		t.Helper()
		out, _, err := runRoot(t, append([]string{"definitions"}, append(args, "-c", cfg)...)...)
		if err != nil {
			t.Fatalf("definitions %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	if out := run("list"); !strings.Contains(out, "no stored definitions") {
		t.Errorf("list of an empty database:\n%s", out)
	}
	if out := run("apply", "--dry-run"); !strings.Contains(out, "dry run") || !strings.Contains(out, "trigger t1: added") {
		t.Errorf("apply --dry-run:\n%s", out)
	}
	if out := run("list"); !strings.Contains(out, "no stored definitions") {
		t.Errorf("apply --dry-run stored something:\n%s", out)
	}
	if out := run("apply"); !strings.Contains(out, "stored definitions version 1 (was 0)") {
		t.Errorf("apply:\n%s", out)
	}
	if out := run("apply"); !strings.Contains(out, "no new version: version 1") {
		t.Errorf("apply of the same files:\n%s", out)
	}
	changed := strings.Replace(goodTriggers, `"$last + 1h"`, `"$last + 2h"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "triggers.yaml"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run("apply", "-o", "json")
	var res struct {
		Version int64 `json:"version"`
		Created bool  `json:"created"`
		Changes []struct {
			Kind, Name, Change string
			Fields             []string
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("apply -o json: %v\n%s", err, out)
	}
	if res.Version != 2 || !res.Created || len(res.Changes) != 1 || res.Changes[0].Name != "t1" ||
		strings.Join(res.Changes[0].Fields, ",") != "expiration" {
		t.Errorf("apply of a changed expiration = %+v", res)
	}

	// Invalid files are refused with file:line and change nothing; list,
	// show and rollback do not read them.
	if err := os.WriteFile(filepath.Join(dir, "triggers.yaml"), []byte(changed+"- name: broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runRoot(t, "definitions", "apply", "-c", cfg)
	if err == nil || !strings.Contains(err.Error(), `triggers.yaml:10: trigger "broken": expiration: required field`) {
		t.Errorf("apply of invalid files = %v, want file:line problems", err)
	}
	if out := run("show"); !strings.Contains(out, "# version 2,") || !strings.Contains(out, `"$last + 2h"`) {
		t.Errorf("show (newest):\n%s", out)
	}
	if out := run("rollback", "1"); !strings.Contains(out, "stored definitions version 3 (was 2)") ||
		!strings.Contains(out, "trigger t1: changed (expiration; on_change: keep)") {
		t.Errorf("rollback 1:\n%s", out)
	}
	out = run("list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "3 ") || !strings.Contains(lines[1], "rollback to 1") ||
		!strings.HasPrefix(lines[3], "1 ") || !strings.Contains(lines[3], "cli") {
		t.Errorf("list:\n%s", out)
	}
	if _, _, err := runRoot(t, "definitions", "show", "9", "-c", cfg); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("show 9 = %v, want not found", err)
	}
	if _, _, err := runRoot(t, "definitions", "rollback", "x", "-c", cfg); err == nil || !strings.Contains(err.Error(), "want a positive number") {
		t.Errorf("rollback x = %v", err)
	}
}
