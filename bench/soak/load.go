package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/winchester-go/winchester/internal/workload"
)

// routingKey is the key notifications are published with and the
// consumer's queue is bound by.
const routingKey = "notifications.info"

// amqpTarget is the exchange and queue of an AMQP soak.
type amqpTarget struct {
	url, exchange, queue string
}

// feed sends the bodies of workload notifications (instances over days,
// a new seed every round) to out until ctx is done.
func feed(ctx context.Context, instances, days int, out chan<- []byte) error {
	for seed := uint64(1); ; seed++ {
		err := workload.Generate(workload.Config{Instances: instances, Days: days, Seed: seed}, func(n workload.Notification) error {
			select {
			case out <- n.Body:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("generate notifications: %w", err)
		}
	}
}

// timestampKey is the top-level key of a notification's timestamp. The
// workload writes the keys of a notification in sorted order, so the
// top-level one comes after the payload's keys: it is the last occurrence.
var timestampKey = []byte(`"timestamp":"`)

// restamp returns body with its top-level timestamp replaced by t, so
// that the streams' deadlines ($last + 5s, the fire delay) are wall-clock
// times of the soak.
func restamp(body []byte, t time.Time) ([]byte, error) {
	i := bytes.LastIndex(body, timestampKey)
	if i < 0 {
		return nil, errors.New("notification without a timestamp")
	}
	start := i + len(timestampKey)
	end := bytes.IndexByte(body[start:], '"')
	if end < 0 {
		return nil, errors.New("notification with an unterminated timestamp")
	}
	out := make([]byte, 0, len(body)+8)
	out = append(out, body[:start]...)
	out = t.UTC().AppendFormat(out, "2006-01-02 15:04:05.000000")
	return append(out, body[start+end:]...), nil
}

// request is one paced send: the notifications due at the same time.
type request struct {
	due    time.Time
	bodies [][]byte
}

// pace sends a request of batch notifications from src to out every
// batch/rate seconds from start until start+duration, whatever happens to
// the requests sent before (open loop). A request that finds out full
// (the senders are more than the queue behind) is not sent and its
// notifications count as unsent. It closes out when done.
func pace(ctx context.Context, start time.Time, rate float64, batch int, duration time.Duration, src <-chan []byte, out chan<- request, st *loadStats) {
	defer close(out)
	interval := time.Duration(float64(batch) / rate * float64(time.Second))
	t := time.NewTimer(0)
	defer t.Stop()
	for k := 0; ; k++ {
		due := start.Add(time.Duration(k) * interval)
		if !due.Before(start.Add(duration)) {
			return
		}
		t.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := request{due: due, bodies: make([][]byte, 0, batch)}
		for len(r.bodies) < batch {
			select {
			case b := <-src:
				r.bodies = append(r.bodies, b)
			case <-ctx.Done():
				return
			}
		}
		st.planned(len(r.bodies))
		select {
		case out <- r:
		default:
			st.dropped(len(r.bodies))
		}
	}
}

// loadStats counts what the senders did. Safe for concurrent use.
type loadStats struct {
	late time.Duration // a request started later than this after its due time is late

	mu      sync.Mutex
	plan    int64 // notifications the pacer scheduled
	unsent  int64 // dropped by the pacer: the send queue was full
	sent    int64 // notifications sent and accepted (HTTP 200, or confirmed by the broker)
	lateN   int64 // of those, in requests that started late
	failed  int64 // in requests that failed
	stored  int64 // HTTP: answered stored
	dup     int64 // HTTP: answered duplicate
	reject  int64 // HTTP: answered rejected
	records []latency
	errs    []string
}

// latency is one request's: from its due time to its answer (what a
// sender on the schedule waits, queueing included) and from its start.
type latency struct {
	at             time.Time
	total, service time.Duration
}

func (s *loadStats) planned(n int) {
	s.mu.Lock()
	s.plan += int64(n)
	s.mu.Unlock()
}

func (s *loadStats) dropped(n int) {
	s.mu.Lock()
	s.unsent += int64(n)
	s.mu.Unlock()
}

func (s *loadStats) done(r request, started time.Time, stored, dup, rejected int, err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(len(r.bodies))
	if err != nil {
		s.failed += n
		if len(s.errs) < 5 {
			s.errs = append(s.errs, err.Error())
		}
		return
	}
	s.sent += n
	if started.Sub(r.due) > s.late {
		s.lateN += n
	}
	s.stored += int64(stored)
	s.dup += int64(dup)
	s.reject += int64(rejected)
	s.records = append(s.records, latency{at: now, total: now.Sub(r.due), service: now.Sub(started)})
}

// snapshot is a copy of the counters, with the latencies recorded since
// the given index.
type loadSnapshot struct {
	plan, unsent, sent, late, failed, stored, dup, rejected int64
	latencies                                               []latency
	next                                                    int
	errs                                                    []string
}

func (s *loadStats) snapshot(from int) loadSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return loadSnapshot{
		plan: s.plan, unsent: s.unsent, sent: s.sent, late: s.lateN, failed: s.failed,
		stored: s.stored, dup: s.dup, rejected: s.reject,
		latencies: slices.Clone(s.records[min(from, len(s.records)):]), next: len(s.records),
		errs: slices.Clone(s.errs),
	}
}

// percentile returns the p-th percentile (0–100) of ds by the nearest-rank
// method, 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// sendHTTP posts the requests of in to base/v1/notifications as JSON
// lines, each notification restamped with the time of sending.
func sendHTTP(ctx context.Context, client *http.Client, base string, in <-chan request, st *loadStats) {
	for r := range in {
		started := time.Now()
		stored, dup, rejected, err := postNotifications(ctx, client, base, r, started)
		if ctx.Err() != nil {
			return
		}
		st.done(r, started, stored, dup, rejected, err)
	}
}

func postNotifications(ctx context.Context, client *http.Client, base string, r request, now time.Time) (stored, dup, rejected int, err error) {
	var body bytes.Buffer
	for _, b := range r.bodies {
		nb, err := restamp(b, now)
		if err != nil {
			return 0, 0, 0, err
		}
		body.Write(nb)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/notifications", &body)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("post notifications: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("post notifications: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("post notifications: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, 0, fmt.Errorf("post notifications: status %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var answer struct{ Stored, Duplicate, Rejected int }
	if err := json.Unmarshal(b, &answer); err != nil {
		return 0, 0, 0, fmt.Errorf("post notifications: answer: %w", err)
	}
	return answer.Stored, answer.Duplicate, answer.Rejected, nil
}

// sendAMQP publishes the notifications of the requests of in to the
// target's exchange, persistent, on a channel in confirm mode, and waits
// for the broker's confirmation of each request's messages.
func sendAMQP(ctx context.Context, conn *amqp.Connection, t amqpTarget, in <-chan request, st *loadStats) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp channel: %w", err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("amqp confirm mode: %w", err)
	}
	for r := range in {
		started := time.Now()
		err := publish(ctx, ch, t, r, started)
		if ctx.Err() != nil {
			return nil
		}
		st.done(r, started, 0, 0, 0, err)
	}
	return nil
}

func publish(ctx context.Context, ch *amqp.Channel, t amqpTarget, r request, now time.Time) error {
	confirms := make([]*amqp.DeferredConfirmation, 0, len(r.bodies))
	for _, b := range r.bodies {
		nb, err := restamp(b, now)
		if err != nil {
			return err
		}
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, t.exchange, routingKey, false, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: nb,
		})
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		confirms = append(confirms, c)
	}
	for _, c := range confirms {
		ok, err := c.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("publish confirm: %w", err)
		}
		if !ok {
			return errors.New("publish: the broker refused a message (nack)")
		}
	}
	return nil
}

// prepareAMQP declares the target's exchange (as the consumer declares it:
// topic, durable) so that nothing is published before it exists.
func prepareAMQP(conn *amqp.Connection, t amqpTarget) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp channel: %w", err)
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(t.exchange, "topic", true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", t.exchange, err)
	}
	return nil
}

// waitQueue waits until the consumer declared and bound its queue.
func waitQueue(ctx context.Context, conn *amqp.Connection, t amqpTarget) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("amqp channel: %w", err)
		}
		q, err := ch.QueueDeclarePassive(t.queue, true, false, false, false, nil)
		if err == nil {
			ch.Close()
			if q.Consumers > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queue %s has no consumer after 60 s", t.queue)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cleanAMQP deletes the soak's queue and exchange.
func cleanAMQP(conn *amqp.Connection, t amqpTarget) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp channel: %w", err)
	}
	defer ch.Close()
	if _, err := ch.QueueDelete(t.queue, false, false, false); err != nil {
		return fmt.Errorf("delete queue %s: %w", t.queue, err)
	}
	if err := ch.ExchangeDelete(t.exchange, false, false); err != nil {
		return fmt.Errorf("delete exchange %s: %w", t.exchange, err)
	}
	return nil
}
