package dbtest

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// stopTB records how PostgresURL stopped a test (Fatalf or Skipf) without
// stopping the real one.
type stopTB struct {
	testing.TB
	fatal, skip string
}

func (f *stopTB) Helper() {}

func (f *stopTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *stopTB) Skipf(format string, args ...any) {
	f.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestPostgresURLWithoutDatabase(t *testing.T) {
	tests := []struct {
		name      string
		ci        string
		wantFatal bool
	}{
		{name: "skipped on a developer machine", ci: ""},
		{name: "fatal in CI", ci: "true", wantFatal: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(PostgresURLEnv, "")
			t.Setenv("CI", tc.ci)
			fake := &stopTB{TB: t}
			done := make(chan string, 2)
			go func() {
				defer func() { done <- "" }()
				done <- PostgresURL(fake)
			}()
			if url := <-done; url != "" {
				t.Fatalf("PostgresURL = %q without %s", url, PostgresURLEnv)
			}
			if tc.wantFatal && (fake.fatal == "" || fake.skip != "") {
				t.Errorf("PostgresURL with CI set: fatal %q, skip %q; want a failure", fake.fatal, fake.skip)
			}
			if !tc.wantFatal && (fake.skip == "" || fake.fatal != "") {
				t.Errorf("PostgresURL without CI: fatal %q, skip %q; want a skip", fake.fatal, fake.skip)
			}
			if msg := fake.fatal + fake.skip; !strings.Contains(msg, PostgresURLEnv) {
				t.Errorf("message %q does not name %s", msg, PostgresURLEnv)
			}
		})
	}
}

func TestSchemaName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	seen := map[string]bool{}
	for _, name := range []string{"TestX", "TestExercise/Ingest/concurrent_create", strings.Repeat("VeryLong/", 20), "Ünïcode test #1"} {
		for range 3 {
			s := schemaName(name)
			if !valid.MatchString(s) {
				t.Errorf("schemaName(%q) = %q, not a plain PostgreSQL identifier", name, s)
			}
			if seen[s] {
				t.Errorf("schemaName(%q) = %q twice", name, s)
			}
			seen[s] = true
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "no query", in: "postgres://u@h:5432/db", want: "postgres://u@h:5432/db?search_path=t_x&synchronous_commit=off"},
		{name: "keeps parameters", in: "postgresql://u@h/db?sslmode=disable", want: "postgresql://u@h/db?search_path=t_x&sslmode=disable&synchronous_commit=off"},
		{name: "replaces search_path", in: "postgres://u@h/db?search_path=public", want: "postgres://u@h/db?search_path=t_x&synchronous_commit=off"},
		{name: "keeps synchronous_commit", in: "postgres://u@h/db?synchronous_commit=on", want: "postgres://u@h/db?search_path=t_x&synchronous_commit=on"},
		{name: "not postgres", in: "sqlite:///x.db", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := withSearchPath(tc.in, "t_x")
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("withSearchPath(%q) = %q, %v; want %q (error: %v)", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
