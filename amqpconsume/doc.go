// Package amqpconsume feeds the engine from RabbitMQ: each configured
// consumer declares its exchange, queue and bindings, takes deliveries in
// batches, hands them to the ingest path as notifications and acknowledges
// them only once the transaction holding their events committed.
//
// # Delivery guarantees
//
//	broker ──deliveries──▶ collector ──batch──▶ processor ──▶ IngestFunc (one commit)
//	   ▲                   (batch_size,         │
//	   │                    batch_linger)       ├─ stored / duplicate ─┐
//	   │                                        ├─ poison ──▶ dead-letter exchange
//	   │                                        │             (publisher confirm)
//	   └──────────── ack(last tag, multiple) ◀──┴──────────────────────┘
//
// The guarantees:
//
//   - At least once into the store, exactly once stored: a message is
//     acknowledged only after its batch's transaction committed; the store
//     drops a redelivered message whose event it already holds (outcome
//     Duplicate), and the consumer acknowledges it. A crash between the
//     commit and the acknowledgement costs a redelivery, never an event.
//   - Two batches are ingested at once (one distils while the other is
//     written) and the next is collected meanwhile; batches are settled in
//     delivery order, one at a time, each with a single multiple
//     acknowledgement of its last delivery tag.
//   - A notification no event definition matches is dropped as the
//     distiller drops it (catch_all_notifications off): acknowledged with
//     its batch and counted (outcome OutcomeIgnored), not dead-lettered.
//   - Poison — a body that is not a JSON object, an oslo.messaging envelope
//     that does not hold one, a notification the distiller rejects (no
//     event_type, no message_id, a bad timestamp, no trait extracted) —
//     is published to the dead-letter exchange with the reason in the
//     ReasonHeader header, routed by the queue's name to the dead-letter
//     queue (queue + ".dead" unless configured), confirmed by the broker,
//     and then acknowledged with its batch. Without a dead-letter exchange
//     it is logged, counted and acknowledged (dropped). Nothing is requeued.
//   - A batch the database cannot store (error from IngestFunc) is not the
//     messages' fault: the consumer keeps it, takes no further deliveries
//     (the broker stops at prefetch), backs off and retries it. When the
//     database answers PingFunc meanwhile, the batch is split to find the
//     message the database refuses; that message alone is retried a few
//     times and then dead-lettered (reason "refused"), so one message
//     cannot stop the queue.
//   - Connection or channel loss: the batch in flight is abandoned
//     unacknowledged (the broker redelivers it), and the consumer reconnects
//     with jittered exponential backoff, declaring the topology again.
//   - Shutdown (Run's context cancelled): the broker consumer is cancelled,
//     what was already delivered is stored and acknowledged within the
//     shutdown grace, and the connection is closed.
//
// # Scaling
//
// Any number of consumers, in any number of processes on any number of
// machines, may consume one queue: the broker spreads deliveries among
// them, and the store's message_id uniqueness and stream locks make
// concurrent ingesters safe. Ordering across consumers is not preserved,
// and need not be: streams order their events by timestamp.
package amqpconsume
