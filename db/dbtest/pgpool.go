package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// MigrateFunc migrates the database at rawURL to the newest schema
// (a driver's db.MigrationDriver.Migrate to db.Head).
type MigrateFunc func(ctx context.Context, rawURL string) error

// PostgresDatabases hands out migrated, empty databases of the test
// server (TEST_DATABASE_URL) and reuses them: when a test is done with a
// database, its tables are emptied (TRUNCATE … RESTART IDENTITY, so ids
// start at 1 again) and the next test gets it. A suite of many cases thus
// migrates only as many databases as run at once.
//
// Each is a database of its own, not a schema, so it needs no search_path
// runtime parameter (which PgBouncer refuses) and its sessions run with
// synchronous_commit off (a database setting). A test binary declares one
// PostgresDatabases and calls Close from TestMain after m.Run; databases
// that a killed test binary left behind are dropped by the next binary
// that uses one, once they are a few hours old. It is safe for concurrent
// use.
type PostgresDatabases struct {
	migrate MigrateFunc

	sweep sync.Once
	mu    sync.Mutex
	free  []string // emptied, ready for the next test
	made  []string // every database made, for Close
	order []string // the tables in the order they are emptied
}

// NewPostgresDatabases returns a pool whose new databases are migrated
// with migrate.
func NewPostgresDatabases(migrate MigrateFunc) *PostgresDatabases {
	return &PostgresDatabases{migrate: migrate}
}

// pooledPrefix starts the name of every pooled database; the Unix time of
// its creation follows, so leftovers can be recognised and dropped.
const pooledPrefix = "wt_pool_"

// leftoverAge is the age after which a pooled database is taken for a
// leftover of a killed test binary.
const leftoverAge = 3 * time.Hour

// URL returns the URL of a migrated database with empty tables for t
// alone, and gives the database back to the pool in t.Cleanup (register
// the cleanup of stores opened on it after calling URL, so they close
// first). Without TEST_DATABASE_URL the test is skipped, or fails when CI
// is set.
func (p *PostgresDatabases) URL(t testing.TB) string {
	t.Helper()
	base := baseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p.sweep.Do(func() { sweepLeftovers(ctx, base) })
	name, err := p.take(ctx, base)
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.giveBack(ctx, base, name); err != nil {
			t.Errorf("give back test database %s: %v", name, err)
		}
	})
	u, err := databaseURL(base, name)
	if err != nil {
		t.Fatalf("%s: %v", PostgresURLEnv, err)
	}
	return u
}

// take returns a free database or makes a new one.
func (p *PostgresDatabases) take(ctx context.Context, base string) (string, error) {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		name := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return name, nil
	}
	p.mu.Unlock()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := pooledPrefix + strconv.FormatInt(time.Now().Unix(), 10) + "_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{name}.Sanitize()
	if err := execAdmin(ctx, base, `CREATE DATABASE `+ident); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	p.mu.Lock()
	p.made = append(p.made, name)
	p.mu.Unlock()
	// Test data need no durability (see withSearchPath).
	if err := execAdmin(ctx, base, `ALTER DATABASE `+ident+` SET synchronous_commit = off`); err != nil {
		return "", fmt.Errorf("configure database %s: %w", name, err)
	}
	u, err := databaseURL(base, name)
	if err != nil {
		return "", err
	}
	if err := p.migrate(ctx, u); err != nil {
		return "", fmt.Errorf("migrate database %s: %w", name, err)
	}
	return name, nil
}

// giveBack empties the tables of a database (all but the migration
// version table) and puts it back in the pool; a database that cannot be
// emptied is dropped instead.
func (p *PostgresDatabases) giveBack(ctx context.Context, base, name string) error {
	u, err := databaseURL(base, name)
	if err != nil {
		return err
	}
	if err := p.empty(ctx, u); err != nil {
		return errors.Join(fmt.Errorf("empty: %w", err), p.drop(ctx, base, name))
	}
	p.mu.Lock()
	p.free = append(p.free, name)
	p.mu.Unlock()
	return nil
}

// empty deletes the rows of every table of the current schema but
// schema_migrations, referencing tables first, and restarts the schema's
// sequences. (DELETE on a test's few rows takes milliseconds; TRUNCATE
// makes new files and takes hundreds on a busy server.)
func (p *PostgresDatabases) empty(ctx context.Context, rawURL string) error {
	conn, err := connect(ctx, rawURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Every database of the pool has the same tables: the order is
	// computed once.
	p.mu.Lock()
	order := p.order
	p.mu.Unlock()
	if order == nil {
		if order, err = deleteOrder(ctx, conn); err != nil {
			return err
		}
		p.mu.Lock()
		p.order = order
		p.mu.Unlock()
	}
	var sql strings.Builder
	sql.WriteString("SET LOCAL lock_timeout = '5s';") // a test that left a transaction open must not hang the suite
	for _, table := range order {
		sql.WriteString("DELETE FROM " + pgx.Identifier{table}.Sanitize() + ";")
	}
	sql.WriteString(`SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false)
  FROM pg_sequences WHERE schemaname = current_schema();`)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, sql.String()); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// deleteOrder returns the tables of the current schema but
// schema_migrations, each after every table that references it.
func deleteOrder(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT c.relname,
       coalesce(array_agg(r.relname) FILTER (WHERE r.relname IS NOT NULL AND r.oid <> c.oid), '{}')
  FROM pg_class c
  LEFT JOIN pg_constraint f ON f.confrelid = c.oid AND f.contype = 'f'
  LEFT JOIN pg_class r ON r.oid = f.conrelid
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname <> 'schema_migrations'
 GROUP BY c.relname`)
	if err != nil {
		return nil, err
	}
	referencedBy := map[string][]string{}
	var name string
	var refs []string
	_, err = pgx.ForEachRow(rows, []any{&name, &refs}, func() error {
		referencedBy[name] = refs
		return nil
	})
	if err != nil {
		return nil, err
	}
	order := []string{}
	done := map[string]bool{}
	for len(order) < len(referencedBy) {
		progress := false
		for _, table := range slices.Sorted(maps.Keys(referencedBy)) {
			if done[table] || slices.ContainsFunc(referencedBy[table], func(r string) bool { return !done[r] }) {
				continue
			}
			order = append(order, table)
			done[table] = true
			progress = true
		}
		if !progress {
			return nil, fmt.Errorf("the foreign keys of the tables form a cycle: %v", referencedBy)
		}
	}
	return order, nil
}

func (p *PostgresDatabases) drop(ctx context.Context, base, name string) error {
	p.mu.Lock()
	p.made = slices.DeleteFunc(p.made, func(n string) bool { return n == name })
	p.mu.Unlock()
	return execAdmin(ctx, base, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
}

// Close drops every database of the pool. Call it once the tests are done
// (TestMain, after m.Run).
func (p *PostgresDatabases) Close() error {
	base := os.Getenv(PostgresURLEnv)
	p.mu.Lock()
	made := append([]string(nil), p.made...)
	p.free = nil
	p.mu.Unlock()
	if base == "" || len(made) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, name := range made {
		errs = append(errs, p.drop(ctx, base, name))
	}
	return errors.Join(errs...)
}

// sweepLeftovers drops the pooled databases that killed test binaries
// left behind. Failures are ignored: leftovers only cost disk space.
func sweepLeftovers(ctx context.Context, base string) {
	conn, err := connect(ctx, base)
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1`, strings.ReplaceAll(pooledPrefix, "_", `\_`)+"%")
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		stamp, _, _ := strings.Cut(strings.TrimPrefix(name, pooledPrefix), "_")
		secs, err := strconv.ParseInt(stamp, 10, 64)
		if err != nil || time.Since(time.Unix(secs, 0)) < leftoverAge {
			continue
		}
		_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
	}
}

// databaseURL returns rawURL pointing at database name, without a
// search_path (the tables are in the database's public schema).
func databaseURL(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("want a postgres:// URL, got %q", redact(rawURL))
	}
	u.Path = "/" + name
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String(), nil
}
