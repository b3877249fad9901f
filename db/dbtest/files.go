package dbtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// MigratedFiles hands out copies of one migrated database file (SQLite):
// the first call migrates a template with migrate, every call copies it
// into the test's temporary directory. A copy takes a fraction of a
// migration. Call Close from TestMain after m.Run to remove the template.
// It is safe for concurrent use.
type MigratedFiles struct {
	migrate MigrateFunc
	url     func(path string) string

	once sync.Once
	dir  string
	path string
	err  error
}

// NewMigratedFiles returns MigratedFiles whose template is migrated with
// migrate; url turns a file path into the driver's URL.
func NewMigratedFiles(url func(path string) string, migrate MigrateFunc) *MigratedFiles {
	return &MigratedFiles{migrate: migrate, url: url}
}

// Path returns the path of a new copy of the migrated file, in
// t.TempDir(), named name.
func (f *MigratedFiles) Path(t testing.TB, name string) string {
	t.Helper()
	f.once.Do(func() {
		f.dir, f.err = os.MkdirTemp("", "dbtest-template-")
		if f.err != nil {
			return
		}
		f.path = filepath.Join(f.dir, "template.db")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := f.migrate(ctx, f.url(f.path)); err != nil {
			f.err = fmt.Errorf("migrate the template database: %w", err)
		}
	})
	if f.err != nil {
		t.Fatalf("template database: %v", f.err)
	}
	dst := filepath.Join(t.TempDir(), name)
	for _, suffix := range []string{"", "-wal"} {
		if err := copyFile(f.path+suffix, dst+suffix); err != nil && !(suffix != "" && os.IsNotExist(err)) {
			t.Fatalf("copy the template database: %v", err)
		}
	}
	return dst
}

// Close removes the template.
func (f *MigratedFiles) Close() error {
	if f.dir == "" {
		return nil
	}
	return os.RemoveAll(f.dir)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
