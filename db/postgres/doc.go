// Package postgres is the PostgreSQL driver of the Winchester store, built
// on pgx v5 (pgxpool). It registers itself for the URL schemes postgres://
// and postgresql://; import it for its side effect or call Open directly.
//
// # URL
//
//	postgres://user:password@host:5432/dbname?sslmode=disable&pool_max_conns=20&search_path=winchester
//
// Every libpq/pgx connection parameter is accepted (sslmode, connect_timeout,
// application_name, a search_path runtime parameter, ...), and so are the
// pgxpool settings (pool_max_conns, pool_min_conns, pool_max_conn_lifetime,
// pool_max_conn_idle_time, pool_health_check_period). The tables live in the
// first schema of the search_path; several independent stores can share a
// database by using one schema each.
//
// # PgBouncer and other transaction poolers
//
// The store works behind PgBouncer in pool_mode=transaction, where each
// transaction may run on a different server connection: it keeps no state
// in a session between transactions (its advisory locks are
// transaction-level, it never runs SET without LOCAL, never LISTENs and
// makes no temporary tables). Two settings are the user's:
//
//   - Add default_query_exec_mode=exec (or simple_protocol) to the URL.
//     pgx's default, cache_statement, prepares named statements on a
//     connection and reuses them; a pooler without prepared-statement
//     support (PgBouncer before 1.21, or max_prepared_statements = 0)
//     hands the next query to a connection that never saw them. Every
//     mode of pgx is tested with the storage suite, and exec and
//     simple_protocol through a real PgBouncer.
//   - PgBouncer passes only a few startup parameters (search_path is not
//     one of them before 1.20's track_extra_parameters): set the schema
//     with ALTER ROLE … SET search_path, or use the database's public
//     schema.
//
// Migrations (winchester_db, Open with db.Options{Migrate: true}) hold
// golang-migrate's session-level advisory lock: run them against the
// server itself, or through a pool in session mode, never through a
// transaction pool.
//
// # Schema and migrations
//
// The schema is created by the embedded golang-migrate files in
// migrations/ (the same version numbers as the SQLite driver), applied by
// winchester_db or by Open with db.Options{Migrate: true}. Migrations run
// under golang-migrate's PostgreSQL advisory lock (keyed by database,
// schema and migrations table), so any number of processes may upgrade at
// once: one applies each migration, the others wait and find nothing left
// to do. Open refuses a schema whose version is not the one this binary
// was built for, with db.ErrSchemaOutOfDate. Migration 000009 only sets
// fillfactor 85 on stream (a SHARE UPDATE EXCLUSIVE lock for an instant,
// no rewrite), so that appends which change no indexed column are HOT
// updates: they rewrite the row on its own page and touch no index
// (docs/PERFORMANCE.md, "Stream length, active streams, triggers").
//
// # Concurrency and locking protocol
//
// Every Ops method called on the Store runs in its own transaction (a
// single statement or an explicit transaction); InTx runs several in one
// transaction at READ COMMITTED. The database, not the callers, keeps the
// invariants:
//
//   - At most one open stream per (name, stream_key): a partial unique
//     index on (name, key_digest), the SHA-256 of the key (a generated
//     column), so keys of any length can be indexed (a btree entry holds
//     at most about 2.7 KB); lookups find the digest with the index and
//     compare the full key. CreateStream is INSERT … ON CONFLICT DO NOTHING RETURNING, so a
//     losing concurrent ingester gets created=false and looks the stream up
//     again.
//   - OpenStream inside a transaction is SELECT … FOR UPDATE: the row stays
//     locked until commit, so an ingester may read, recompute and write it
//     back without a worker claiming it in between.
//   - AppendToStream updates only while the stream is open and active
//     (a conditional UPDATE); a worker's claim makes it fail with
//     db.ErrConflict (D-9).
//   - Every state transition is a compare-and-set on state_serial_no
//     (UPDATE … WHERE id = $1 AND state_serial_no = $2); zero rows is
//     db.ErrConflict. Worker queries (ReadyStreams, StaleClaims) take no
//     locks: the compare-and-set decides who wins a stream.
//
// # Errors
//
// Every error from pgx passes through one function, interpretError: no
// rows is db.ErrNotFound, a unique violation db.ErrDuplicate, a
// serialisation failure or deadlock db.ErrAborted (run the transaction
// again; db.ErrConflict is only a lost compare-and-set), and a lost or refused
// connection (network errors, administrator shutdown, class 08, a closed
// pool) db.ErrUnavailable. The pool replaces broken connections by itself,
// so the next call after an ErrUnavailable works once the server is back.
// A server that answers but refuses the connection as configured (wrong
// password, no such role or database, no CONNECT privilege) is not
// ErrUnavailable: retrying cannot help, and the error names the fix.
package postgres
