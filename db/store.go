package db

import (
	"context"
	"errors"
	"time"

	"github.com/winchester-go/winchester/stream"
)

// Sentinel errors every driver returns (wrapped with context). No driver
// error type leaves a driver package: each driver translates its library's
// errors into these in one function.
var (
	// ErrNotFound: no such event or stream.
	ErrNotFound = errors.New("db: not found")
	// ErrConflict: a compare-and-set lost: the stream's state_serial_no or
	// state changed since the caller read it (the original's LockError),
	// or a conditional write found the stream no longer in the state it
	// requires. Another process owns the outcome now: callers drop the
	// work, or redo it from a fresh read; they never repeat the same write.
	ErrConflict = errors.New("db: conflict with a concurrent change")
	// ErrAborted: the transaction was aborted because of concurrent work
	// (a PostgreSQL serialisation failure or deadlock, SQLite's busy
	// timeout or a locked table). Nothing of it was written and no
	// compare-and-set was decided: running the same transaction again is
	// safe and usually succeeds.
	ErrAborted = errors.New("db: transaction aborted by concurrent work, run it again")
	// ErrDuplicate: a unique value (message_id) exists already.
	ErrDuplicate = errors.New("db: duplicate")
	// ErrUnavailable: the database cannot be reached or went away. Callers
	// that loop (workers, consumers) back off and retry; nothing is lost.
	ErrUnavailable = errors.New("db: database unavailable, retry later")
	// ErrSchemaOutOfDate: the schema is older (or newer) than this binary
	// expects. The error message names the command that fixes it.
	ErrSchemaOutOfDate = errors.New("db: schema version does not match")
	// ErrUnknownDriver: no driver is registered for a URL scheme.
	ErrUnknownDriver = errors.New("db: unknown driver")
)

// Store is the storage contract. It is the one deliberate producer-side
// interface of the project (like database/sql/driver): two drivers
// (db/postgres and db/sqlite) implement it and one suite (db/dbtest.Exercise)
// specifies its behaviour. Consumers that need a few methods declare their
// own narrow interface.
//
// Every method of Ops runs in its own transaction when called on the Store,
// or inside the caller's transaction when called on the Ops given to InTx.
// All times are UTC with microsecond precision; SQL never reads the database
// clock: "now" is always a parameter.
type Store interface {
	Ops
	// InTx runs fn in one transaction and commits it when fn returns nil;
	// otherwise it rolls back and returns fn's error. Inside fn use only the
	// given Ops (the SQLite driver has a single connection: using the Store
	// itself from fn would wait forever). Write transactions are serialised
	// on SQLite (BEGIN IMMEDIATE); on PostgreSQL they run at READ COMMITTED
	// with row locks (see OpenStream).
	InTx(ctx context.Context, fn func(ctx context.Context, tx Ops) error) error
	// Close releases the store's connections.
	Close() error
}

// Ops are the storage operations, usable on a Store or inside InTx.
type Ops interface {
	// ---- events

	// SaveEvents stores events. ids[i] is the new id of events[i], or 0 when
	// its message_id was already stored (before or earlier in the same
	// batch): a duplicate, which is not an error. Only a real duplicate
	// message_id counts as one.
	SaveEvents(ctx context.Context, events []stream.Event) (ids []int64, err error)
	// EventByMessageID returns a stored event; ErrNotFound if none.
	EventByMessageID(ctx context.Context, messageID string) (StoredEvent, error)
	// FindEvents lists events with the filters of p (spec 10.4).
	FindEvents(ctx context.Context, p FindEventsParams) ([]StoredEvent, error)
	// CountEvents counts the events FindEvents would return without limit.
	CountEvents(ctx context.Context, p FindEventsParams) (int64, error)
	// TrimEvents deletes up to limit events with timestamp < before, oldest
	// first, skipping every event linked to a stream that is not finished
	// (any state but completed). It returns the number deleted.
	TrimEvents(ctx context.Context, before time.Time, limit int) (int, error)
	// PurgeEvents deletes the events with the given ids and their links to
	// streams, whatever the streams' states; the streams stay (the
	// original's purge_events). Ids that name no event are ignored. It
	// returns the number of events deleted.
	PurgeEvents(ctx context.Context, ids []int64) (int, error)
	// EventTypes returns the distinct stored event types, sorted.
	EventTypes(ctx context.Context) ([]string, error)

	// ---- ingest: the trigger manager's path

	// OpenStream returns the stream of trigger name whose canonical
	// distinguishing key is key and that is still open for events (state
	// active and not closed), or ErrNotFound. Inside a transaction the row
	// is locked until commit (SELECT … FOR UPDATE on PostgreSQL; SQLite
	// serialises writers), so the caller may read-modify-write it.
	OpenStream(ctx context.Context, name, key string) (stream.Stream, error)
	// CreateStream inserts an open, active stream with serial 0 and links
	// p.EventIDs to it. created is false (and nothing is written) when an
	// open stream with the same name and key exists already (a concurrent
	// ingester made it): the caller looks it up again. The database itself
	// makes two open streams with one key impossible.
	CreateStream(ctx context.Context, p NewStream) (id int64, created bool, err error)
	// AppendToStream links events to an open stream and updates its
	// first/last/expire/fire columns and fire counts, only if the stream is
	// still open and active; otherwise ErrConflict (a worker claimed it:
	// look up or create again). It never changes state or state_serial_no.
	AppendToStream(ctx context.Context, p AppendParams) error
	// CloseStream marks an open stream closed for new events (its expiry
	// time has passed; it stays active until a worker expires it). A
	// closed stream keeps its key, and a new open stream may reuse it.
	CloseStream(ctx context.Context, id int64) error

	// ---- workers

	// ReadyStreams returns up to p.Limit streams ready for p.Action at
	// p.Now (stream.Stream.ReadyTo, the one definition of readiness), in
	// deadline order (fire_timestamp or expire_timestamp, then id). An
	// active stream with a fire_timestamp is never ready to expire: it
	// waits to fire, however late.
	ReadyStreams(ctx context.Context, p ReadyParams) ([]stream.Stream, error)
	// StaleClaims returns up to limit streams in firing or expiring whose
	// lease ended before now (their worker died), oldest lease first.
	StaleClaims(ctx context.Context, now time.Time, limit int) ([]stream.Stream, error)
	// SetStreamState is the compare-and-set of every state transition:
	// it applies p only if the stream's state_serial_no is p.SerialNo,
	// increments the serial, and returns the stream as now stored.
	// ErrConflict if the serial differs, ErrNotFound if the stream is gone.
	// Any transition out of active also closes the stream.
	SetStreamState(ctx context.Context, p SetStateParams) (stream.Stream, error)
	// ClaimStreams claims up to p.Limit streams ready for p.Action at
	// p.Now (the streams ReadyStreams would return, in the same deadline
	// order) in one statement: each moves to firing or expiring with
	// state_serial_no+1, claimed by p.Owner until p.LeaseUntil, closed for
	// new events, as SetStreamState with ReadyFor would move it. A stream
	// another transaction holds (a concurrent claim, an ingester's append)
	// is skipped rather than waited for, so concurrent claimers get
	// disjoint sets. It returns the claimed streams as now stored, in
	// deadline order; none (not an error) when nothing is ready.
	ClaimStreams(ctx context.Context, p ClaimParams) ([]stream.Stream, error)
	// RenewLeases is the compare-and-set of a lease renewal for many
	// claims: each stream still at its SerialNo gets lease_until =
	// leaseUntil and state_serial_no+1 (state and owner unchanged).
	// renewed maps the id of each renewed stream to its new serial; a
	// stream whose serial moved on, or that is gone, is absent (not an
	// error).
	RenewLeases(ctx context.Context, claims []StreamSerial, leaseUntil time.Time) (renewed map[int64]int64, err error)
	// CompleteStreams finishes many claimed streams at once: each stream
	// still at its SerialNo is purged (deleted with its event links, as
	// PurgeStream) when purge is set, otherwise moved to completed with
	// state_serial_no+1 and its claim cleared. lost lists, in input order,
	// the ids of the streams whose serial moved on or that are gone:
	// nothing is written for them, and that is not an error. On
	// PostgreSQL the streams are written in one statement.
	CompleteStreams(ctx context.Context, claims []StreamSerial, purge bool) (lost []int64, err error)
	// ResetStream moves error → retry_fire and expire_error → retry_expire
	// (a compare-and-set, serial+1); a stream in any other state is
	// returned unchanged.
	ResetStream(ctx context.Context, id int64) (stream.Stream, error)
	// PurgeStream deletes a stream and its event links (not the events).
	// With serialNo >= 0 it is a compare-and-set like SetStreamState.
	PurgeStream(ctx context.Context, id int64, serialNo int64) error

	// ---- reads

	// StreamByID returns a stream; ErrNotFound if none.
	StreamByID(ctx context.Context, id int64) (stream.Stream, error)
	// StreamEvents returns the events linked to a stream ordered by
	// timestamp then id, with all traits, in one or two queries.
	StreamEvents(ctx context.Context, streamID int64) ([]stream.Event, error)
	// StreamsEvents returns the events of several streams, each stream's
	// ordered as StreamEvents orders them, in one query (a few for very
	// many streams on SQLite). A stream without events, or that does not
	// exist, has no entry.
	StreamsEvents(ctx context.Context, streamIDs []int64) (map[int64][]stream.Event, error)
	// FindStreams lists streams with the filters of p (spec 10.4).
	FindStreams(ctx context.Context, p FindStreamsParams) ([]FoundStream, error)
	// CountStreams counts the streams FindStreams would return without
	// limit.
	CountStreams(ctx context.Context, p FindStreamsParams) (int64, error)
	// StreamHasDistTrait returns the stream's distinguishing value of name
	// when it has one (equal to value, when value is not the zero Value).
	StreamHasDistTrait(ctx context.Context, streamID int64, name string, value stream.Value) (stream.Value, bool, error)
	// StreamStats counts the streams by trigger name and state, and among
	// them those ready to fire and to expire at now (ReadyStreams'
	// condition) with the earliest deadline of each, in one query. Rows are
	// sorted by name, then state number; only (name, state) pairs that have
	// streams appear. It reads every stream row: for operators' summaries,
	// not for hot paths.
	StreamStats(ctx context.Context, now time.Time) ([]StreamStat, error)
}

// StoredEvent is an event as stored, with its row id and paging mark.
type StoredEvent struct {
	ID    int64
	Event stream.Event
	Mark  string // "_mark": "%x" of the id, "+%x" in ascending listings
}

// NewStream describes a stream to create.
type NewStream struct {
	Name            string
	Key             string // stream.Key(DistinguishedBy)
	DistinguishedBy map[string]stream.Value
	FirstEvent      time.Time
	LastEvent       time.Time
	ExpireTimestamp time.Time
	FireTimestamp   time.Time // zero: not ready to fire
	FireCounts      []int     // per fire criterion; nil once ready
	EventIDs        []int64
	Now             time.Time // creation time
	// DefinitionVersion is the version of the definitions the stream is
	// created under (0: none).
	DefinitionVersion int64
}

// AppendParams describes events added to an open stream and the stream's
// recomputed columns.
type AppendParams struct {
	StreamID        int64
	EventIDs        []int64
	FirstEvent      time.Time
	LastEvent       time.Time
	ExpireTimestamp time.Time
	FireTimestamp   time.Time // zero: leave as is (null stays null)
	FireCounts      []int
}

// Action is what a worker does to a ready stream (stream.Action).
type Action = stream.Action

// Worker actions.
const (
	Fire   = stream.Fire
	Expire = stream.Expire
)

// ReadyParams selects ready streams.
type ReadyParams struct {
	Action Action
	Now    time.Time
	Limit  int
}

// ClaimParams selects and claims ready streams (ClaimStreams).
type ClaimParams struct {
	Action     Action
	Now        time.Time
	Limit      int // at least 1
	Owner      string
	LeaseUntil time.Time
}

// StreamSerial names a stream at the state_serial_no its holder last
// wrote: the expected serial of a compare-and-set.
type StreamSerial struct {
	ID       int64
	SerialNo int64
}

// SetStateParams is one compare-and-set transition. Optional fields (nil)
// are left unchanged.
type SetStateParams struct {
	ID       int64
	SerialNo int64 // expected current state_serial_no
	State    stream.State
	// Claim lease: owner and end (set when moving to firing/expiring;
	// cleared with a non-nil zero/empty value).
	ClaimedBy  *string
	LeaseUntil *time.Time
	// Retry bookkeeping.
	Attempts        *int
	LastError       *string
	FireTimestamp   *time.Time
	ExpireTimestamp *time.Time
	// ReadyFor, when set, makes the transition also require that the
	// stream is still ready for that action at ReadyAt, with the same
	// condition as ReadyStreams (a claim from a stale candidate list must
	// not expire a stream that meanwhile became ready to fire); otherwise
	// ErrConflict.
	ReadyFor Action
	ReadyAt  time.Time
}

// FindEventsParams filters FindEvents (all optional, ANDed).
type FindEventsParams struct {
	From      time.Time // timestamp > From (exclusive) when not zero
	To        time.Time // timestamp <= To (inclusive) when not zero
	EventType string    // exact type; never inserts anything
	Traits    map[string]stream.Value
	Mark      string // paging mark: "" | "[+][-]hexid"
	Limit     int    // 0: no limit
}

// FindStreamsParams filters FindStreams (all optional, ANDed).
type FindStreamsParams struct {
	StreamID        int64
	State           stream.State
	OlderThan       time.Time // first_event < OlderThan
	YoungerThan     time.Time // last_event > YoungerThan
	Name            string
	DistinguishedBy map[string]stream.Value // typed equality, the stream may have more
	IncludeEvents   bool
	Mark            string
	Limit           int
}

// StreamStat is one row of StreamStats: the streams of trigger Name in
// State.
type StreamStat struct {
	Name  string
	State stream.State
	Count int64
	// ReadyToFire and ReadyToExpire count those ready for each action;
	// OldestFire and OldestExpire are the earliest fire_timestamp and
	// expire_timestamp among them (zero when none is ready).
	ReadyToFire, ReadyToExpire int64
	OldestFire, OldestExpire   time.Time
}

// FoundStream is one FindStreams result.
type FoundStream struct {
	Stream stream.Stream
	Mark   string
	Events []stream.Event // with IncludeEvents
}
