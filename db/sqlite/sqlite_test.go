package sqlite_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/sqlite"
)

// openTemp opens a store on a new copy of a migrated file in t.TempDir().
func openTemp(t *testing.T) db.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), "sqlite://"+files.Path(t, "winchester.db"), db.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestExercise(t *testing.T) {
	dbtest.Exercise(t, openTemp)
}

func TestExerciseTwoStores(t *testing.T) {
	dbtest.ExerciseTwoStores(t, func(t *testing.T) (db.Store, db.Store) {
		// Two stores on one file, as two processes; the second gives up
		// waiting for the first's write lock after 200ms.
		raw := "sqlite://" + filepath.Join(t.TempDir(), "winchester.db") + "?_pragma=busy_timeout(200)"
		var stores [2]db.Store
		for i := range stores {
			s, err := sqlite.Open(t.Context(), raw, db.Options{Migrate: true})
			if err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			stores[i] = s
		}
		return stores[0], stores[1]
	})
}

func TestExerciseStoredStates(t *testing.T) {
	dbtest.ExerciseStoredStates(t, func(t *testing.T) (db.Store, dbtest.StoredStateFunc) {
		path := filepath.Join(t.TempDir(), "winchester.db")
		s, err := sqlite.Open(t.Context(), "sqlite://"+path, db.Options{Migrate: true})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		t.Cleanup(func() { raw.Close() })
		return s, func(t *testing.T, id int64) int {
			var state int
			if err := raw.QueryRowContext(t.Context(), `SELECT state FROM stream WHERE id = ?`, id).Scan(&state); err != nil {
				t.Fatalf("read the state column of stream %d: %v", id, err)
			}
			return state
		}
	})
}

func TestExerciseMigrations(t *testing.T) {
	dbtest.ExerciseMigrations(t, sqlite.Driver{}, func(t *testing.T) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "winchester.db")
	})
}

func BenchmarkStore(b *testing.B) {
	dbtest.Benchmark(b, func(tb testing.TB) db.Store {
		s, err := sqlite.Open(tb.Context(), "sqlite://"+filepath.Join(tb.TempDir(), "winchester.db"), db.Options{Migrate: true})
		if err != nil {
			tb.Fatalf("open: %v", err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	})
}

// Migrating leaves nothing beside the database: the lock file that
// serialises concurrent migrations is removed, also when several stores
// migrate the same file at once (a leftover lock file in etc/ made the
// repository's own sample check fail).
func TestMigrateLeavesNoLockFile(t *testing.T) {
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "winchester.db")
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := sqlite.Open(t.Context(), url, db.Options{Migrate: true})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("open with migrate: %v", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".migrate.lock") {
			t.Errorf("%s left behind after migrating", e.Name())
		}
	}
}

// A database whose directory is missing, or not a directory, or not
// writable, is a mistake in the URL or the setup, not an outage: the error
// says what is wrong and is not db.ErrUnavailable.
func TestOpenPermanentErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o500); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want string
	}{
		{name: "missing directory", path: filepath.Join(dir, "nope", "w.db"), want: "directory " + filepath.Join(dir, "nope") + " does not exist: create it"},
		{name: "not a directory", path: filepath.Join(file, "w.db"), want: file + " is not a directory"},
	}
	if os.Geteuid() != 0 { // root may write anywhere
		tests = append(tests, struct{ name, path, want string }{name: "read-only directory", path: filepath.Join(locked, "w.db"), want: "check that this user may read and write"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), "sqlite://"+tc.path, db.Options{Migrate: true})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tc.path)
			}
			if errors.Is(err, db.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%s) = %v, want a permanent error containing %q", tc.path, err, tc.want)
			}
			_, _, err = sqlite.Driver{}.SchemaVersion(t.Context(), "sqlite://"+tc.path)
			if err == nil || errors.Is(err, db.ErrUnavailable) {
				t.Errorf("SchemaVersion(%s) = %v, want a permanent error", tc.path, err)
			}
		})
	}
}
