package db

import (
	"context"
	"fmt"
	"io/fs"
	"time"

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

// StreamKey names the open stream of a trigger (Name) and canonical
// distinguishing key (Key, stream.Key of the distinguishing values).
type StreamKey struct{ Name, Key string }

// BatchNewStream is one stream to create with BatchIngester.CreateStreams.
type BatchNewStream struct {
	NewStream
	// Closed creates the stream already closed for new events (it expired
	// within the batch that made it), as CreateStream followed by
	// CloseStream would leave it. A closed stream does not hold its key's
	// open slot, so its creation never loses a race.
	Closed bool
}

// BatchIngester is the optional capability of a store, or of the Ops of
// one of its transactions, to do the ingest path's stream operations for
// many streams in a few statements (one round trip each) rather than one
// or two per stream. Each method has the semantics of the single-stream
// operation of Ops, applied to every element in order, in the caller's
// transaction (or in its own, called on the Store). An invalid element
// fails the whole call and writes nothing. The trigger manager uses it when
// the Ops it is given implements it (PostgreSQL) and falls back to the
// single-stream operations otherwise (SQLite, where a statement costs no
// round trip).
type BatchIngester interface {
	// OpenStreams is OpenStream for every key: it returns the open, active
	// stream of each key that has one; keys without one are absent from
	// the map (not an error), and a key given twice is looked up once.
	// Inside a transaction the keys themselves are locked until commit
	// (the driver's own key locks, taken in a fixed order before any row
	// lock), then the rows, in key order (Name, then Key, both compared
	// bytewise). While a transaction holds a key no other batch can create
	// or extend a stream of it, so batches with overlapping keys neither
	// deadlock nor have their creates refused.
	OpenStreams(ctx context.Context, keys []StreamKey) (map[StreamKey]stream.Stream, error)
	// CloseStreams is CloseStream for every id: each open stream is
	// closed for new events; a closed one is left as is. ErrNotFound,
	// naming the ids, when some stream does not exist (the existing ones
	// are closed nonetheless).
	CloseStreams(ctx context.Context, ids []int64) error
	// CreateStreams is CreateStream for every element, in order: ids[i]
	// and created[i] are the result for ps[i]. created[i] is false, ids[i]
	// is 0 and nothing is written for ps[i] (its events are not linked)
	// when an open stream with the same name and key exists: one stored
	// before, one a concurrent ingester made (the call waits for its
	// transaction to end), or an earlier open element of ps. An element
	// with Closed set is always created. The caller looks up the refused
	// ones again.
	CreateStreams(ctx context.Context, ps []BatchNewStream) (ids []int64, created []bool, err error)
	// AppendToStreams is AppendToStream for every element: events are
	// linked and columns updated only on streams still open and active.
	// conflicted lists, once each and in input order, the ids of the
	// streams that are not (claimed by a worker, closed or gone): nothing
	// is written for them, and that is not an error (AppendToStream's
	// ErrConflict). Several elements for one stream apply in order: the
	// last one's columns win (a zero FireTimestamp keeps the one before)
	// and every element's events are linked.
	AppendToStreams(ctx context.Context, ps []AppendParams) (conflicted []int64, err error)
}

// Optimizer is the optional capability of a store to refresh what its
// query planner knows about the data (SQLite's PRAGMA optimize), run now
// and then by the built-in optimize_database job. PostgreSQL's autovacuum
// does this by itself, so its driver does not implement it.
type Optimizer interface {
	// Optimize refreshes the planner's statistics where they are stale.
	// It is quick when nothing is.
	Optimize(ctx context.Context) error
}

// StateCounter is the optional capability of a Store to count its streams
// by state without reading every row. A console's overview asks for these
// counts on every load, so on a large table they must not cost a scan.
type StateCounter interface {
	// CountStreamsByState returns the number of streams in each state
	// (states without streams may be absent). A count of at least
	// exactBelow may be the database's estimate rather than an exact
	// count; estimated lists the states whose counts are estimates.
	CountStreamsByState(ctx context.Context, exactBelow int64) (counts map[stream.State]int64, estimated []stream.State, err error)
}

// EncodedEvents are events made ready to store ahead of a transaction by
// EncodeEvents: checked against the storage limits and their traits
// encoded. A caller that stores many batches prepares the next batch's
// events while a transaction writes the current one. The zero value holds
// no events.
type EncodedEvents struct {
	events []stream.Event
	traits []string
}

// EncodeEvents checks events against stream.StorageLimits (the error
// names the first event beyond them, by index, wrapping
// stream.ErrInvalidEvent) and encodes their traits (EncodeTraits). It does
// no I/O; the events are not copied and must not be changed afterwards.
func EncodeEvents(events []stream.Event) (EncodedEvents, error) {
	limits := stream.StorageLimits()
	e := EncodedEvents{events: events, traits: make([]string, len(events))}
	for i, ev := range events {
		if err := limits.CheckEvent(ev); err != nil {
			return EncodedEvents{}, fmt.Errorf("event %d: %w", i, err)
		}
		e.traits[i] = string(EncodeTraits(ev.Traits))
	}
	return e, nil
}

// Len returns the number of events.
func (e EncodedEvents) Len() int { return len(e.events) }

// Event returns the i-th event and its encoded traits.
func (e EncodedEvents) Event(i int) (ev stream.Event, traits string) {
	return e.events[i], e.traits[i]
}

// EncodedEventSaver is the optional capability of the Ops of a store (or
// of one of its transactions) to store events encoded beforehand:
// SaveEncodedEvents is SaveEvents of the events of e, without checking and
// encoding them again. The trigger manager uses it when it prepares
// batches ahead of their transactions (PostgreSQL implements it).
type EncodedEventSaver interface {
	SaveEncodedEvents(ctx context.Context, e EncodedEvents) (ids []int64, err error)
}

// ReplicaReporter is the optional capability of a Store to tell whether
// its database is a replica and how far behind its primary it is (the
// read store of database.read_url reports it on /readyz and in metrics).
type ReplicaReporter interface {
	// ReplicaStatus asks the server; an unreachable one is an error
	// (ErrUnavailable).
	ReplicaStatus(ctx context.Context) (ReplicaStatus, error)
}

// ReplicaStatus is a database's replication state as ReplicaStatus found
// it.
type ReplicaStatus struct {
	// InRecovery: the server is a standby replaying its primary's WAL
	// (PostgreSQL's pg_is_in_recovery()); false for a primary.
	InRecovery bool
	// Lag is how long ago the newest replayed transaction committed on
	// the primary, or 0 when the replica has replayed all the WAL it
	// received (an idle primary does not make a caught-up replica look
	// late). Always 0 when not in recovery.
	Lag time.Duration
}
