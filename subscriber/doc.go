// Package subscriber delivers stored events to subscribers: code that
// reacts to single events rather than to streams (StoryBoard's event
// worker plugins, eventlib's handlers), off the ingest path and durably.
//
// Every subscriber has a position in the event log, kept in the database
// (db.SubscriberStore). A Runner reads the events after it in delivery
// order, only once their transaction committed and no running transaction
// can still store an event before them (see db.SubscriberStore), offers
// each event that passes the subscriber's filter to its DeliverFunc, and
// moves the position on with a compare-and-set once the events of a batch
// are done with. Delivery is at least once: a worker killed between a
// delivery and the position update delivers the events of that batch
// again (with BatchSize 1, only the event in flight).
//
// Events are delivered one at a time in delivery order unless the
// subscriber allows parallel delivery, where up to Concurrency events of a
// batch are in flight at once. A failed delivery is attempted again after
// a backoff that doubles each time; after Attempts attempts the event goes
// to the subscriber's dead letters, with the error, and delivery goes on.
// An operator can mark dead letters for retry (MarkDeadLetters through
// Retry), and the worker delivering the subscriber delivers them again.
//
// Any number of runners, in any number of processes, share the
// subscribers: each subscriber is claimed by one runner at a time with a
// compare-and-set and a lease that the runner renews while it delivers
// (like a job window's claim), so no event goes to the same subscriber
// twice at the same time; when a runner dies its subscribers are taken
// over once the lease ran out. Each subscriber is delivered by its own
// goroutine, so a slow or failing subscriber holds back only itself, and
// nothing of it touches the ingest path.
//
// A disabled subscriber keeps no state: the runner deletes its position
// and dead letters, so no backlog builds up; enabled again, it starts at
// the head of the log, like a new one.
package subscriber
