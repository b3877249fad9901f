package conformance

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/db/sqlite"
)

// Migrated stores for the storage-backed areas, reused between cases:
// copies of a migrated SQLite file, and PostgreSQL databases emptied
// between cases.
var (
	sqliteFiles = dbtest.NewMigratedFiles(func(path string) string { return "sqlite://" + path },
		func(ctx context.Context, url string) error { return sqlite.Driver{}.Migrate(ctx, url, db.Head) })
	pgDatabases = dbtest.NewPostgresDatabases(func(ctx context.Context, url string) error {
		return postgres.Driver{}.Migrate(ctx, url, db.Head)
	})
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := sqliteFiles.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "remove the template database:", err)
	}
	if err := pgDatabases.Close(); err != nil {
		// Every test has passed or failed by now: a drop that fails
		// (the server too busy to take the connection in time) leaves
		// databases that a later run sweeps after three hours, so it is
		// reported, not counted as a failure of the package.
		fmt.Fprintln(os.Stderr, "warning: drop the test databases (a later run sweeps them):", err)
	}
	os.Exit(code)
}
