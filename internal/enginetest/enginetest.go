// Package enginetest builds what the tests of the engine's parts run
// over: a migrated store of either driver, fresh for each test (an SQLite
// file in the test's temporary directory, or a PostgreSQL schema of its
// own through dbtest.PostgresURL), trigger definitions and a distiller
// from YAML text, and a trigger manager over a store. Each is closed when
// the test ends; each failure stops the test.
package enginetest

import (
	"path/filepath"
	"testing"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/trigger"
)

// SQLite returns a migrated SQLite store in a file of t.TempDir().
func SQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Postgres returns a migrated PostgreSQL store in a schema of its own;
// the test is skipped without TEST_DATABASE_URL (it fails in CI), as
// dbtest.PostgresURL does.
func Postgres(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dbtest.PostgresURL(t), db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Triggers parses trigger definitions (the text of a triggers.yaml).
func Triggers(t testing.TB, yaml string) []*trigger.Definition {
	t.Helper()
	defs, _, err := trigger.Parse("triggers.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("trigger.Parse: %v", err)
	}
	return defs
}

// Distill returns the distill function of event definitions (the text of
// an event_definitions.yaml) with the built-in trait plugins, as
// trigger.ManagerConfig.DistillFunc takes it.
func Distill(t testing.TB, yaml string) trigger.DistillFunc {
	t.Helper()
	defs, err := distiller.ParseDefinitions("event_definitions.yaml", []byte(yaml), distiller.NewPluginRegistry())
	if err != nil {
		t.Fatalf("distiller.ParseDefinitions: %v", err)
	}
	return distiller.New(defs, distiller.Config{}).Event
}

// Manager returns a trigger manager over store with the trigger
// definitions of triggers (the text of a triggers.yaml); cfg.Logger, when
// nil, is the test's log (dbtest.Logger).
func Manager(t testing.TB, store db.Store, triggers string, cfg trigger.ManagerConfig) *trigger.Manager {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = dbtest.Logger(t)
	}
	mgr, err := trigger.NewManager(store, Triggers(t, triggers), cfg)
	if err != nil {
		t.Fatalf("trigger.NewManager: %v", err)
	}
	return mgr
}
