package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
)

// buildBinary builds winchester_db into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "winchester_db")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// run runs the binary in dir with env added to a clean environment and
// returns its combined output and exit status.
func run(t *testing.T, bin, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return string(out), 0
}

type step struct {
	name string
	args []string
	code int
	want []string // regular expressions the output must match
}

func runSteps(t *testing.T, bin, dir string, env []string, steps []step) {
	t.Helper()
	for _, s := range steps {
		out, code := run(t, bin, dir, env, s.args...)
		if code != s.code {
			t.Fatalf("%s: winchester_db %s exited %d, want %d; output:\n%s", s.name, strings.Join(s.args, " "), code, s.code, out)
		}
		for _, w := range s.want {
			if !regexp.MustCompile(w).MatchString(out) {
				t.Fatalf("%s: winchester_db %s output does not match %q:\n%s", s.name, strings.Join(s.args, " "), w, out)
			}
		}
	}
}

func TestSQLiteEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "winchester.yaml"), []byte("database:\n  url: sqlite:///state.db\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runSteps(t, bin, dir, nil, []step{
		{name: "sql before the database exists", args: []string{"upgrade", "--sql", "head"},
			want: []string{`does not exist, every migration from base`, `-- 000001_init.up.sql`, `CREATE TABLE event`}},
	})
	if _, err := os.Stat(filepath.Join(dir, "state.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("upgrade --sql created the database file (stat: %v)", err)
	}
	runSteps(t, bin, dir, nil, []step{
		{name: "upgrade", args: []string{"upgrade"}, want: []string{`applying 000001_init, 000002_stream_key_digest, 000003_jobs, 000004_subscribers, 000005_definition_versions, 000008_console_indexes, 000009_stream_fillfactor … done in \d+m?s`, `now at version 9`}},
		{name: "upgrade again", args: []string{"-c", "winchester.yaml", "upgrade", "head"}, want: []string{`already at version 9 \(000009_stream_fillfactor\)`}},
		{name: "version", args: []string{"version"}, want: []string{`version: 9 \(000009_stream_fillfactor\)`, `up to date`}},
		{name: "current", args: []string{"current"}, want: []string{`version: 9 `}},
		{name: "sql when up to date", args: []string{"upgrade", "--sql"}, want: []string{`-- nothing to apply`}},
		{name: "unknown version", args: []string{"downgrade", "7"}, code: 2, want: []string{`unknown version "7" \(known: 1, 2, 3, 4, 5, 8, 9, base\)`}},
		{name: "version json", args: []string{"version", "-o", "json"},
			want: []string{`^\{"database":"sqlite://[^"]*state.db","version":9,"name":"000009_stream_fillfactor","dirty":false,"head":9,"head_name":"000009_stream_fillfactor","status":"up_to_date","explanation":"up to date"\}\n$`}},
		{name: "base without --yes", args: []string{"downgrade", "base"}, code: 2, want: []string{`drops every table .* add --yes to confirm`}},
		{name: "version after refused downgrade", args: []string{"version"}, want: []string{`version: 9 `}},
		{name: "upgrade to older", args: []string{"downgrade", "base", "--yes"}, want: []string{`reverting 000009_stream_fillfactor, 000008_console_indexes, 000005_definition_versions, 000004_subscribers, 000003_jobs, 000002_stream_key_digest, 000001_init … done`, `now at version 0 \(base\)`}},
		{name: "version at base", args: []string{"version"}, code: 3, want: []string{`version: 0 \(base\)`, `out of date: run winchester_db upgrade head`}},
		{name: "version json at base", args: []string{"version", "-o", "json"}, code: 3, want: []string{`^\{.*"status":"out_of_date".*\}\n$`}},
		{name: "force", args: []string{"force", "1"}, want: []string{`version forced to 1`}},
		{name: "version after force", args: []string{"version"}, code: 3, want: []string{`version: 1 `}},
		{name: "missing config", args: []string{"-c", "nope.yaml", "version"}, code: 1, want: []string{`nope.yaml`}},
	})
}

func TestPostgresEndToEnd(t *testing.T) {
	url := dbtest.PostgresURL(t)
	bin := buildBinary(t)
	dir := t.TempDir() // no config file: the URL comes from the environment
	env := []string{"WINCHESTER_DATABASE_URL=" + url}
	runSteps(t, bin, dir, env, []step{
		{name: "version of an empty schema", args: []string{"version"}, code: 3, want: []string{`version: 0 \(base\)`}},
		{name: "sql", args: []string{"upgrade", "--sql", "head"},
			want: []string{`the database is at version 0`, `-- 000001_init.up.sql`, `CREATE UNIQUE INDEX stream_open_key`}},
	})
	assertTables(t, url, 0)
	runSteps(t, bin, dir, env, []step{
		{name: "upgrade", args: []string{"upgrade", "head"}, want: []string{`applying 000001_init, 000002_stream_key_digest, 000003_jobs, 000004_subscribers, 000005_definition_versions, 000008_console_indexes, 000009_stream_fillfactor … done in`}},
		{name: "upgrade again", args: []string{"upgrade"}, want: []string{`already at version 9`}},
		{name: "version", args: []string{"version"}, want: []string{`version: 9 \(000009_stream_fillfactor\)`, `up to date`}},
	})
	s, err := postgres.Open(t.Context(), url, db.Options{})
	if err != nil {
		t.Fatalf("Open after upgrade: %v", err)
	}
	s.Close()

	// The flag overrides the environment.
	runSteps(t, bin, dir, []string{"WINCHESTER_DATABASE_URL=postgres://nobody@127.0.0.1:1/none"}, []step{
		{name: "flag wins", args: []string{"--database-url", url, "version"}, want: []string{`version: 9 `}},
		{name: "unreachable sql", args: []string{"upgrade", "--sql"}, want: []string{`could not read the schema version`, `-- 000001_init.up.sql`}},
	})

	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	if _, err := conn.Exec(t.Context(), `UPDATE schema_migrations SET dirty = TRUE`); err != nil {
		t.Fatal(err)
	}
	runSteps(t, bin, dir, env, []step{
		{name: "dirty upgrade", args: []string{"upgrade"}, code: 1, want: []string{`dirty`, "winchester_db force 9"}},
		{name: "dirty version", args: []string{"version"}, code: 4, want: []string{`DIRTY`, `winchester_db force 9`}},
		{name: "dirty version json", args: []string{"version", "-o", "json"}, code: 4, want: []string{`"dirty":true`, `"status":"dirty"`}},
		{name: "force", args: []string{"force", "9"}, want: []string{`version forced to 9`}},
		{name: "downgrade", args: []string{"downgrade", "base", "--yes"}, want: []string{`reverting 000009_stream_fillfactor, 000008_console_indexes, 000005_definition_versions, 000004_subscribers, 000003_jobs, 000002_stream_key_digest, 000001_init … done in`}},
	})
	assertTables(t, url, 1) // only schema_migrations is left
}

// assertTables checks the number of tables in the URL's schema.
func assertTables(t *testing.T, url string, want int) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("%d tables in the schema, want %d", n, want)
	}
}

// TestPostgresSQLOutputApplies runs the output of upgrade --sql the way a
// database administrator would and checks the result is a migrated schema.
func TestPostgresSQLOutputApplies(t *testing.T) {
	url := dbtest.PostgresURL(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), bin, "--database-url", url, "upgrade", "--sql")
	cmd.Dir = dir
	script, err := cmd.Output()
	if err != nil {
		t.Fatalf("upgrade --sql: %v", err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	if _, err := conn.Exec(t.Context(), string(script)); err != nil {
		t.Fatalf("run the printed SQL: %v\n%s", err, script)
	}
	runSteps(t, bin, dir, []string{"WINCHESTER_DATABASE_URL=" + url}, []step{
		{name: "version", args: []string{"version"}, want: []string{`version: 9 \(000009_stream_fillfactor\)`, `up to date`}},
		{name: "nothing left", args: []string{"upgrade"}, want: []string{`already at version 9`}},
	})
	s, err := postgres.Open(t.Context(), url, db.Options{})
	if err != nil {
		t.Fatalf("Open after running the printed SQL: %v", err)
	}
	s.Close()
}
