package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/winchester-go/winchester/db"
)

func init() {
	db.Register("sqlite", Driver{})
}

// Driver opens SQLite stores; it is registered for the "sqlite" scheme.
type Driver struct{}

// Open implements db.Driver.
func (Driver) Open(ctx context.Context, rawURL string, opts db.Options) (db.Store, error) {
	return Open(ctx, rawURL, opts)
}

// memoryPath is the path of a private in-memory database.
const memoryPath = ":memory:"

// location is a parsed sqlite:// URL.
type location struct {
	path  string     // absolute file path or ":memory:"
	query url.Values // extra parameters for the SQLite driver
}

func (l location) memory() bool { return l.path == memoryPath }

// check reports a database file that cannot be opened because of the
// configuration rather than an outage: its directory is missing or is not
// a directory. Retrying does not fix these, so they are not
// db.ErrUnavailable.
func (l location) check() error {
	if l.memory() {
		return nil
	}
	dir := filepath.Dir(l.path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("sqlite: database %s: directory %s does not exist: create it, or fix the database URL", l.path, dir)
	case err != nil:
		return fmt.Errorf("sqlite: database %s: %w", l.path, err)
	case !st.IsDir():
		return fmt.Errorf("sqlite: database %s: %s is not a directory: fix the database URL", l.path, dir)
	}
	return nil
}

// parseURL reads sqlite:///abs/path.db and sqlite://:memory: (also
// sqlite:// and sqlite:///:memory:).
func parseURL(rawURL string) (location, error) {
	rest, ok := strings.CutPrefix(rawURL, "sqlite://")
	if !ok {
		return location{}, fmt.Errorf("sqlite: database URL %q: want sqlite:///abs/path.db or sqlite://:memory:", rawURL)
	}
	path, rawQuery, _ := strings.Cut(rest, "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return location{}, fmt.Errorf("sqlite: database URL %q: query: %v", rawURL, err)
	}
	switch {
	case path == "" || path == memoryPath || path == "/"+memoryPath:
		return location{path: memoryPath, query: query}, nil
	case !filepath.IsAbs(path):
		return location{}, fmt.Errorf("sqlite: database URL %q: the path must be absolute (sqlite:///abs/path.db)", rawURL)
	}
	return location{path: filepath.Clean(path), query: query}, nil
}

// dsn returns the modernc.org/sqlite data source name of l with the
// connection settings every connection gets.
func (l location) dsn() string {
	q := url.Values{}
	for k, vs := range l.query {
		q[k] = append([]string(nil), vs...)
	}
	if !slices.ContainsFunc(q["_pragma"], func(p string) bool { return strings.HasPrefix(p, "busy_timeout") }) {
		q.Add("_pragma", "busy_timeout(5000)")
	}
	q.Add("_pragma", "foreign_keys(1)")
	if !l.memory() {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	q.Set("_txlock", "immediate")
	return l.path + "?" + q.Encode()
}

// Store is a db.Store on one SQLite database. It is safe for concurrent
// use; operations are serialised on its single connection.
type Store struct {
	ops
	sqlDB  *sql.DB
	loc    location
	closed atomic.Bool
	// stmts are the hot statements, prepared once at Open (never later:
	// preparing on the pool from inside a transaction would wait for the
	// one connection the transaction holds).
	stmts map[string]*sql.Stmt
	// onStatement is db.Options.StatementFunc (nil: none).
	onStatement func(string)
}

// preparedSQL are the statements of the ingest and worker paths.
var preparedSQL = []string{
	insertEventSQL, eventByMessageIDSQL, openStreamSQL, createStreamSQL, linkSQL,
	appendTimesSQL, appendSQL[0], appendSQL[1], appendSQL[2], appendSQL[3],
	closeStreamSQL, readyFireSQL, readyExpireSQL, staleSQL, streamByIDSQL, serialSQL,
	claimFireSQL, claimExpireSQL, renewLeaseSQL, completeStreamSQL, purgeClaimedSQL,
}

// Open opens the SQLite database at rawURL (see the package doc for the
// URL forms). The file is created if it does not exist. Unless
// opts.Migrate is set, the schema must be at this binary's version:
// otherwise Open fails with db.ErrSchemaOutOfDate.
func Open(ctx context.Context, rawURL string, opts db.Options) (*Store, error) {
	if opts.ReadOnly {
		return nil, errors.New("sqlite: a SQLite database has no read replicas: read-only stores (database.read_url) need PostgreSQL")
	}
	loc, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if err := loc.check(); err != nil {
		return nil, err
	}
	sqlDB, err := sql.Open("sqlite", loc.dsn())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", loc.path, err)
	}
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	sqlDB.SetConnMaxLifetime(0)
	sqlDB.SetConnMaxIdleTime(0)
	s := &Store{sqlDB: sqlDB, loc: loc, onStatement: opts.StatementFunc}
	s.ops = ops{q: sqlDB, s: s}
	if err := s.open(ctx, opts); err != nil {
		return nil, errors.Join(err, sqlDB.Close())
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, opts db.Options) error {
	if err := ping(ctx, s.sqlDB); err != nil {
		if cantOpen(err) {
			// The directory exists (Open checked): the file or the
			// directory is not readable or writable by this user.
			return fmt.Errorf("sqlite: open %s: %v: check that this user may read and write the file and its directory, or fix the database URL", s.loc.path, err)
		}
		return fmt.Errorf("sqlite: open %s: %w", s.loc.path, s.translate(err))
	}
	if opts.Migrate {
		if err := withMigrateLock(ctx, s.loc, func() error {
			return migrateDB(ctx, s.sqlDB, db.Head)
		}); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", s.loc.path, err)
		}
	}
	version, dirty, err := schemaVersion(ctx, s.sqlDB)
	if err != nil {
		return fmt.Errorf("sqlite: %s: read schema version: %w", s.loc.path, s.translate(err))
	}
	head, err := headVersion()
	if err != nil {
		return err
	}
	switch {
	case s.loc.memory() && version != head:
		return fmt.Errorf("%w: the in-memory database has no schema; open it with db.Options{Migrate: true} (a private :memory: database cannot be upgraded by winchester_db -c <config> upgrade head)",
			db.ErrSchemaOutOfDate)
	case dirty:
		return fmt.Errorf("%w: database %s: migration %d failed half way (dirty); repair the schema, then run: winchester_db -c <config> force %d && winchester_db -c <config> upgrade head",
			db.ErrSchemaOutOfDate, s.loc.path, version, version-1)
	case version < head:
		return fmt.Errorf("%w: database %s is at schema version %d, this binary needs %d; run: winchester_db -c <config> upgrade head",
			db.ErrSchemaOutOfDate, s.loc.path, version, head)
	case version > head:
		return fmt.Errorf("%w: database %s is at schema version %d, newer than this binary's %d; upgrade the binary or run the newer binary's winchester_db -c <config> downgrade %d",
			db.ErrSchemaOutOfDate, s.loc.path, version, head, head)
	}
	s.stmts = make(map[string]*sql.Stmt, len(preparedSQL))
	for _, q := range preparedSQL {
		st, err := s.sqlDB.PrepareContext(ctx, q)
		if err != nil {
			return errors.Join(fmt.Errorf("sqlite: %s: prepare statements: %w", s.loc.path, s.translate(err)), s.closeStmts())
		}
		s.stmts[q] = st
	}
	return nil
}

func (s *Store) closeStmts() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// Close closes the database. Operations after Close fail with
// db.ErrUnavailable.
func (s *Store) Close() error {
	s.closed.Store(true)
	stmtErr := s.closeStmts()
	if err := errors.Join(stmtErr, s.sqlDB.Close()); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", s.loc.path, err)
	}
	return nil
}

// InTx implements db.Store: fn runs in one BEGIN IMMEDIATE transaction.
// The context fn receives is marked: while the transaction is open, a call
// on the Store itself with it (or a context derived from it) fails at once
// instead of waiting forever for the connection the transaction holds.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx db.Ops) error) error {
	return s.inTx(ctx, func(ctx context.Context, o ops) error { return fn(ctx, o) })
}

// errStoreInsideTx is the programming error of using the Store from inside
// its own InTx.
var errStoreInsideTx = errors.New("sqlite: the Store was called inside its own InTx; use the db.Ops given to the function (the transaction holds the only connection)")

// txGuardKey is the context key of the marker of InTx functions.
type txGuardKey struct{}

// txGuard marks an open transaction of a store.
type txGuard struct {
	s    *Store
	open atomic.Bool
}

// insideTx reports whether ctx belongs to a function running in an open
// transaction of s.
func (s *Store) insideTx(ctx context.Context) bool {
	g, ok := ctx.Value(txGuardKey{}).(*txGuard)
	return ok && g.s == s && g.open.Load()
}

func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, o ops) error) (err error) {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: begin transaction: store is closed: %w", db.ErrUnavailable)
	}
	if s.insideTx(ctx) {
		return errStoreInsideTx
	}
	s.statement("BEGIN IMMEDIATE")
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin transaction: %w", s.translate(err))
	}
	g := &txGuard{s: s}
	g.open.Store(true)
	defer g.open.Store(false)
	done := false
	defer func() {
		if !done { // fn panicked
			_ = tx.Rollback()
		}
	}()
	err = fn(context.WithValue(ctx, txGuardKey{}, g), ops{q: tx, s: s, tx: true})
	done = true
	if err != nil {
		s.statement("ROLLBACK")
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("sqlite: rollback: %w", s.translate(rbErr)))
		}
		return err
	}
	s.statement("COMMIT")
	if err := tx.Commit(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil { // database/sql rolled back
			return fmt.Errorf("sqlite: commit: %w", ctxErr)
		}
		return fmt.Errorf("sqlite: commit: %w", s.translate(err))
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ops implements db.Ops on the database (each method its own transaction)
// or inside a transaction (tx set).
type ops struct {
	q  querier
	s  *Store
	tx bool
}

// stmt returns the prepared statement of query for this ops (bound to the
// transaction inside one), or nil when query is not prepared.
func (o ops) stmt(ctx context.Context, query string) *sql.Stmt {
	st := o.s.stmts[query]
	if st == nil {
		return nil
	}
	if tx, ok := o.q.(*sql.Tx); ok {
		return tx.StmtContext(ctx, st)
	}
	return st
}

// errRow is a row that only reports an error.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// queryRow, query and exec run a statement on o, prepared when it is one
// of preparedSQL. Outside a transaction they refuse a context of an open
// InTx of the same store (see InTx).
func (o ops) queryRow(ctx context.Context, query string, args ...any) scanner {
	if !o.tx && o.s.insideTx(ctx) {
		return errRow{errStoreInsideTx}
	}
	o.s.statement(query)
	if st := o.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return o.q.QueryRowContext(ctx, query, args...)
}

func (o ops) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !o.tx && o.s.insideTx(ctx) {
		return nil, errStoreInsideTx
	}
	o.s.statement(query)
	if st := o.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return o.q.QueryContext(ctx, query, args...)
}

func (o ops) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if !o.tx && o.s.insideTx(ctx) {
		return nil, errStoreInsideTx
	}
	o.s.statement(query)
	if st := o.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return o.q.ExecContext(ctx, query, args...)
}

// atomic runs fn in a transaction: the current one, or a new one.
func (o ops) atomic(ctx context.Context, fn func(o ops) error) error {
	if o.tx {
		return fn(o)
	}
	return o.s.inTx(ctx, func(_ context.Context, o ops) error { return fn(o) })
}

// Compile-time guards.
var (
	_ db.Driver          = Driver{}
	_ db.Store           = (*Store)(nil)
	_ db.Ops             = ops{}
	_ db.FixtureLoader   = (*Store)(nil)
	_ db.MigrationDriver = Driver{}
)

// statement reports a statement to db.Options.StatementFunc.
func (s *Store) statement(query string) {
	if s.onStatement != nil {
		s.onStatement(query)
	}
}

// Optimize implements db.Optimizer with PRAGMA optimize, which analyses
// the tables whose statistics are stale, within a bounded effort.
func (s *Store) Optimize(ctx context.Context) error {
	if _, err := s.exec(ctx, `PRAGMA optimize=0x10002`); err != nil {
		return fmt.Errorf("sqlite: optimize: %w", s.translate(err))
	}
	return nil
}

var _ db.Optimizer = (*Store)(nil)
