// Package sqlite is the embedded storage driver: db.Store on a single
// SQLite file through the pure-Go modernc.org/sqlite (no cgo, no server).
// It is the default store, so pipeline_worker and winchester run with no
// database server at all; PostgreSQL (db/postgres) is the choice for
// several hosts or high rates.
//
// # URL
//
//	sqlite:///abs/path/winchester.db   a database file (absolute path)
//	sqlite://:memory:                  a private in-memory database
//
// A query string is passed on to the SQLite driver (for example
// ?_pragma=synchronous(NORMAL)). Relative paths and the original's
// SQLAlchemy forms are resolved by the command line before they reach this
// package. The driver registers itself for the "sqlite" scheme; import it
// for its side effect or call Open directly.
//
// # Connections and concurrency
//
// Every connection is opened with journal_mode(WAL), busy_timeout(5000),
// foreign_keys(1) and _txlock=immediate, and the pool holds exactly one
// connection (SetMaxOpenConns(1)). All operations of a process are
// therefore serialised on that connection; write transactions begin with
// BEGIN IMMEDIATE, so they never deadlock on a lock upgrade, and other
// processes wait up to five seconds for the write lock (busy_timeout; a
// URL may set its own, e.g. ?_pragma=busy_timeout(1000)) before an
// operation fails with db.ErrAborted, which callers retry. A consequence
// for callers: inside Store.InTx use only the db.Ops given to the function;
// calling the Store itself there would wait for the connection the
// transaction holds, forever; the Store detects this through the context
// InTx gives the function and fails such a call at once. The single
// connection also keeps a ":memory:" database alive for the lifetime of
// the Store.
//
// # Schema
//
// Events keep their traits in one typed JSON column (db.EncodeTraits) and
// all times are INTEGER epoch microseconds. Streams carry a canonical
// stream_key with a partial unique index over (name, stream_key) where
// open, so two open streams with one key cannot exist. Migrations are
// embedded (migrations/NNNNNN_title.{up,down}.sql) and run by
// golang-migrate; Migrate and Open with Options.Migrate hold an exclusive
// OS file lock on "<database>.migrate.lock" while they run, so several
// processes upgrading at once neither fail nor apply a migration twice;
// the lock file is removed when the migration ends.
// Open refuses a database whose schema version differs from the binary's
// with db.ErrSchemaOutOfDate, naming the fix (winchester_db upgrade head).
//
// Strings are stored as JSON text, so they must be valid UTF-8: invalid
// bytes read back as U+FFFD. Floats that are NaN or infinite cannot be
// stored (SaveEvents refuses them).
//
// Durability is SQLite's default for WAL (synchronous FULL: every commit
// is synced). Operators who prefer throughput over the last transactions
// before a power loss can add ?_pragma=synchronous(NORMAL) to the URL.
package sqlite
