package db

import (
	"context"
	"time"

	"github.com/winchester-go/winchester/stream"
)

// SubscriberStore is the optional capability of keeping event
// subscribers' durable positions in the event log and their dead letters.
// Both drivers implement it on their Store; dbtest.Exercise specifies it.
// The policy (claims, retries, filters) lives in package subscriber: the
// store reads the log in delivery order and compares and sets.
//
// Delivery order is the order in which events become safe to read: an
// event is returned by SubscriberEvents only when no transaction still
// running can store an event that sorts before it. On SQLite, whose
// writers are serialised, that is id order. On PostgreSQL it is the order
// of (storing transaction id, event id), read below the xmin of the
// reader's snapshot: within one ingest transaction events keep id order.
// So a position never has an event appear behind it later, however the
// ingest transactions interleave.
type SubscriberStore interface {
	// SubscriberStates returns the state of every subscriber, by name.
	SubscriberStates(ctx context.Context) ([]SubscriberState, error)
	// SubscriberState returns the state of subscriber name; ErrNotFound
	// when it has none.
	SubscriberState(ctx context.Context, name string) (SubscriberState, error)
	// CreateSubscriber inserts the state of a new subscriber, serial 0,
	// positioned at the head of the log (HeadPosition): it receives the
	// events stored from then on. created is false, and nothing is
	// written, when it has a state already.
	CreateSubscriber(ctx context.Context, name string, now time.Time) (created bool, err error)
	// DeleteSubscriber removes the state and dead letters of subscriber
	// name (a disabled subscriber keeps no backlog). Removing a subscriber
	// that has none is not an error.
	DeleteSubscriber(ctx context.Context, name string) error
	// UpdateSubscriber is the compare-and-set of every change of a
	// subscriber: if its serial is p.SerialNo it stores p's fields,
	// increments the serial and inserts p.DeadLetters, all in one
	// transaction, and returns the state as now stored. ErrConflict when
	// the serial differs, ErrNotFound when the subscriber has no state.
	UpdateSubscriber(ctx context.Context, p UpdateSubscriberParams) (SubscriberState, error)
	// RenewSubscriberLease moves the lease of worker's claim to until,
	// only if the serial is serialNo and worker holds the claim; the
	// serial is unchanged. ErrConflict otherwise: the claim was lost.
	RenewSubscriberLease(ctx context.Context, name string, serialNo int64, worker string, until time.Time) error
	// SubscriberEvents returns up to limit events after pos in delivery
	// order (see the interface doc): only events no running transaction
	// can precede.
	SubscriberEvents(ctx context.Context, after Position, limit int) ([]PositionedEvent, error)
	// HeadPosition returns the position of the last event in delivery
	// order (the zero Position when there is none).
	HeadPosition(ctx context.Context) (Position, error)
	// EventPosition returns the position of event id; ErrNotFound when no
	// such event is stored.
	EventPosition(ctx context.Context, id int64) (Position, error)
	// CountEventsAfter counts the events after pos in delivery order, up
	// to limit (the lag of a subscriber at pos).
	CountEventsAfter(ctx context.Context, after Position, limit int) (int64, error)
	// HorizonWait reports the committed events after pos that
	// SubscriberEvents cannot return yet because an older transaction
	// still runs (counted up to limit), and that transaction. Always the
	// zero HorizonWait on a store whose writers are serialised (SQLite).
	HorizonWait(ctx context.Context, after Position, limit int) (HorizonWait, error)
	// DeadLetters returns up to limit dead letters of subscriber, oldest
	// first; with retryOnly, only those marked for retry.
	DeadLetters(ctx context.Context, subscriber string, retryOnly bool, limit int) ([]DeadLetter, error)
	// CountDeadLetters counts the dead letters of subscriber.
	CountDeadLetters(ctx context.Context, subscriber string) (int64, error)
	// MarkDeadLetters marks dead letters of subscriber for retry: the one
	// with id, or all of them when id is 0. It returns how many it marked;
	// ErrNotFound when id names none of subscriber's.
	MarkDeadLetters(ctx context.Context, subscriber string, id int64, now time.Time) (int, error)
	// SettleDeadLetter records the outcome of a retried dead letter: it is
	// deleted when errMsg is empty (delivered), otherwise it keeps errMsg,
	// adds attempts and is no longer marked for retry.
	SettleDeadLetter(ctx context.Context, id int64, attempts int, errMsg string, now time.Time) error
}

// Position is a place in the event log in delivery order: the storing
// transaction (always 0 on SQLite) and the event id. The zero Position is
// before every event.
type Position struct {
	Xact    int64
	EventID int64
}

// HorizonWait describes events held back from subscribers by the
// snapshot horizon: committed, after a position, but stored by
// transactions younger than the oldest transaction still running on the
// database server (on PostgreSQL, below whose xmin subscribers read).
// They become readable when that transaction ends.
type HorizonWait struct {
	// HeldBack counts the held-back events (up to the limit asked); 0:
	// nothing waits for the horizon.
	HeldBack int64
	// Since is when the transaction holding the horizon began (zero when
	// the store cannot tell, for want of privileges to see it, or when
	// nothing is held back).
	Since time.Time
	// Holder describes that transaction for an operator: its process id,
	// state, application, database and user, or the name of a prepared
	// transaction ("" when unknown).
	Holder string
}

// Less reports whether p comes before q in delivery order.
func (p Position) Less(q Position) bool {
	return p.Xact < q.Xact || (p.Xact == q.Xact && p.EventID < q.EventID)
}

// PositionedEvent is an event read for subscribers, with its position.
type PositionedEvent struct {
	Position Position
	Event    stream.Event
}

// SubscriberState is the stored state of a subscriber.
type SubscriberState struct {
	Name     string
	SerialNo int64
	// Position is the last event dealt with (delivered, filtered out or
	// dead-lettered): delivery goes on after it.
	Position Position
	// ClaimedBy is the worker delivering ("" when none); its claim holds
	// until LeaseUntil.
	ClaimedBy  string
	LeaseUntil time.Time
	// Delivered and Failures count deliveries that succeeded and attempts
	// that failed, since the subscriber was created.
	Delivered, Failures int64
	// LastError is the error of the last failed attempt.
	LastError string
	UpdatedAt time.Time
}

// UpdateSubscriberParams are the new values of a subscriber (every
// mutable field; see SubscriberState) and the dead letters to record
// with them.
type UpdateSubscriberParams struct {
	Name                string
	SerialNo            int64 // the serial read: the compare of the compare-and-set
	Position            Position
	ClaimedBy           string
	LeaseUntil          time.Time
	Delivered, Failures int64
	LastError           string
	Now                 time.Time
	DeadLetters         []DeadLetter
}

// DeadLetter is an event a subscriber gave up on after its attempts.
type DeadLetter struct {
	ID         int64 // set by the store
	Subscriber string
	EventID    int64
	MessageID  string
	EventType  string
	Attempts   int
	Error      string
	// Retry marks the dead letter for another delivery (MarkDeadLetters).
	Retry     bool
	CreatedAt time.Time
	UpdatedAt time.Time
}
