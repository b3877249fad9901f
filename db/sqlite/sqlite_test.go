package sqlite_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/sqlite"
)

// openTemp opens a migrated store on a new file in t.TempDir().
func openTemp(t *testing.T) db.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "winchester.db"), db.Options{Migrate: true})
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
