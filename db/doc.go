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
//     every library error to the sentinels in one function.
//  2. End the implementation files with compile-time guards
//     (var _ db.Store = (*Store)(nil)).
//  3. Register the driver from init: db.Register("scheme", Driver{}).
//  4. Embed migrations NNNNNN_title.{up,down}.sql with the same version
//     numbers as the other drivers.
//  5. Call dbtest.Exercise (and ExerciseMigrations, ExerciseBatch for the
//     capabilities it has) from the driver's tests and make them pass.
//  6. Document the URL form in the package doc.
package db
