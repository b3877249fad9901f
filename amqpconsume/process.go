package amqpconsume

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// Reasons of dead-lettered and dropped messages: the values of the reason
// label of the metrics. The header ReasonHeader carries the full message.
const (
	// ReasonEnvelope: not JSON, or an oslo.messaging envelope that does
	// not hold a notification.
	ReasonEnvelope = "envelope"
	// ReasonRejected: the notification cannot become an event (no
	// event_type or message_id, a bad timestamp, no trait extracted, …).
	ReasonRejected = "rejected"
	// ReasonRefused: the database refused the message's event while it
	// accepted others (retried first).
	ReasonRefused = "refused"
)

// OutcomeIgnored labels, in winchester_amqp_ingested_total, the
// notifications that no event definition matches: dropped as the
// distiller drops them (catch_all_notifications off) and acknowledged.
const OutcomeIgnored = "ignored"

// noDefinition reports whether r is a notification the distiller dropped
// because no event definition matches its event type.
func noDefinition(r trigger.Result) bool {
	var drop *distiller.DropError
	return r.Outcome == trigger.Rejected && errors.As(r.Err, &drop) && drop.Reason == distiller.ReasonNoDefinition
}

// poison is a delivery that will not be stored, and why.
type poison struct {
	d      *amqp.Delivery
	reason string // ReasonEnvelope, ReasonRejected or ReasonRefused
	msg    string
}

// prepare ingests one batch and returns its poison messages (those that
// will not be stored, with the reason). Several batches may be prepared at
// once; they are settled in order. An error (ctx cancelled: shutdown grace
// over, channel lost) means the batch must be left unacknowledged.
func (c *Consumer) prepare(ctx context.Context, batch []amqp.Delivery) ([]poison, error) {
	var (
		bodies  [][]byte
		index   []int
		poisons []poison
	)
	var events []stream.Event
	for i := range batch {
		body, err := Unwrap(batch[i].Body)
		if err != nil {
			poisons = append(poisons, poison{d: &batch[i], reason: ReasonEnvelope, msg: err.Error()})
			continue
		}
		if c.cfg.Format == FormatEvents {
			ev, _, err := stream.DecodeEvent(body)
			if err != nil {
				poisons = append(poisons, poison{d: &batch[i], reason: ReasonRejected, msg: err.Error()})
				continue
			}
			events = append(events, ev)
		}
		bodies = append(bodies, body)
		index = append(index, i)
	}
	if len(bodies) == 0 {
		return poisons, nil
	}
	var (
		results []trigger.Result
		err     error
	)
	if c.cfg.Format == FormatEvents {
		results, err = ingest(ctx, c, events, c.opts.IngestEvents)
	} else {
		results, err = ingest(ctx, c, bodies, c.opts.Ingest)
	}
	if err != nil {
		return nil, err
	}
	for j, r := range results {
		d := &batch[index[j]]
		switch {
		case r.Outcome == trigger.Stored || r.Outcome == trigger.Duplicate:
			c.m.outcome(c.cfg.Name, r.Outcome.String())
		case noDefinition(r):
			// As the distiller does: a notification no event definition
			// matches (catch_all_notifications off) is dropped, and the
			// manager logged it. It is not poison: acknowledged with its
			// batch, never dead-lettered.
			c.m.outcome(c.cfg.Name, OutcomeIgnored)
		default:
			p := poison{d: d, reason: ReasonRejected, msg: r.Reason}
			if r.Reason == "" {
				p.msg = "rejected (" + r.Outcome.String() + ")"
			}
			if refusedPrefix(r.Reason) {
				p.reason = ReasonRefused
			}
			poisons = append(poisons, p)
		}
	}
	return poisons, nil
}

// settle dead-letters (or drops) a prepared batch's poison messages, then
// acknowledges the whole batch with one multiple ack on its last
// delivery. Batches are settled in delivery order, one at a time, so the
// multiple ack covers exactly this batch. An error (channel lost,
// dead-letter exchange refusing) leaves the batch unacknowledged: the
// broker redelivers it, and what was stored comes back as duplicates.
func (c *Consumer) settle(ctx context.Context, batch []amqp.Delivery, poisons []poison, dl *deadLetterer) error {
	if len(poisons) > 0 {
		if err := c.settlePoisons(ctx, poisons, dl); err != nil {
			return err
		}
	}
	if err := batch[len(batch)-1].Ack(true); err != nil {
		return fmt.Errorf("acknowledge %d deliveries: %w", len(batch), err)
	}
	c.m.acked(c.cfg.Name, len(batch))
	return nil
}

// refusedMsg starts the reason of a message the database refused.
const refusedMsg = "refused by the database: "

func refusedPrefix(s string) bool { return strings.HasPrefix(s, refusedMsg) }

// ingest stores bodies, retrying while the database fails. When a batch
// fails while the database answers Ping, the batch is split to find the
// message the database refuses; that message alone is retried Retries
// times and then returned as Rejected, so one bad message cannot stop the
// queue. It returns an error only when ctx is done (shutdown grace over,
// connection lost): the caller then leaves the batch unacknowledged.
func ingest[T any](ctx context.Context, c *Consumer, bodies []T, submit func(context.Context, []T) ([]trigger.Result, error)) ([]trigger.Result, error) {
	delay := c.cfg.ReconnectDelay.Std()
	for attempt := 1; ; attempt++ {
		results, err := submit(ctx, bodies)
		if err == nil && len(results) != len(bodies) {
			err = fmt.Errorf("ingest returned %d results for %d notifications", len(results), len(bodies))
		}
		if err == nil {
			return results, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ingest %d notifications: %w", len(bodies), context.Cause(ctx))
		}
		c.m.ingestFailure(c.cfg.Name)
		// An unavailable database is an outage whatever Ping says; any
		// other failure may be a message the database refuses.
		reachable := !errors.Is(err, db.ErrUnavailable) && c.opts.Ping != nil && c.opts.Ping(ctx) == nil
		if reachable && len(bodies) > 1 {
			c.log.Warn("the database refused a batch it can be reached for; splitting it to find the message", "size", len(bodies), "error", err)
			h := len(bodies) / 2
			first, err := ingest(ctx, c, bodies[:h], submit)
			if err != nil {
				return nil, err
			}
			second, err := ingest(ctx, c, bodies[h:], submit)
			if err != nil {
				return nil, err
			}
			return append(first, second...), nil
		}
		if reachable && attempt >= c.opts.Retries {
			c.log.Error("the database keeps refusing a message; dead-lettering it", "attempts", attempt, "error", err)
			return []trigger.Result{{Outcome: trigger.Rejected, Reason: refusedMsg + err.Error()}}, nil
		}
		wait := jitter(delay)
		c.log.Warn("ingest failed; holding the batch and retrying", "size", len(bodies), "attempt", attempt,
			"database_reachable", reachable, "error", err, "in", wait.Round(time.Millisecond).String())
		c.m.paused(c.cfg.Name, true)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			c.m.paused(c.cfg.Name, false)
			return nil, fmt.Errorf("ingest %d notifications: %w (last error: %v)", len(bodies), context.Cause(ctx), err)
		case <-t.C:
		}
		c.m.paused(c.cfg.Name, false)
		delay = min(2*delay, c.cfg.MaxReconnectDelay.Std())
	}
}

// settlePoisons dead-letters the poison messages and waits for the
// broker's confirmations, or logs and drops them without a dead-letter
// exchange.
func (c *Consumer) settlePoisons(ctx context.Context, poisons []poison, dl *deadLetterer) error {
	if dl == nil {
		for _, p := range poisons {
			c.log.Warn("dropped a message that cannot be ingested (no dead_letter_exchange configured)",
				"reason", p.reason, "error", p.msg, "message_id", p.d.MessageId, "routing_key", p.d.RoutingKey)
			c.m.dropped(c.cfg.Name, p.reason)
		}
		return nil
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, len(poisons))
	for _, p := range poisons {
		dc, err := dl.publish(ctx, p)
		if err != nil {
			return err
		}
		confirms = append(confirms, dc)
	}
	var errs []error
	for i, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("dead-letter confirmation: %w", err))
		case !ok:
			errs = append(errs, fmt.Errorf("exchange %s refused a dead-lettered message", c.cfg.DeadLetterExchange))
		default:
			p := poisons[i]
			c.log.Warn("dead-lettered a message that cannot be ingested", "reason", p.reason, "error", p.msg,
				"message_id", p.d.MessageId, "routing_key", p.d.RoutingKey, "dead_letter_exchange", c.cfg.DeadLetterExchange)
			c.m.deadLettered(c.cfg.Name, p.reason)
		}
	}
	return errors.Join(errs...)
}
