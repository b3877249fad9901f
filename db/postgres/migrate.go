package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/winchester-go/winchester/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationsTable is golang-migrate's version table, in the first schema
// of the search_path.
const migrationsTable = "schema_migrations"

// Migrations returns the embedded migration files
// (NNNNNN_title.up.sql and .down.sql).
func (Driver) Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists: a build error otherwise
	}
	return sub
}

// latestVersion is the highest version of the embedded migrations.
func latestVersion() uint {
	var latest uint
	entries, _ := fs.ReadDir(Driver{}.Migrations(), ".")
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(num, 10, 32); err == nil && uint(v) > latest {
			latest = uint(v)
		}
	}
	return latest
}

// Migrate moves the schema at rawURL to target (a version, 0 for base, or
// db.Head). It holds golang-migrate's advisory lock while it works, so
// concurrent calls from several processes are safe: each migration is
// applied once, and a call that finds nothing to do returns nil.
// Cancelling ctx stops after the migration being applied; waiting for the
// lock itself is not interrupted.
func (d Driver) Migrate(ctx context.Context, rawURL string, target int) error {
	m, closeFn, err := d.migrator(ctx, rawURL)
	if err != nil {
		return err
	}
	defer closeFn()

	done := make(chan error, 1)
	go func() {
		switch {
		case target == db.Head:
			done <- m.Up()
		case target == 0:
			done <- m.Down()
		case target > 0:
			done <- m.Migrate(uint(target))
		default:
			done <- fmt.Errorf("invalid target version %d", target)
		}
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		m.GracefulStop <- true
		err = <-done
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("postgres: migrate %s to %s: %w", db.Redact(rawURL), targetName(target), interpretMigrateError(err))
	}
	return nil
}

// SchemaVersion returns the applied schema version (0: none) and whether
// the last migration failed half way. It only reads: a database without
// the version table is at version 0 and is left untouched.
func (Driver) SchemaVersion(ctx context.Context, rawURL string) (uint, bool, error) {
	cfg, err := parseConfig(rawURL)
	if err != nil {
		return 0, false, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return 0, false, fmt.Errorf("postgres: connect to %s: %w", db.Redact(rawURL), interpretError(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return readVersion(ctx, conn)
}

// ForceVersion records version as applied (and not dirty) without running
// any migration; -1 clears the record.
func (d Driver) ForceVersion(ctx context.Context, rawURL string, version int) error {
	m, closeFn, err := d.migrator(ctx, rawURL)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := m.Force(version); err != nil {
		return fmt.Errorf("postgres: force version %d: %w", version, interpretMigrateError(err))
	}
	return nil
}

// migrator builds a golang-migrate instance over the embedded files and a
// database/sql connection made from the same configuration as the pool
// (pool settings are not connection parameters).
func (d Driver) migrator(ctx context.Context, rawURL string) (*migrate.Migrate, func(), error) {
	cfg, err := parseConfig(rawURL)
	if err != nil {
		return nil, nil, err
	}
	sqlDB := stdlib.OpenDB(*cfg.ConnConfig)
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("postgres: connect to %s: %w", db.Redact(rawURL), interpretError(err))
	}
	var schema *string
	var searchPath string
	if err := sqlDB.QueryRowContext(ctx, `SELECT current_schema(), current_setting('search_path')`).Scan(&schema, &searchPath); err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("postgres: read current schema: %w", interpretError(err))
	}
	if schema == nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("postgres: no schema of the search_path (%s) exists in the database; create it first (CREATE SCHEMA …)", searchPath)
	}
	drv, err := migratepgx.WithInstance(sqlDB, &migratepgx.Config{MigrationsTable: migrationsTable})
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("postgres: prepare migrations: %w", interpretMigrateError(err))
	}
	src, err := iofs.New(d.Migrations(), ".")
	if err != nil {
		drv.Close()
		return nil, nil, fmt.Errorf("postgres: read embedded migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		drv.Close()
		return nil, nil, fmt.Errorf("postgres: prepare migrations: %w", err)
	}
	return m, func() { m.Close() }, nil
}

// interpretMigrateError keeps golang-migrate's message and maps the
// database error inside, if any, to the db sentinels.
func interpretMigrateError(err error) error {
	var dirty migrate.ErrDirty
	if errors.As(err, &dirty) {
		return fmt.Errorf("%w: version %d is dirty (a migration failed half way); repair the schema, then run `winchester_db -c <config> force %d`",
			db.ErrSchemaOutOfDate, dirty.Version, dirty.Version)
	}
	// golang-migrate's database.Error does not unwrap to the error of
	// the query it carries, and a failed migration is joined with the
	// failure to unlock: interpret every query error inside.
	for _, cause := range migrateCauses(err) {
		mapped := interpretError(cause)
		for _, sentinel := range []error{db.ErrUnavailable, db.ErrAborted} {
			if errors.Is(mapped, sentinel) {
				return fmt.Errorf("%w: %v", sentinel, err)
			}
		}
	}
	return fmt.Errorf("%v", err)
}

// migrateCauses returns err and the errors of the queries inside the
// golang-migrate database.Errors in its tree.
func migrateCauses(err error) []error {
	causes := []error{err}
	switch e := err.(type) {
	case database.Error:
		causes = append(causes, migrateCauses(e.OrigErr)...)
	case *database.Error:
		if e != nil {
			causes = append(causes, migrateCauses(e.OrigErr)...)
		}
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			causes = append(causes, migrateCauses(inner)...)
		}
	case interface{ Unwrap() error }:
		causes = append(causes, migrateCauses(e.Unwrap())...)
	}
	return causes
}

func targetName(target int) string {
	switch target {
	case db.Head:
		return "head"
	case 0:
		return "base"
	}
	return "version " + strconv.Itoa(target)
}

// readVersion reads golang-migrate's version table; a missing table is
// version 0.
func readVersion(ctx context.Context, q rowQuerier) (uint, bool, error) {
	var exists bool
	err := q.QueryRow(ctx, `SELECT to_regclass(quote_ident(current_schema()) || '.`+migrationsTable+`') IS NOT NULL`).Scan(&exists)
	if err != nil {
		return 0, false, fmt.Errorf("postgres: read schema version: %w", interpretError(err))
	}
	if !exists {
		return 0, false, nil
	}
	var version int64
	var dirty bool
	err = q.QueryRow(ctx, `SELECT version, dirty FROM `+migrationsTable+` LIMIT 1`).Scan(&version, &dirty)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && version < 0) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("postgres: read schema version: %w", interpretError(err))
	}
	return uint(version), dirty, nil
}

type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
