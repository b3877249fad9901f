package main

import (
	"bytes"
	"encoding/json"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	goodTriggers = `
- name: t1
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: p1
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
`
	goodPipelines = "p1:\n  - logger\n"
	goodEvents    = "- event_type: compute.instance.*\n  traits:\n    instance_id:\n      fields: payload.instance_id\n"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		env      map[string]string
		want     []string // lines or parts of the output, in order
		wantFail bool
	}{
		{
			name: "the shipped samples",
			files: map[string]string{
				"winchester.yaml":        mustRead(t, "../../etc/winchester.yaml"),
				"triggers.yaml":          mustRead(t, "../../etc/triggers.yaml"),
				"pipelines.yaml":         mustRead(t, "../../etc/pipelines.yaml"),
				"event_definitions.yaml": mustRead(t, "../../etc/event_definitions.yaml"),
			},
			want: []string{
				"database           sqlite:///",
				"triggers           1 trigger in ",
				"handlers           logger, usage",
				"pipelines          2 pipelines in ",
				"event definitions  2 event definitions in ",
				"ok",
			},
		},
		{
			name: "files found through config_path, password masked",
			files: map[string]string{
				"etc/winchester.yaml": "config_path: ../defs\ndatabase:\n  url: postgresql://w:secret@db/w\ntrigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\ndistiller_config: events.yaml\n",
				"defs/triggers.yaml":  goodTriggers,
				"defs/pipelines.yaml": goodPipelines,
				"defs/events.yaml":    goodEvents,
			},
			want: []string{"database           postgres://w:xxxxx@db/w", "1 trigger in ", "(t1)", "1 pipeline in ", "(p1)", "1 event definition in ", "ok"},
		},
		{
			name: "every problem is listed",
			files: map[string]string{
				"etc/winchester.yaml": "database:\n  url: mysql://w:secret@db/w\npipeline_worker_batch_size: 0\ntrigger_definitions: missing.yaml\npipeline_config: pipelines.yaml\ndistiller_config: events.yaml\npipeline_handlers:\n  logger: nosuch\n",
				"etc/pipelines.yaml":  goodPipelines,
				"etc/events.yaml":     "- event_type: x\n  traits:\n    a:\n      type: nosuchtype\n      fields: payload.a\n",
			},
			want: []string{
				"problems:",
				"winchester.yaml:2: database.url:", "MySQL is not supported",
				"winchester.yaml:3: pipeline_worker_batch_size: must be positive",
				"winchester.yaml:4: trigger_definitions: cannot find missing.yaml (searched ",
				"winchester.yaml:8: pipeline_handlers: logger:", `"nosuch"`,
				"events.yaml:4", "nosuchtype",
			},
			wantFail: true,
		},
		{
			name: "scheduled jobs",
			files: map[string]string{
				"winchester.yaml": "pipeline_config: pipelines.yaml\njobs:\n  cleanup:\n    schedule: '@daily'\n    handler: exec\n    command: [./cleanup.sh]\n" +
					"  report:\n    schedule: '@hourly'\n    handler: report\n  old:\n    schedule: '@hourly'\n    handler: gone\n    enabled: false\n",
				"pipelines.yaml": goodPipelines,
			},
			want:     []string{"1 problem:", `winchester.yaml:9: jobs.report.handler: no Go job registered as "report"`},
			wantFail: true,
		},
		{
			name: "scheduled jobs listed",
			files: map[string]string{
				"winchester.yaml": "pipeline_config: pipelines.yaml\njobs:\n  cleanup:\n    schedule: '@daily'\n    handler: exec\n    command: [./cleanup.sh]\n" +
					"  old:\n    schedule: '@hourly'\n    handler: gone\n    enabled: false\n",
				"pipelines.yaml": goodPipelines,
			},
			want: []string{"jobs ", "2 jobs (cleanup, old (disabled))", "ok"},
		},
		{
			name: "event schema",
			files: map[string]string{
				"winchester.yaml": "pipeline_config: pipelines.yaml\nevent_schema: schema.yaml\n",
				"pipelines.yaml":  goodPipelines,
				"schema.yaml":     "strict: true\nevents:\n  compute.*:\n    traits:\n      instance_id: {type: string}\n",
			},
			want: []string{"event schema       1 declared event in ", "schema.yaml, strict", "ok"},
		},
		{
			name: "event schema problems, all at once",
			files: map[string]string{
				"winchester.yaml": "pipeline_config: pipelines.yaml\nevent_schema: schema.yaml\n",
				"pipelines.yaml":  goodPipelines,
				"schema.yaml":     "strict: true\nevents:\n  compute.*:\n    traits:\n      a: {type: strng}\n      b: {type: int, min: 2, max: 1}\n      c: {tpye: int}\n",
			},
			want: []string{
				"3 problems:",
				`schema.yaml:5: events.compute.*.traits.a.type: unknown type "strng" (did you mean string?)`,
				"schema.yaml:6: events.compute.*.traits.b.min: min 2 is above max 1",
				"schema.yaml:7: events.compute.*.traits.c.tpye: unknown key (did you mean type?)",
			},
			wantFail: true,
		},
		{
			name: "event schema that is not YAML",
			files: map[string]string{
				"winchester.yaml": "pipeline_config: pipelines.yaml\nevent_schema: schema.yaml\n",
				"pipelines.yaml":  goodPipelines,
				"schema.yaml":     "events: [\n",
			},
			want:     []string{"1 problem:", "schema.yaml:1: invalid YAML"},
			wantFail: true,
		},
		{
			name: "event schema missing",
			files: map[string]string{
				"winchester.yaml": "pipeline_config: pipelines.yaml\nevent_schema: nosuch.yaml\n",
				"pipelines.yaml":  goodPipelines,
			},
			want:     []string{"1 problem:", "winchester.yaml:2: event_schema: cannot find nosuch.yaml"},
			wantFail: true,
		},
		{
			name: "subscribers",
			files: map[string]string{
				"winchester.yaml": "pipeline_config: pipelines.yaml\nsubscribers:\n  hook:\n    handler: webhook\n    params: {url: 'https://example.com/in'}\n" +
					"  audit:\n    handler: audit\n  old:\n    handler: gone\n    enabled: false\n  bad:\n    handler: webhook\n    filter: {event_type: x, number: 2}\n",
				"pipelines.yaml": goodPipelines,
			},
			want: []string{"2 problems:", "winchester.yaml:13: subscribers.bad.filter.number: only event_type, timestamp and traits test an event here",
				`winchester.yaml:7: subscribers.audit.handler: "audit" is neither a Go subscriber`},
			wantFail: true,
		},
		{
			name: "subscribers listed",
			files: map[string]string{
				"winchester.yaml": "pipeline_config: pipelines.yaml\nsubscribers:\n  hook:\n    handler: webhook\n    params: {url: 'https://example.com/in'}\n" +
					"  old:\n    handler: gone\n    enabled: false\n",
				"pipelines.yaml": goodPipelines,
			},
			want: []string{"subscribers ", "2 subscribers (hook, old (disabled))", "ok"},
		},
		{
			name: "trigger naming a missing pipeline",
			files: map[string]string{
				"winchester.yaml": "trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n",
				"triggers.yaml":   goodTriggers,
				"pipelines.yaml":  "other:\n  - logger\n",
			},
			want:     []string{"1 problem:", `triggers.yaml:2: trigger "t1": fire_pipeline: unknown pipeline "p1"`},
			wantFail: true,
		},
		{
			name: "bad trigger file",
			files: map[string]string{
				"winchester.yaml": "trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n",
				"triggers.yaml":   "- name: t1\n  expiration: \"$last + 1h\"\n  fire_pipeline: p1\n  match_criteria:\n  - event_type: a\n    bogus: 1\n",
				"pipelines.yaml":  goodPipelines,
			},
			want:     []string{"triggers.yaml:6", "bogus"},
			wantFail: true,
		},
		{
			name: "time expressions that would fail at run time",
			files: map[string]string{
				"winchester.yaml": "trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n",
				"triggers.yaml": "- name: t1\n  distinguished_by:\n  - timestamp: fortnight\n  expiration: \"dya($lsat) + 1d\"\n" +
					"  fire_pipeline: p1\n  match_criteria:\n  - event_type: a\n  fire_criteria: []\n",
				"pipelines.yaml": goodPipelines,
			},
			want: []string{"3 problems:",
				`triggers.yaml:3: trigger "t1": distinguished_by[0].timestamp:`, "unknown function fortnight",
				`triggers.yaml:4: trigger "t1": expiration:`, "unknown function dya", "did you mean day?",
				`triggers.yaml:4: trigger "t1": expiration:`, "variable $lsat is not available here", "did you mean $last?"},
			wantFail: true,
		},
		{
			name:     "unknown key in the config file",
			files:    map[string]string{"winchester.yaml": "pipeline_config: p.yaml\nfire_delay: 3\n"},
			want:     []string{"1 problem:", `winchester.yaml:2: fire_delay: unknown key (known keys: config_path,`},
			wantFail: true,
		},
		{
			name:  "warnings do not fail",
			files: map[string]string{"winchester.yaml": "logging_config: logging.conf\npipeline_config: p.yaml\n", "p.yaml": goodPipelines},
			want:  []string{"warning: ", "winchester.yaml:1: logging_config is ignored", "ok"},
		},
		{
			name:     "environment override is checked",
			files:    map[string]string{"winchester.yaml": "pipeline_config: p.yaml\n", "p.yaml": goodPipelines},
			env:      map[string]string{cli.EnvDatabaseURL: "mysql://x@y/z"},
			want:     []string{"environment variable WINCHESTER_DATABASE_URL: database.url:", "MySQL is not supported"},
			wantFail: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			cfg := filepath.Join(dir, "winchester.yaml")
			if _, err := os.Stat(cfg); err != nil {
				cfg = filepath.Join(dir, "etc", "winchester.yaml")
			}
			var out bytes.Buffer
			err := runCheck(t.Context(), &out, &cli.Flags{ConfigFile: cfg}, func(k string) string { return tc.env[k] }, checkOptions{output: "text"})
			if tc.wantFail != (err != nil) {
				t.Fatalf("check error = %v, want failure %v; output:\n%s", err, tc.wantFail, out.String())
			}
			if tc.wantFail && exitCode(err) != 1 {
				t.Errorf("exit code %d, want 1", exitCode(err))
			}
			rest := out.String()
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order); output:\n%s", w, out.String())
				}
				rest = rest[i+len(w):]
			}
			if strings.Contains(out.String(), "secret") {
				t.Errorf("output shows a password:\n%s", out.String())
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVersion(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatalf("version: %v", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "winchester ") || !strings.Contains(got, "go1.") {
		t.Errorf("version output = %q", got)
	}
}

// check --connect opens the database as the worker would and reports what
// is wrong with it; -o json prints the same report as one object.
func TestCheckConnect(t *testing.T) {
	dir := writeFiles(t, map[string]string{"winchester.yaml": "log_level: error\n"})
	cfg := filepath.Join(dir, "winchester.yaml")
	type result struct {
		ok   bool
		want string
	}
	run := func(t *testing.T, url string) (checkJSON, error) {
		t.Helper()
		var out bytes.Buffer
		err := runCheck(t.Context(), &out, &cli.Flags{ConfigFile: cfg, DatabaseURL: url}, nil, checkOptions{connect: true, output: "json"})
		var got checkJSON
		if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil {
			t.Fatalf("check -o json printed %q: %v", out.String(), jerr)
		}
		if got.OK != (err == nil) {
			t.Errorf("ok = %v with error %v", got.OK, err)
		}
		return got, err
	}
	find := func(got checkJSON) string {
		return got.Summary["connection"] + strings.Join(got.Problems, "\n")
	}
	sqliteCases := []struct {
		name string
		url  string
		res  result
	}{
		{name: "new file", url: "sqlite:///" + filepath.Join(dir, "w.db"), res: result{ok: true, want: "does not exist yet: the worker creates it"}},
		{name: "missing directory", url: "sqlite:///" + filepath.Join(dir, "nope", "w.db"), res: result{want: "directory " + filepath.Join(dir, "nope") + " does not exist"}},
	}
	for _, tc := range sqliteCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(t, tc.url)
			if (err == nil) != tc.res.ok || !strings.Contains(find(got), tc.res.want) {
				t.Errorf("check --connect %s: %v, %+v; want ok=%v and %q", tc.url, err, got, tc.res.ok, tc.res.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "w.db")); err == nil {
		t.Errorf("check --connect created the SQLite file")
	}

	t.Run("postgres", func(t *testing.T) {
		url := dbtest.PostgresURL(t)
		got, err := run(t, url)
		if err == nil || !strings.Contains(find(got), "winchester_db -c <config> upgrade head") {
			t.Errorf("check --connect on an empty schema: %v, %+v; want the upgrade hint", err, got)
		}
		if err := (postgres.Driver{}).Migrate(t.Context(), url, db.Head); err != nil {
			t.Fatal(err)
		}
		if got, err := run(t, url); err != nil || got.Summary["connection"] != "ok, schema up to date" {
			t.Errorf("check --connect on a migrated schema: %v, %+v", err, got)
		}
		u, err := neturl.Parse(url)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/winchester_no_such_database"
		got, err = run(t, u.String())
		if err == nil || !strings.Contains(find(got), `database "winchester_no_such_database" does not exist`) || strings.Contains(find(got), "retry later") {
			t.Errorf("check --connect to a missing database: %v, %+v", err, got)
		}
	})
}

// A YAML syntax error reads the same in every file check loads:
// "FILE:LINE: invalid YAML: MESSAGE", and every broken file is reported.
func TestCheckYAMLSyntaxErrorsOneFormat(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"winchester.yaml":        "trigger_definitions: t.yaml\npipeline_config: p.yaml\ndistiller_config: e.yaml\npipeline_handlers: {logger: logger}\n",
		"t.yaml":                 "- name: x\n  bad: [\n",
		"p.yaml":                 "p: [logger\n",
		"e.yaml":                 "- event_type: a\n  traits: {x\n",
		"broken/winchester.yaml": "log_level: info\nlog_format: [\n",
	})
	for _, tc := range []struct {
		config string
		files  []string
	}{
		{config: "winchester.yaml", files: []string{"t.yaml:2", "p.yaml:1", "e.yaml:1"}},
		{config: "broken/winchester.yaml", files: []string{"winchester.yaml:2"}},
	} {
		var out bytes.Buffer
		err := runCheck(t.Context(), &out, &cli.Flags{ConfigFile: filepath.Join(dir, tc.config)}, nil, checkOptions{output: "json"})
		var got checkJSON
		if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil || err == nil {
			t.Fatalf("check %s: %v, %q", tc.config, err, out.String())
		}
		if len(got.Problems) != len(tc.files) {
			t.Errorf("check %s: problems %q, want one per broken file %v", tc.config, got.Problems, tc.files)
			continue
		}
		for i, p := range got.Problems {
			if !strings.Contains(p, tc.files[i]+": invalid YAML: ") {
				t.Errorf("check %s: problem %q, want FILE:LINE: invalid YAML: … for %s", tc.config, p, tc.files[i])
			}
		}
	}
}
