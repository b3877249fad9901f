// Package stream is the vocabulary shared by every part of the engine:
// events and their typed trait values, streams and their states. It is
// pure: no I/O, no clock of its own, no dependency outside the standard
// library.
//
// # Events and values
//
// An Event is flat: message_id, event_type, timestamp (UTC, microseconds)
// and traits. A trait Value is a string, an int, a float or a datetime
// (distinguishing traits may also be timeranges). Values of different kinds
// are never equal: the string "42", the int 42 and the float 42.0 are three
// different stream keys. NewEvent is the single place where raw maps become
// events, so matching, fire criteria and storage all see the same event:
// null is the same as absent, and values of other types (bool, list, map)
// are dropped and reported.
//
// # Stream states
//
//	                (ingesters append while the stream is open)
//	                             +--------+
//	   fire_timestamp < now  +---| active |---+  expire_timestamp < now
//	                         |   +--------+   |  (never once a fire time is set)
//	                         v                v
//	retry_fire ------->  firing            expiring  <------- retry_expire
//	    ^              ok |    | fails   fails |    | ok            ^
//	    |                 v    v               v    v               |
//	    |        completed   error      expire_error   completed    |
//	    |       (or purged)    |              |       (or purged)   |
//	    +----------------------+              +---------------------+
//	      reset by an operator,                 reset by an operator,
//	      or automatic retry                    or automatic retry
//
// Stream.ReadyTo is the one definition of when a stream is ready for each
// action (its SQL form, db.ReadySQL, serves every driver's ready query and
// the claim's re-check), and State.CanBecome lists the transitions of the
// diagram. A stream whose fire criteria are met is fired, never expired,
// however late the workers are: once it has a fire time it waits for it
// even when its expiry time comes first.
//
// A stream is created active and open. It stays open (accepting events)
// until its expiry time passes — an ingester that finds it expired closes it
// and opens a new stream for the same key — or a worker claims it. At most
// one open stream exists per trigger and key; the database enforces it.
//
// # Claims: compare-and-set on state_serial_no
//
// Every state change is one UPDATE … WHERE id = ? AND state_serial_no = ?
// that increments the serial; zero rows affected means another process
// changed the stream first (db.ErrConflict), and the caller drops the
// work. A worker claims ready streams by moving them to firing or expiring
// with its name and a lease end — a batch of them in one statement that
// re-checks each stream's readiness as it writes it (on PostgreSQL the
// statement skips rows other transactions hold, FOR UPDATE SKIP LOCKED, so
// concurrent workers take disjoint batches; the re-checked state, not the
// skipping, is what makes a claim exclusive) — reads the batch's events in
// one query, runs the pipelines, and then, in one transaction per group of
// finished streams, completes them (purge, or state completed) each with
// the compare-and-set and stores the events their pipelines produced; a
// stream whose serial moved on is left out of its group. Claimed streams
// waiting for a free slot have their leases renewed together, and are
// handed back when the worker shuts down. An ingester appends to a stream only while it is
// open and active, under the stream's row lock, so an event lands either in
// the stream before the claim (and the pipeline sees it) or in a new stream
// after it; it is never linked to a stream whose events were already read.
//
// # Failures
//
//   - A pipeline that fails puts the stream in retry_fire/retry_expire with
//     a deadline backed off exponentially while retries remain, then in
//     error/expire_error with the error recorded (Attempts, LastError). A
//     failed handler commit goes straight to error: retrying would repeat
//     the side effects of the handlers that did commit.
//   - A worker that dies holding a claim leaves the stream in
//     firing/expiring; after the lease ends any worker moves it to its
//     retry state (counted as an attempt). Workers renew the lease while a
//     pipeline runs.
//   - An operator resets error/expire_error streams (winchester streams
//     reset): they move to retry_fire/retry_expire and keep their deadlines,
//     so the next pass picks them up.
//   - Streams of an unknown trigger or pipeline go to error at once; the
//     worker goes on with the next stream.
package stream
