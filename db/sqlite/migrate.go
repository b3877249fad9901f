package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	msqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/winchester-go/winchester/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations implements db.MigrationDriver.
func (Driver) Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return sub
}

// Migrate implements db.MigrationDriver: it moves the schema at rawURL to
// target (a version, 0 for base, db.Head for the newest) under the
// migration file lock.
func (d Driver) Migrate(ctx context.Context, rawURL string, target int) error {
	return d.withDB(ctx, rawURL, func(loc location, sqlDB *sql.DB) error {
		return withMigrateLock(ctx, loc, func() error { return migrateDB(ctx, sqlDB, target) })
	})
}

// SchemaVersion implements db.MigrationDriver.
func (d Driver) SchemaVersion(ctx context.Context, rawURL string) (version uint, dirty bool, err error) {
	err = d.withDB(ctx, rawURL, func(_ location, sqlDB *sql.DB) error {
		var err error
		version, dirty, err = schemaVersion(ctx, sqlDB)
		return err
	})
	return version, dirty, err
}

// ForceVersion implements db.MigrationDriver.
func (d Driver) ForceVersion(ctx context.Context, rawURL string, version int) error {
	return d.withDB(ctx, rawURL, func(loc location, sqlDB *sql.DB) error {
		return withMigrateLock(ctx, loc, func() error {
			m, src, err := newMigrate(sqlDB)
			if err != nil {
				return err
			}
			defer src.Close()
			if err := m.Force(version); err != nil {
				return fmt.Errorf("force version %d: %w", version, err)
			}
			return nil
		})
	})
}

// withDB opens a single-connection handle on rawURL for a migration
// command.
func (Driver) withDB(ctx context.Context, rawURL string, fn func(loc location, sqlDB *sql.DB) error) error {
	loc, err := parseURL(rawURL)
	if err != nil {
		return err
	}
	if err := loc.check(); err != nil {
		return err
	}
	sqlDB, err := sql.Open("sqlite", loc.dsn())
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", loc.path, err)
	}
	sqlDB.SetMaxOpenConns(1)
	if err := ping(ctx, sqlDB); err != nil {
		if cantOpen(err) {
			err = fmt.Errorf("%v: check that this user may read and write the file and its directory, or fix the database URL", err)
		} else {
			err = (*Store)(nil).translate(err)
		}
		return errors.Join(fmt.Errorf("sqlite: open %s: %w", loc.path, err), sqlDB.Close())
	}
	if err := fn(loc, sqlDB); err != nil {
		return errors.Join(fmt.Errorf("sqlite: %s: %w", loc.path, err), sqlDB.Close())
	}
	return sqlDB.Close()
}

// newMigrate returns a migrate instance on sqlDB with the embedded
// migrations. Close src when done; do not Close the Migrate (that would
// close sqlDB).
func newMigrate(sqlDB *sql.DB) (*migrate.Migrate, interface{ Close() error }, error) {
	src, err := iofs.New(migrationFiles, "migrations")
	if err != nil {
		return nil, nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	drv, err := msqlite.WithInstance(sqlDB, &msqlite.Config{})
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("prepare migrations table: %w", err), src.Close())
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("prepare migrations: %w", err), src.Close())
	}
	return m, src, nil
}

// migrateDB moves the schema of sqlDB to target. No change is success.
func migrateDB(ctx context.Context, sqlDB *sql.DB, target int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m, src, err := newMigrate(sqlDB)
	if err != nil {
		return err
	}
	defer src.Close()
	switch {
	case target == db.Head:
		err = m.Up()
	case target == 0:
		err = m.Down()
	case target > 0:
		err = m.Migrate(uint(target))
	default:
		return fmt.Errorf("invalid migration target %d", target)
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		var dirty migrate.ErrDirty
		if errors.As(err, &dirty) {
			return fmt.Errorf("schema is dirty at version %d (a migration failed half way); repair it and run winchester_db force: %w", dirty.Version, err)
		}
		return fmt.Errorf("migrate to %d: %w", target, err)
	}
	return nil
}

// schemaVersion reads golang-migrate's version table (0 when absent).
func schemaVersion(ctx context.Context, q querier) (version uint, dirty bool, err error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, msqlite.DefaultMigrationsTable).Scan(&n); err != nil {
		return 0, false, err
	}
	if n == 0 {
		return 0, false, nil
	}
	var v int64
	err = q.QueryRowContext(ctx, `SELECT version, dirty FROM `+msqlite.DefaultMigrationsTable+` LIMIT 1`).Scan(&v, &dirty)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && v < 0) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return uint(v), dirty, nil
}

// headVersion is the newest embedded migration version.
func headVersion() (uint, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return 0, fmt.Errorf("sqlite: read embedded migrations: %w", err)
	}
	var head uint64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("sqlite: embedded migration %s: bad version: %v", e.Name(), err)
		}
		head = max(head, v)
	}
	return uint(head), nil
}

// pingWait bounds how long ping retries a refused first connection.
const pingWait = 5 * time.Second

// ping makes the first connection. SQLite may refuse its pragmas
// (journal_mode(WAL) in particular) with SQLITE_BUSY at once, without
// waiting for busy_timeout, while another process migrates the file; ping
// retries that for up to pingWait.
func ping(ctx context.Context, sqlDB *sql.DB) error {
	deadline := time.Now().Add(pingWait)
	for {
		err := sqlDB.PingContext(ctx)
		if err == nil || !errors.Is((*Store)(nil).translate(err), db.ErrAborted) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}
