package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/winchester-go/winchester/db"
)

func init() {
	db.Register("postgres", Driver{})
	db.Register("postgresql", Driver{})
}

// Driver opens PostgreSQL stores; it is registered for the postgres and
// postgresql URL schemes.
type Driver struct{}

// Open connects to the database at rawURL (see the package doc for the
// form). See Open.
func (Driver) Open(ctx context.Context, rawURL string, opts db.Options) (db.Store, error) {
	return Open(ctx, rawURL, opts)
}

// ReadApplicationName is the application_name of the sessions of a
// read-only store (db.Options.ReadOnly) whose URL sets none: it tells
// them apart in pg_stat_activity.
const ReadApplicationName = "winchester-read"

// Store is a PostgreSQL store. It is safe for concurrent use.
type Store struct {
	ops
	pool *pgxpool.Pool
}

// Open connects to the database at rawURL and checks that its schema is at
// the version this binary expects: db.ErrSchemaOutOfDate otherwise, unless
// opts.Migrate is set, in which case it migrates to the newest version
// first.
func Open(ctx context.Context, rawURL string, opts db.Options) (*Store, error) {
	cfg, err := parseConfig(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		if opts.Migrate {
			return nil, errors.New("postgres: a read-only store cannot migrate the schema")
		}
		// The server refuses every write in these sessions, whatever
		// the code above does (SET default_transaction_read_only = off
		// aside, which nothing here sends).
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
		if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
			cfg.ConnConfig.RuntimeParams["application_name"] = ReadApplicationName
		}
	}
	if opts.Migrate {
		if err := (Driver{}).Migrate(ctx, rawURL, db.Head); err != nil {
			return nil, err
		}
	}
	if opts.StatementFunc != nil {
		cfg.ConnConfig.Tracer = statementTracer(opts.StatementFunc)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", db.Redact(rawURL), interpretError(err))
	}
	s := &Store{ops: ops{q: pool, pool: pool, mode: cfg.ConnConfig.DefaultQueryExecMode}, pool: pool}
	if err := s.checkSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func parseConfig(rawURL string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// The parse error repeats the URL, password included.
		return nil, fmt.Errorf("postgres: invalid database URL %s", db.Redact(rawURL))
	}
	return cfg, nil
}

// statementTracer reports every statement a connection sends to
// db.Options.StatementFunc.
type statementTracer func(string)

func (f statementTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	f(data.SQL)
	return ctx
}

func (statementTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (statementTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (f statementTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	f(data.SQL)
}

func (statementTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// checkSchema compares the applied schema version with the newest
// embedded migration.
func (s *Store) checkSchema(ctx context.Context) error {
	version, dirty, err := readVersion(ctx, s.pool)
	if err != nil {
		return err
	}
	want := latestVersion()
	if dirty {
		return fmt.Errorf("%w: version %d is dirty (a migration failed half way); repair the schema, then run `winchester_db -c <config> force %d` and `winchester_db -c <config> upgrade head`",
			db.ErrSchemaOutOfDate, version, version)
	}
	if version < want {
		return fmt.Errorf("%w: database has version %d, this binary needs %d; run `winchester_db -c <config> upgrade head`",
			db.ErrSchemaOutOfDate, version, want)
	}
	if version > want {
		return fmt.Errorf("%w: database has version %d, newer than the %d this binary knows; run a newer binary (or `winchester_db -c <config> downgrade %d` with the newer winchester_db)",
			db.ErrSchemaOutOfDate, version, want, want)
	}
	return nil
}

// Close closes every connection of the pool; calls made after Close fail
// with db.ErrUnavailable.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// InTx runs fn in one READ COMMITTED transaction: committed when fn
// returns nil, rolled back otherwise (fn's error is returned unchanged,
// joined with a rollback failure if any).
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx db.Ops) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin transaction: %w", interpretError(err))
	}
	if err := fn(ctx, &ops{q: tx, mode: s.mode}); err != nil {
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("postgres: rollback: %w", interpretError(rbErr)))
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", interpretError(err))
	}
	return nil
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ops implements db.Ops on a pool (pool set: each method in its own
// transaction) or inside a caller's transaction (pool nil).
type ops struct {
	q    querier
	pool *pgxpool.Pool
	// mode is the connections' default query execution mode.
	mode pgx.QueryExecMode
}

// planned returns the arguments of a listing or counting query (the
// filters of FindStreams, FindEvents and their counts) so that the server
// plans every execution with its parameter values. A statement prepared
// once and cached (the default mode) is planned generically after five
// executions, and with filters as varied as "the state nobody is in" and
// "the state of two thirds of the table" a generic plan reads a million
// rows to return none. Other modes already plan each execution.
func (o *ops) planned(args []any) []any {
	if o.mode == pgx.QueryExecModeCacheStatement {
		return append([]any{pgx.QueryExecModeExec}, args...)
	}
	return args
}

// inTx runs fn in a transaction: a new one when o is not inside one, or
// the caller's.
func (o *ops) inTx(ctx context.Context, fn func(q querier) error) error {
	if o.pool == nil {
		return fn(o.q)
	}
	tx, err := o.pool.Begin(ctx)
	if err != nil {
		return interpretError(err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, interpretError(rbErr))
		}
		return err
	}
	return interpretError(tx.Commit(ctx))
}

// interpretError translates pgx and PostgreSQL errors into the db
// sentinels, keeping the original text. nil stays nil; an error already
// translated is returned unchanged.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{db.ErrNotFound, db.ErrConflict, db.ErrAborted, db.ErrDuplicate, db.ErrUnavailable, db.ErrSchemaOutOfDate} {
		if errors.Is(err, s) {
			return err
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return db.ErrNotFound
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		if refused := refusedConnection(connectErr); refused != nil {
			return refused // permanent: retrying changes nothing
		}
		// refused, unreachable, timed out (connect_timeout), starting up
		return fmt.Errorf("%w: %v", db.ErrUnavailable, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %s", db.ErrDuplicate, pgErr.Message)
		case pgErr.Code == "40001", // serialization_failure
			pgErr.Code == "40P01": // deadlock_detected
			return fmt.Errorf("%w: %s", db.ErrAborted, pgErr.Message)
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now
			pgErr.Code == "53300": // too_many_connections
			return fmt.Errorf("%w: %s", db.ErrUnavailable, pgErr.Message)
		}
		return fmt.Errorf("postgres: %s", pgErr.Error())
	}
	var netErr net.Error
	if errors.As(err, &netErr) ||
		errors.Is(err, puddle.ErrClosedPool) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, driver.ErrBadConn) { // database/sql, which golang-migrate uses
		return fmt.Errorf("%w: %v", db.ErrUnavailable, err)
	}
	if pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %v", db.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %v", err)
}

// refusedConnection returns the error for a server that answered but
// refused the connection as configured (wrong password, no such role or
// database, no permission to connect): a mistake in the database URL or in
// the server's setup, which retrying does not fix. nil for other failures.
func refusedConnection(ce *pgconn.ConnectError) error {
	var pgErr *pgconn.PgError
	if !errors.As(ce, &pgErr) {
		return nil
	}
	var fix string
	switch {
	case pgErr.Code == "28P01": // invalid_password
		fix = "check the user and password of the database URL (or the server's pg_hba.conf)"
	case pgErr.Code == "3D000": // invalid_catalog_name
		fix = "create the database, or fix its name in the database URL"
	case pgErr.Code == "42501": // insufficient_privilege
		fix = "grant the user CONNECT on the database, or use another user"
	case strings.HasPrefix(pgErr.Code, "28"): // invalid_authorization_specification
		fix = "check the user of the database URL and the server's pg_hba.conf"
	default:
		return nil
	}
	where := "the server"
	if ce.Config != nil {
		where = fmt.Sprintf("%s:%d as %s", ce.Config.Host, ce.Config.Port, ce.Config.User)
	}
	return fmt.Errorf("postgres: %s refused the connection: %s (SQLSTATE %s): %s", where, pgErr.Message, pgErr.Code, fix)
}

// Compile-time guards.
var (
	_ db.Driver          = Driver{}
	_ db.MigrationDriver = Driver{}
	_ db.Store           = (*Store)(nil)
	_ db.FixtureLoader   = (*Store)(nil)
	_ db.ReplicaReporter = (*Store)(nil)
	_ db.Ops             = (*ops)(nil)
)
