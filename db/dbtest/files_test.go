package dbtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// The template is migrated once; every Path is a copy of its own.
func TestMigratedFiles(t *testing.T) {
	migrations := 0
	files := NewMigratedFiles(func(path string) string { return "file://" + path }, func(_ context.Context, url string) error {
		migrations++
		return os.WriteFile(strings.TrimPrefix(url, "file://"), []byte("migrated"), 0o644)
	})
	t.Cleanup(func() { files.Close() })
	a, b := files.Path(t, "a.db"), files.Path(t, "b.db")
	if a == b || migrations != 1 {
		t.Fatalf("paths %s and %s after %d migrations, want two copies of one migration", a, b, migrations)
	}
	for _, p := range []string{a, b} {
		if got, err := os.ReadFile(p); err != nil || string(got) != "migrated" {
			t.Errorf("%s: %q, %v; want the template's content", p, got, err)
		}
	}
	if err := os.WriteFile(a, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(files.Path(t, "c.db")); string(got) != "migrated" {
		t.Errorf("a change to one copy reached a later copy: %q", got)
	}
}

// A template that cannot be migrated fails every test that asks for it.
func TestMigratedFilesMigrationFails(t *testing.T) {
	files := NewMigratedFiles(func(path string) string { return path }, func(context.Context, string) error {
		return errors.New("boom")
	})
	t.Cleanup(func() { files.Close() })
	fake := &stopTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		files.Path(fake, "x.db")
	}()
	<-done
	if !strings.Contains(fake.fatal, "boom") {
		t.Errorf("Path with a failing migration: fatal %q, want the migration's error", fake.fatal)
	}
}
