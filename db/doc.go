// Package db is the storage contract shared by the drivers: the Store
// interface, its parameter types, the sentinel errors callers branch on, the
// driver registry (Register, Open by URL scheme) and the stored encoding of
// trait values.
//
// # Adding a driver
//
//  1. Implement Store (and the optional capabilities: MigrationDriver,
//     FixtureLoader, and BatchIngester on the Ops of a transaction where
//     round trips are expensive) in its own package under db/, translating
//     every library error to the sentinels in one function: a lost
//     compare-and-set is ErrConflict, a transaction the database aborted
//     because of concurrent work (deadlock, serialisation failure, busy
//     timeout) ErrAborted.
//  2. Select ready streams (ReadyStreams, ClaimStreams) and re-check a
//     claim (the ReadyFor of SetStreamState) with ReadySQL, the SQL form
//     of stream.Stream.ReadyTo, and name states in SQL through StateSQL,
//     never by number. Read, list, compare-and-set and renew the leased
//     rows of JobStore and SubscriberStore with the statements of
//     JobTable and SubscriberTable (LeasedTable.Statements).
//  3. End the implementation files with compile-time guards
//     (var _ db.Store = (*Store)(nil)).
//  4. Register the driver from init: db.Register("scheme", Driver{}).
//  5. Embed migrations NNNNNN_title.{up,down}.sql with the same version
//     numbers as the other drivers.
//  6. Call dbtest.Exercise, ExerciseTwoStores and ExerciseStoredStates
//     (and ExerciseMigrations, ExerciseBatch for the capabilities it has)
//     from the driver's tests and make them pass; dbtest.PostgresDatabases
//     and MigratedFiles hand out migrated stores quickly.
//  7. Document the URL form in the package doc.
package db
