package subscriber

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// Defaults of a Definition's delivery policy.
const (
	// DefaultAttempts is how many times an event is offered before it goes
	// to the dead letters.
	DefaultAttempts = 5
	// DefaultBackoff is the wait after the first failed attempt; it
	// doubles after each further one, up to MaxBackoff.
	DefaultBackoff = time.Second
	// MaxBackoff bounds the wait between attempts.
	MaxBackoff = 5 * time.Minute
	// DefaultConcurrency is the number of events in flight at once.
	DefaultConcurrency = 1
	// DefaultBatchSize is the number of events read per query; the
	// position is stored once per batch.
	DefaultBatchSize = 100
	// DefaultTimeout bounds one delivery attempt.
	DefaultTimeout = 30 * time.Second
)

// Delivery is one event offered to a subscriber.
type Delivery struct {
	// Subscriber is the subscriber's name.
	Subscriber string
	// EventID is the event's row id.
	EventID int64
	Event   stream.Event
	// Attempt is 1 for the first attempt of this delivery, 2 for the
	// first retry, and so on.
	Attempt int
	// Redelivery is true when the event comes from the dead letters,
	// retried by an operator.
	Redelivery bool
	// IdempotencyKey is the same on every delivery of the event to this
	// subscriber, retries and redeliveries after a crash included, so a
	// receiver can drop repeats: "subscriber-<name>-<message_id>".
	IdempotencyKey string
}

// DeliverFunc delivers one event. Returning nil means delivered; an error
// is a failed attempt (retried, then dead-lettered). It must honour ctx,
// which is cancelled at the attempt's time limit and at shutdown.
type DeliverFunc func(ctx context.Context, d Delivery) error

// MatchFunc reports whether a subscriber wants an event; the others are
// passed over (the position moves on without a delivery).
type MatchFunc func(ev stream.Event) bool

// Definition is one configured subscriber.
type Definition struct {
	Name string
	// Match filters the events (nil: every event).
	Match MatchFunc
	// Deliver delivers the events. Required unless Disabled.
	Deliver DeliverFunc
	// Disabled subscribers receive nothing and keep no state.
	Disabled bool
	// Attempts is how many times an event is offered before it goes to
	// the dead letters (0: DefaultAttempts).
	Attempts int
	// Backoff is the wait after the first failed attempt, doubled after
	// each further one up to MaxBackoff (0: DefaultBackoff).
	Backoff time.Duration
	// Parallel allows unordered delivery: up to Concurrency events of a
	// batch at once. Without it events go one at a time, in order.
	Parallel bool
	// Concurrency is the number of events in flight with Parallel
	// (0: DefaultConcurrency).
	Concurrency int
	// BatchSize is the number of events read at once; the position is
	// stored after each batch (0: DefaultBatchSize).
	BatchSize int
	// Timeout bounds one attempt (0: DefaultTimeout).
	Timeout time.Duration
}

func (d Definition) withDefaults() Definition {
	if d.Attempts <= 0 {
		d.Attempts = DefaultAttempts
	}
	if d.Backoff <= 0 {
		d.Backoff = DefaultBackoff
	}
	if d.Concurrency <= 0 || !d.Parallel {
		d.Concurrency = DefaultConcurrency
	}
	if d.BatchSize <= 0 {
		d.BatchSize = DefaultBatchSize
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultTimeout
	}
	return d
}

// backoff returns the wait after failed attempt n (1-based).
func (d Definition) backoff(n int) time.Duration {
	b := d.Backoff
	for i := 1; i < n && b < MaxBackoff; i++ {
		b *= 2
	}
	return min(b, MaxBackoff)
}

// Store is the part of the store a Runner and the operations use.
type Store interface {
	db.SubscriberStore
	EventByMessageID(ctx context.Context, messageID string) (db.StoredEvent, error)
}

// ErrUnknown is wrapped by the operations' errors for a subscriber that
// has no state (never enabled, or disabled).
var ErrUnknown = errors.New("subscriber: no such subscriber")

// IdempotencyKey returns the idempotency key of deliveries of the event
// with messageID to subscriber name.
func IdempotencyKey(name, messageID string) string {
	return fmt.Sprintf("subscriber-%s-%s", name, messageID)
}
