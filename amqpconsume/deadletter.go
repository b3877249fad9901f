package amqpconsume

import (
	"context"
	"fmt"
	"maps"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Headers set on dead-lettered messages (besides the original headers,
// which are kept).
const (
	// ReasonHeader holds why the message was not stored (the full
	// message, e.g. "distiller: …: missing_envelope: event_type is
	// missing").
	ReasonHeader = "x-winchester-reason"
	// ReasonCodeHeader holds the short reason: envelope, rejected or
	// refused.
	ReasonCodeHeader = "x-winchester-reason-code"
	// ConsumerHeader names the consumer that dead-lettered the message.
	ConsumerHeader = "x-winchester-consumer"
	// QueueHeader names the queue the message came from.
	QueueHeader = "x-winchester-queue"
	// ExchangeHeader and RoutingKeyHeader are where the message was
	// first published, for replaying it after a fix.
	ExchangeHeader   = "x-winchester-exchange"
	RoutingKeyHeader = "x-winchester-routing-key"
)

// maxHeader bounds the reason header (AMQP short strings in tables are
// unbounded, but headers travel with every message).
const maxHeader = 1024

// declare declares the consumer's topology: the exchange and the queue
// with its bindings, and the dead-letter exchange with the dead-letter
// queue bound to it by the queue's name. Declarations are idempotent; one
// that conflicts with an existing object fails with PRECONDITION_FAILED.
func declare(ch *amqp.Channel, cfg Config) error {
	if cfg.Exchange != "" {
		if err := ch.ExchangeDeclare(cfg.Exchange, cfg.ExchangeType, *cfg.ExchangeDurable, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s (%s, durable=%t): %w", cfg.Exchange, cfg.ExchangeType, *cfg.ExchangeDurable, err)
		}
	}
	if err := declareQueue(ch, cfg.Queue, cfg.QueueType); err != nil {
		return err
	}
	for _, key := range cfg.BindingKeys {
		if err := ch.QueueBind(cfg.Queue, key, cfg.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to exchange %s with key %q: %w", cfg.Queue, cfg.Exchange, key, err)
		}
	}
	if cfg.DeadLetterExchange != "" {
		if err := ch.ExchangeDeclare(cfg.DeadLetterExchange, cfg.DeadLetterExchangeType, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare dead-letter exchange %s (%s): %w", cfg.DeadLetterExchange, cfg.DeadLetterExchangeType, err)
		}
		if err := declareQueue(ch, cfg.DeadLetterQueue, cfg.QueueType); err != nil {
			return err
		}
		if err := ch.QueueBind(cfg.DeadLetterQueue, cfg.Queue, cfg.DeadLetterExchange, false, nil); err != nil {
			return fmt.Errorf("bind dead-letter queue %s to %s: %w", cfg.DeadLetterQueue, cfg.DeadLetterExchange, err)
		}
	}
	return nil
}

func declareQueue(ch *amqp.Channel, name, typ string) error {
	var args amqp.Table
	if typ == QueueQuorum {
		args = amqp.Table{"x-queue-type": QueueQuorum}
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s (%s, durable): %w", name, typ, err)
	}
	return nil
}

// deadLetterer publishes poison messages to the dead-letter exchange on a
// channel in confirm mode.
type deadLetterer struct {
	ch  *amqp.Channel
	cfg Config
}

// publish sends a copy of the poison message (its original body,
// properties and headers) with the reason headers, routed by the
// consumer's queue name.
func (dl *deadLetterer) publish(ctx context.Context, p poison) (*amqp.DeferredConfirmation, error) {
	d := p.d
	headers := amqp.Table{}
	maps.Copy(headers, d.Headers)
	headers[ReasonHeader] = truncate(p.msg, maxHeader)
	headers[ReasonCodeHeader] = p.reason
	headers[ConsumerHeader] = dl.cfg.Name
	headers[QueueHeader] = dl.cfg.Queue
	headers[ExchangeHeader] = d.Exchange
	headers[RoutingKeyHeader] = d.RoutingKey
	msg := amqp.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
	dc, err := dl.ch.PublishWithDeferredConfirmWithContext(ctx, dl.cfg.DeadLetterExchange, dl.cfg.Queue, false, false, msg)
	if err != nil {
		return nil, fmt.Errorf("dead-letter to %s: %w", dl.cfg.DeadLetterExchange, err)
	}
	return dc, nil
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
