package postgres_test

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
)

// databases hands out migrated, empty databases, reused between tests.
var databases = dbtest.NewPostgresDatabases(func(ctx context.Context, url string) error {
	return postgres.Driver{}.Migrate(ctx, url, db.Head)
})

func TestMain(m *testing.M) {
	flag.Parse()
	// The cases wait on the server far more than they compute: unless
	// -test.parallel says otherwise, run more of them at once than the
	// default GOMAXPROCS.
	parallel := false
	flag.Visit(func(f *flag.Flag) { parallel = parallel || f.Name == "test.parallel" })
	if !parallel {
		_ = flag.Set("test.parallel", "8")
	}
	code := m.Run()
	if err := databases.Close(); err != nil {
		// Every test has passed or failed by now: a drop that fails
		// (the server too busy to take the connection in time) leaves
		// databases that a later run sweeps after three hours, so it is
		// reported, not counted as a failure of the package.
		fmt.Fprintln(os.Stderr, "warning: drop the test databases (a later run sweeps them):", err)
	}
	os.Exit(code)
}

// execModes are pgx's query exec modes (the default_query_exec_mode URL
// parameter): the default prepares and caches named statements; the
// others are what connection poolers such as PgBouncer need (exec and
// simple_protocol prepare nothing that outlives a query).
var execModes = []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"}

// withParam returns rawURL with the query parameter key set to value.
func withParam(t *testing.T, rawURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse test database URL: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// openStore returns a store on a migrated, empty database of its own.
func openStore(t *testing.T) *postgres.Store {
	t.Helper()
	return openURL(t, databases.URL(t))
}

// openURL opens a store on a migrated database and closes it in
// t.Cleanup.
func openURL(t *testing.T, rawURL string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), rawURL, db.Options{})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// inEveryMode runs a storage suite once per exec mode, each store on a
// database of its own.
func inEveryMode(t *testing.T, suite func(t *testing.T, open dbtest.OpenFunc)) {
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			suite(t, func(t *testing.T) db.Store {
				return openURL(t, withParam(t, databases.URL(t), "default_query_exec_mode", mode))
			})
		})
	}
}

func TestExercise(t *testing.T) {
	inEveryMode(t, dbtest.Exercise)
}

func TestExerciseBatch(t *testing.T) {
	inEveryMode(t, dbtest.ExerciseBatch)
}

func TestExerciseStoredStates(t *testing.T) {
	dbtest.ExerciseStoredStates(t, func(t *testing.T) (db.Store, dbtest.StoredStateFunc) {
		url := databases.URL(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return openURL(t, url), func(t *testing.T, id int64) int {
			var state int
			if err := conn.QueryRow(t.Context(), `SELECT state FROM stream WHERE id = $1`, id).Scan(&state); err != nil {
				t.Fatalf("read the state column of stream %d: %v", id, err)
			}
			return state
		}
	})
}
