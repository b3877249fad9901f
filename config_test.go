package winchester

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/stream"
)

// writeFile writes content to dir/name (creating directories) and returns
// the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatalf("mkdir %s: %v", filepath.Dir(p), err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "winchester.yaml", "---\n# nothing set\n")
	c, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	type settings struct {
		DatabaseURL             string
		StatisticsPeriod        time.Duration
		PipelineWorkerBatchSize int
		PipelineWorkerDelay     time.Duration
		PurgeCompletedStreams   bool
		TrimEvents              bool
		TrimEventsAge           string
		TrimEventsBatchSize     int
		LogLevel, LogFormat     string
		ShutdownGrace           time.Duration
		WorkerLease             time.Duration
		RescueAfter             time.Duration
		MaxRetries              int
		RetryBackoff            time.Duration
		SearchDirs              []string
	}
	got := settings{
		DatabaseURL:             c.DatabaseURL,
		StatisticsPeriod:        c.StatisticsPeriod.Std(),
		PipelineWorkerBatchSize: c.PipelineWorkerBatchSize,
		PipelineWorkerDelay:     c.PipelineWorkerDelay.Std(),
		PurgeCompletedStreams:   c.PurgeCompletedStreams,
		TrimEvents:              c.TrimEvents,
		TrimEventsAge:           c.TrimEventsAge,
		TrimEventsBatchSize:     c.TrimEventsBatchSize,
		LogLevel:                c.LogLevel,
		LogFormat:               c.LogFormat,
		ShutdownGrace:           c.ShutdownGrace.Std(),
		WorkerLease:             c.WorkerLease.Std(),
		RescueAfter:             c.RescueAfter.Std(),
		MaxRetries:              c.MaxRetries,
		RetryBackoff:            c.RetryBackoff.Std(),
		SearchDirs:              c.SearchDirs(),
	}
	want := settings{
		DatabaseURL:             "sqlite://" + filepath.Join(dir, "winchester.db"),
		StatisticsPeriod:        10 * time.Second,
		PipelineWorkerBatchSize: 1000,
		PipelineWorkerDelay:     10 * time.Second,
		PurgeCompletedStreams:   true,
		TrimEventsAge:           "$timestamp - 14d",
		TrimEventsBatchSize:     100,
		LogLevel:                "info",
		LogFormat:               "text",
		ShutdownGrace:           30 * time.Second,
		WorkerLease:             30 * time.Second,
		RescueAfter:             30 * time.Second,
		MaxRetries:              5,
		RetryBackoff:            30 * time.Second,
		SearchDirs:              []string{dir},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("Warnings = %q, want none", c.Warnings)
	}
}

func TestLoadValues(t *testing.T) {
	tests := []struct {
		name  string
		file  string // file name; the extension selects the format
		text  string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "explicit zero values are kept",
			file: "w.yaml",
			text: "purge_completed_streams: false\nmax_retries: 0\npipeline_worker_delay: 0\nshutdown_grace: 0\n",
			check: func(t *testing.T, c *Config) {
				if c.PurgeCompletedStreams || c.MaxRetries != 0 || c.PipelineWorkerDelay != 0 || c.ShutdownGrace != 0 {
					t.Errorf("purge=%v max_retries=%d delay=%s grace=%s, want false 0 0s 0s",
						c.PurgeCompletedStreams, c.MaxRetries, c.PipelineWorkerDelay, c.ShutdownGrace)
				}
			},
		},
		{
			name: "durations as seconds or strings",
			file: "w.yml",
			text: "statistics_period: 2.5\npipeline_worker_delay: 3\nshutdown_grace: 1m30s\nretry_backoff: \"45s\"\n",
			check: func(t *testing.T, c *Config) {
				got := []time.Duration{c.StatisticsPeriod.Std(), c.PipelineWorkerDelay.Std(), c.ShutdownGrace.Std(), c.RetryBackoff.Std()}
				want := []time.Duration{2500 * time.Millisecond, 3 * time.Second, 90 * time.Second, 45 * time.Second}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("durations (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "rescue_after is another name of worker_lease",
			file: "w.yaml",
			text: "rescue_after: 2m\n",
			check: func(t *testing.T, c *Config) {
				if c.WorkerLease.Std() != 2*time.Minute || c.RescueAfter.Std() != 2*time.Minute {
					t.Errorf("worker_lease=%s rescue_after=%s, want 2m both", c.WorkerLease, c.RescueAfter)
				}
			},
		},
		{
			name: "worker_lease sets rescue_after",
			file: "w.yaml",
			text: "worker_lease: 90\nrescue_after: 1m30s\n",
			check: func(t *testing.T, c *Config) {
				if c.WorkerLease.Std() != 90*time.Second || c.RescueAfter.Std() != 90*time.Second {
					t.Errorf("worker_lease=%s rescue_after=%s, want 1m30s both", c.WorkerLease, c.RescueAfter)
				}
			},
		},
		{
			name: "config_path as a string",
			file: "w.yaml",
			text: "config_path: conf\n",
			check: func(t *testing.T, c *Config) {
				if diff := cmp.Diff([]string{c.Dir, filepath.Join(c.Dir, "conf")}, c.SearchDirs()); diff != "" {
					t.Errorf("SearchDirs (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "config_path as a list with absolute, relative and duplicate entries",
			file: "w.yaml",
			text: "config_path:\n  - /etc/winchester\n  - .\n  - ./a/../b\n",
			check: func(t *testing.T, c *Config) {
				want := []string{c.Dir, "/etc/winchester", filepath.Join(c.Dir, "b")}
				if diff := cmp.Diff(want, c.SearchDirs()); diff != "" {
					t.Errorf("SearchDirs (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "json file",
			file: "w.json",
			text: `{"database": {"url": "postgresql+psycopg2://w:secret@db.example/winchester"}, "pipeline_worker_batch_size": 7, "catch_all_notifications": true}`,
			check: func(t *testing.T, c *Config) {
				if c.DatabaseURL != "postgres://w:secret@db.example/winchester" || c.PipelineWorkerBatchSize != 7 || !c.CatchAllNotifications {
					t.Errorf("got url=%q batch=%d catch_all=%v", c.DatabaseURL, c.PipelineWorkerBatchSize, c.CatchAllNotifications)
				}
			},
		},
		{
			name: "python-only keys are accepted with a warning",
			file: "w.yaml",
			text: "log_level: debug\nlog_file: '%(proc_name)s.log'\nlogging_config: logging.conf\n",
			check: func(t *testing.T, c *Config) {
				if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "w.yaml:2: log_file") || !strings.Contains(c.Warnings[1], "w.yaml:3: logging_config") {
					t.Errorf("Warnings = %q, want log_file at line 2 and logging_config at line 3", c.Warnings)
				}
			},
		},
		{
			name: "null values are the same as absent",
			file: "w.yaml",
			text: "database:\nmax_retries:\nconfig_path:\n",
			check: func(t *testing.T, c *Config) {
				if c.MaxRetries != DefaultMaxRetries || c.Has("database") || c.Has("max_retries") {
					t.Errorf("max_retries=%d has(database)=%v", c.MaxRetries, c.Has("database"))
				}
			},
		},
		{
			name: "original sample keys",
			file: "w.yaml",
			text: `config_path: /home/winchester/etc
log_level: debug
statistics_period: 10
pipeline_worker_batch_size: 1000
pipeline_worker_delay: 10
catch_all_notifications: false
database:
    url: sqlite:///winchester.db
    echo_sql: true
distiller_config: event_definitions.yaml
trigger_definitions: triggers.yaml
pipeline_config: pipelines.yaml
time_sync_endpoint: http://timesync.local:8080
distiller_trait_plugins:
    test: some.module.path:TestTraitPlugin
pipeline_handlers:
    logger: winchester.pipeline_handler:LoggingHandler
`,
			check: func(t *testing.T, c *Config) {
				if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "w.yaml:9: database.echo_sql has no effect") || !strings.Contains(c.Warnings[1], "w.yaml:13: time_sync_endpoint is not used") {
					t.Errorf("Warnings = %q, want echo_sql (line 9) and time_sync_endpoint (line 13)", c.Warnings)
				}
				if !c.Database.EchoSQL || c.TriggerDefinitions != "triggers.yaml" || c.Line("database.url") != 8 || c.Line("trigger_definitions") != 11 {
					t.Errorf("echo_sql=%v trigger_definitions=%q line(database.url)=%d line(trigger_definitions)=%d",
						c.Database.EchoSQL, c.TriggerDefinitions, c.Line("database.url"), c.Line("trigger_definitions"))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, t.TempDir(), tc.file, tc.text)
			c, err := Load(p)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		text string
		want []string // substrings of the error, in this order
	}{
		{
			name: "unknown keys, all reported with lines",
			file: "w.yaml",
			text: "log_level: info\nfoo: 1\ndatabase:\n  url: sqlite://\n  pool: 3\nbar: 2\n",
			want: []string{`w.yaml:2: foo: unknown key (known keys: config_path, database,`, `w.yaml:5: database.pool: unknown key (known keys: url, echo_sql, read_url)`, `w.yaml:6: bar: unknown key`},
		},
		{
			name: "wrong types",
			file: "w.yaml",
			text: "pipeline_worker_batch_size: many\ncatch_all_notifications: maybe\n",
			want: []string{`w.yaml:1: pipeline_worker_batch_size: must be an integer, not the string "many"`, `w.yaml:2: catch_all_notifications: must be true or false, not the string "maybe"`},
		},
		{
			name: "bad duration",
			file: "w.yaml",
			text: "shutdown_grace: soon\n",
			want: []string{`w.yaml:1: shutdown_grace: invalid duration "soon"`},
		},
		{
			name: "config_path of the wrong shape",
			file: "w.yaml",
			text: "config_path: {a: b}\n",
			want: []string{"w.yaml:1: config_path: must be a string or a list of strings"},
		},
		{
			name: "database not a mapping",
			file: "w.yaml",
			text: "database: sqlite://\n",
			want: []string{"w.yaml:1: database: must be a mapping"},
		},
		{
			name: "not a mapping",
			file: "w.yaml",
			text: "- a\n- b\n",
			want: []string{"w.yaml:1: the config file must be a mapping"},
		},
		{
			name: "yaml syntax",
			file: "w.yaml",
			text: "a: [1, 2\n",
			want: []string{"w.yaml:1: invalid YAML: did not find expected ',' or ']'"},
		},
		{
			name: "consumer problems in place",
			file: "w.yaml",
			text: "consumers:\n- name: a\n  url: amqp://h/\n  queu: q\n- 3\n",
			want: []string{`w.yaml:4: consumers[0].queu: unknown key (did you mean queue?)`, `w.yaml:5: consumers[1]: a consumer must be a mapping`},
		},
		{
			name: "merged keys are checked",
			file: "w.yaml",
			text: "defaults: &d {log_levl: debug}\n<<: *d\n",
			want: []string{`w.yaml:1: defaults: unknown key`, `w.yaml:1: log_levl: unknown key (did you mean log_level?)`},
		},
		{
			name: "duplicate key",
			file: "w.yaml",
			text: "log_level: info\nlog_level: debug\n",
			want: []string{`w.yaml:2: log_level: key defined more than once (first on line 1)`},
		},
		{
			name: "ini file",
			file: "w.ini",
			text: "[winchester]\n",
			want: []string{"w.ini: unsupported file type .ini"},
		},
		{
			name: "invalid json",
			file: "w.json",
			text: `{"log_level": }`,
			want: []string{"w.json:1: invalid JSON: invalid character '}'"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(writeFile(t, t.TempDir(), tc.file, tc.text))
			assertErrorContains(t, err, tc.want)
		})
	}
}

func assertErrorContains(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want one containing %q", want)
	}
	msg := err.Error()
	for _, w := range want {
		i := strings.Index(msg, w)
		if i < 0 {
			t.Fatalf("error = %q, want it to contain %q", msg, w)
		}
		msg = msg[i+len(w):]
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "mysql",
			text: "database:\n  url: mysql://w:secret@localhost/winchester\n",
			want: []string{`w.yaml:2: database.url: database URL "mysql://w:xxxxx@localhost/winchester": MySQL is not supported; use PostgreSQL or SQLite`},
		},
		{
			name: "every problem is listed",
			text: "pipeline_worker_batch_size: 0\nstatistics_period: -1\nlog_level: loud\nlog_format: xml\nmax_retries: -1\n",
			want: []string{
				"w.yaml:2: statistics_period: must be positive",
				"w.yaml:1: pipeline_worker_batch_size: must be positive",
				"w.yaml:5: max_retries: must not be negative",
				`w.yaml:3: log_level: unknown log level "loud"`,
				`w.yaml:4: log_format: unknown log format "xml"`,
			},
		},
		{
			name: "worker_lease and rescue_after disagree",
			text: "worker_lease: 10m\nrescue_after: 1m\n",
			want: []string{"w.yaml:2: rescue_after: 1m0s differs from worker_lease 10m0s: they are one setting"},
		},
		{
			name: "time sync endpoint",
			text: "time_sync_endpoint: timesync:8080\n",
			want: []string{`w.yaml:1: time_sync_endpoint: "timesync:8080" is not an http(s) URL`},
		},
		{
			name: "http and serve settings",
			text: "http:\n  tls_cert_file: c.pem\nserve:\n  workers: -1\n",
			want: []string{
				"w.yaml:1: http: tls_cert_file and tls_key_file go together",
				"w.yaml:4: serve.workers: -1: must be 0 (no workers) or more",
			},
		},
		{
			name: "event limits",
			text: "event_limits:\n  message_id_bytes: 4096\n  traits: -1\n",
			want: []string{"w.yaml:1: event_limits: message_id_bytes: 4096 is more than 2048", "traits: -1 is negative"},
		},
		{
			name: "bad trim age",
			text: "trim_events: true\ntrim_events_age: \"$timestamp -\"\n",
			want: []string{`w.yaml:2: trim_events_age: "$timestamp -": `},
		},
		{
			name: "trim age with names evaluation would reject",
			text: "trim_events: true\ntrim_events_age: \"dya($last) - 14d\"\n",
			want: []string{`w.yaml:2: trim_events_age: "dya($last) - 14d": timex: check "dya($last) - 14d": unknown function dya`,
				`variable $last is not available here (available: $timestamp)`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Read(writeFile(t, t.TempDir(), "w.yaml", tc.text))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			assertErrorContains(t, c.Validate(), tc.want)
		})
	}
}

func TestValidateWorker(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(writeFile(t, dir, "w.yaml", "log_level: info\n"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	assertErrorContains(t, c.ValidateWorker(), []string{"pipeline_config: required by the pipeline worker"})
	c, err = Load(writeFile(t, dir, "w2.yaml", "pipeline_config: pipelines.yaml\n"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := c.ValidateWorker(); err != nil {
		t.Errorf("ValidateWorker = %v, want nil", err)
	}
}

func TestResolvePath(t *testing.T) {
	root := t.TempDir()
	cfg := writeFile(t, root, "etc/winchester.yaml", "config_path: [../shared, /nonexistent/dir]\n")
	writeFile(t, root, "etc/triggers.yaml", "[]")
	writeFile(t, root, "shared/triggers.yaml", "[]")
	writeFile(t, root, "shared/pipelines.yaml", "{}")
	abs := writeFile(t, root, "elsewhere/events.yaml", "[]")
	if err := os.Mkdir(filepath.Join(root, "etc", "adir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct {
		name    string
		file    string
		want    string
		wantErr []string
	}{
		{name: "config dir wins", file: "triggers.yaml", want: filepath.Join(root, "etc", "triggers.yaml")},
		{name: "config_path relative to the config dir", file: "pipelines.yaml", want: filepath.Join(root, "shared", "pipelines.yaml")},
		{name: "absolute name", file: abs, want: abs},
		{name: "subdirectory name", file: "../elsewhere/events.yaml", want: abs},
		{
			name:    "missing names every directory",
			file:    "nope.yaml",
			wantErr: []string{"cannot find nope.yaml (searched " + filepath.Join(root, "etc") + ", " + filepath.Join(root, "shared") + ", /nonexistent/dir)"},
		},
		{name: "directories are not files", file: "adir.yaml", wantErr: []string{"cannot find adir.yaml"}},
		{name: "missing absolute", file: filepath.Join(root, "none.yaml"), wantErr: []string{"none.yaml: no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ResolvePath(tc.file)
			if tc.wantErr != nil {
				assertErrorContains(t, err, tc.wantErr)
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("ResolvePath(%q) = %v, want fs.ErrNotExist", tc.file, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ResolvePath(%q) = %q, %v, want %q", tc.file, got, err, tc.want)
			}
		})
	}
}

// Merge keys are resolved in winchester.yaml as in the other files.
func TestReadMergeKeys(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "w.yaml", `consumers:
- &nova {name: nova, url: "amqp://h/", queue: q, batch_size: 10}
- <<: *nova
  name: glance
  queue: q2
`)
	c, err := Read(path)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(c.Consumers) != 2 {
		t.Fatalf("consumers = %d, want 2", len(c.Consumers))
	}
	g := c.Consumers[1]
	if g.Name != "glance" || g.Queue != "q2" || g.URL != "amqp://h/" || g.BatchSize != 10 || g.Line != 3 {
		t.Errorf("merged consumer = %+v, want glance on q2 with nova's url and batch_size at line 3", g)
	}
}

// The serve section defaults to everything on, one worker; the http
// section's settings are read with their durations; unknown keys of both
// are errors with their lines.
func TestServeAndHTTPSettings(t *testing.T) {
	c, err := Load(writeFile(t, t.TempDir(), "w.yaml", "---\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Serve{HTTP: true, Workers: DefaultServeWorkers, Consumers: true}); c.Serve != want {
		t.Errorf("serve defaults = %+v, want %+v", c.Serve, want)
	}
	c, err = Load(writeFile(t, t.TempDir(), "w.yaml", "serve:\n  http: false\n  workers: 0\nhttp:\n  listen: 0.0.0.0:9000\n  request_timeout: 5s\n  idle_timeout: 90\n  tokens:\n  - token: abcdefghijklmnopq\n    scopes: [read]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Serve.HTTP || c.Serve.Workers != 0 || !c.Serve.Consumers {
		t.Errorf("serve = %+v, want http off, no workers, consumers on", c.Serve)
	}
	if c.HTTP.Listen != "0.0.0.0:9000" || c.HTTP.RequestTimeout.Std() != 5*time.Second || c.HTTP.IdleTimeout.Std() != 90*time.Second || len(c.HTTP.Tokens) != 1 || c.HTTP.Tokens[0].Scopes[0] != "read" {
		t.Errorf("http = %+v", c.HTTP)
	}
	_, err = Read(writeFile(t, t.TempDir(), "w.yaml", "http:\n  listen: :8080\n  port: 80\nserve:\n  workers: 2\n  ui: true\n"))
	assertErrorContains(t, err, []string{"w.yaml:3: ", "port", "w.yaml:6: ", "ui"})
}

func TestEventLimits(t *testing.T) {
	c, err := Read(writeFile(t, t.TempDir(), "w.yaml", "event_limits:\n  message_id_bytes: 100\n  distinguishing_key_bytes: 5000\n"))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := stream.DefaultLimits()
	want.MessageIDBytes, want.KeyBytes = 100, 5000
	if got := c.EventLimits.Limits(); got != want {
		t.Errorf("EventLimits.Limits() = %+v, want %+v", got, want)
	}
	if _, err := Read(writeFile(t, t.TempDir(), "w.yaml", "event_limits:\n  message_ids: 100\n")); err == nil || !strings.Contains(err.Error(), "message_ids") {
		t.Errorf("Read(unknown event_limits key) = %v, want an error naming it", err)
	}
}

// TestReadNamesTheFileAbsolutely: problems of a config file named
// relatively carry its absolute path, as those of the files it names do
// (their paths are resolved against its directory).
func TestReadNamesTheFileAbsolutely(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	abs, err := filepath.Abs("winchester.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, text, want string }{
		{"YAML error", "winchester.yaml", "database: [\n", abs + ":1: invalid YAML: "},
		{"unknown key", "winchester.yaml", "databse: {}\n", abs + ":1: databse: unknown key (did you mean database?)"},
		{"not a mapping", "winchester.yaml", "- a\n", abs + ":1: the config file must be a mapping"},
		{"JSON error", "winchester.json", "{\"log_level\": }\n", filepath.Join(filepath.Dir(abs), "winchester.json") + ":1: invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(tc.file, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Read(tc.file)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Read(%s) = %v, want it to start with %q", tc.file, err, tc.want)
			}
		})
	}
	if err := os.WriteFile("winchester.yaml", []byte("pipeline_worker_batch_size: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Read("winchester.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), abs+":1: pipeline_worker_batch_size") {
		t.Errorf("Validate = %v, want it to start with %s:1", err, abs)
	}
}
