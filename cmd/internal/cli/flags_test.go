package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

func TestFlagsPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "conf/w.yaml", "database:\n  url: sqlite:///file.db\nlog_level: debug\nlog_format: json\n")
	t.Chdir(dir)
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvDatabaseURL {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name      string
		flags     Flags
		getenv    func(string) string
		wantURL   string
		wantLevel string
	}{
		{name: "file", flags: Flags{ConfigFile: "conf/w.yaml"}, wantURL: "sqlite://" + filepath.Join(dir, "conf", "file.db"), wantLevel: "debug"},
		{name: "environment over file, relative to the current directory", flags: Flags{ConfigFile: "conf/w.yaml"}, getenv: env("sqlite:///env.db"), wantURL: "sqlite://" + filepath.Join(dir, "env.db"), wantLevel: "debug"},
		{name: "empty environment ignored", flags: Flags{ConfigFile: "conf/w.yaml"}, getenv: env(""), wantURL: "sqlite://" + filepath.Join(dir, "conf", "file.db"), wantLevel: "debug"},
		{
			name:      "flags over environment",
			flags:     Flags{ConfigFile: "conf/w.yaml", DatabaseURL: "postgresql://u@h/db", LogLevel: "warning"},
			getenv:    env("sqlite:///env.db"),
			wantURL:   "postgres://u@h/db",
			wantLevel: "warning",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.flags.Read(tc.getenv)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if c.DatabaseURL != tc.wantURL || c.LogLevel != tc.wantLevel {
				t.Errorf("url=%q level=%q, want %q %q", c.DatabaseURL, c.LogLevel, tc.wantURL, tc.wantLevel)
			}
		})
	}

	t.Run("overridden values are blamed on their source", func(t *testing.T) {
		f := Flags{ConfigFile: "conf/w.yaml", LogLevel: "loud"}
		c, err := f.Read(env("mysql://x@y/z"))
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		assertErrorContains(t, c.Validate(), []string{
			"environment variable WINCHESTER_DATABASE_URL: database.url:",
			`flag --log-level: log_level: unknown log level "loud"`,
		})
	})
}

func TestDefaultConfigFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "winchester.yaml", "log_format: json\n")
	t.Chdir(dir)
	var f Flags
	c, err := f.Read(nil)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if c.File != filepath.Join(dir, "winchester.yaml") || c.LogFormat != "json" {
		t.Errorf("File=%q LogFormat=%q", c.File, c.LogFormat)
	}
}
