package db

import (
	"context"
	"io/fs"

	"github.com/winchester-go/winchester/stream"
)

// MigrationDriver is the optional capability of a Driver to manage its
// schema. Both drivers implement it with golang-migrate and the same
// version numbers.
type MigrationDriver interface {
	// Migrations returns the embedded migration files, named
	// NNNNNN_title.up.sql and NNNNNN_title.down.sql.
	Migrations() fs.FS
	// Migrate moves the schema at rawURL to target: a version number, 0
	// for base (no schema), or Head for the newest. Concurrent calls from
	// several processes neither fail nor apply a migration twice.
	Migrate(ctx context.Context, rawURL string, target int) error
	// SchemaVersion returns the applied version (0: none) and whether the
	// last migration failed half way (dirty).
	SchemaVersion(ctx context.Context, rawURL string) (version uint, dirty bool, err error)
	// ForceVersion records version as applied without running anything
	// (the repair after a dirty migration).
	ForceVersion(ctx context.Context, rawURL string, version int) error
}

// Head is the Migrate target meaning "the newest version".
const Head = -1

// Fixture is a set of rows with explicit ids, for tests and conformance
// vectors. Open streams are those in state active; when several active
// streams share a name and key (possible in the original's data, which had
// no unique key), only the first listed is loaded open and the others are
// loaded closed, so the unique open key holds.
type Fixture struct {
	Events  []FixtureEvent
	Streams []FixtureStream
}

// FixtureEvent is one event row with its id.
type FixtureEvent struct {
	ID    int64
	Event stream.Event
}

// FixtureStream is one stream row (ID, Name, State, SerialNo, times,
// DistinguishedBy; Key is computed) with the ids of its events.
type FixtureStream struct {
	Stream   stream.Stream
	EventIDs []int64
}

// FixtureLoader is the optional capability of a Store to insert fixture
// rows with their ids (and move id sequences past them).
type FixtureLoader interface {
	LoadFixture(ctx context.Context, f Fixture) error
}
