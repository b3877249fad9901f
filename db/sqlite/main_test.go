package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/sqlite"
)

// files hands out copies of a migrated database file.
var files = dbtest.NewMigratedFiles(func(path string) string { return "sqlite://" + path },
	func(ctx context.Context, url string) error { return sqlite.Driver{}.Migrate(ctx, url, db.Head) })

func TestMain(m *testing.M) {
	code := m.Run()
	if err := files.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "remove the template database:", err)
	}
	os.Exit(code)
}
