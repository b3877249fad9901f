package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
)

// SQLite serialises writers (BEGIN IMMEDIATE) and event ids only grow
// (AUTOINCREMENT), so id order is commit order: a position is an event id
// and its Xact is always 0.

// scanSubscriber reads a row of db.SubscriberTable (its Columns).
func scanSubscriber(sc scanner) (db.SubscriberState, error) {
	var (
		s       db.SubscriberState
		lease   sql.NullInt64
		updated int64
	)
	if err := sc.Scan(&s.Name, &s.SerialNo, &s.Position.Xact, &s.Position.EventID, &s.ClaimedBy, &lease,
		&s.Delivered, &s.Failures, &s.LastError, &updated); err != nil {
		return s, err
	}
	s.LeaseUntil, s.UpdatedAt = nullTime(lease), db.FromMicros(updated)
	return s, nil
}

// SubscriberState implements db.SubscriberStore.
func (o ops) SubscriberState(ctx context.Context, name string) (db.SubscriberState, error) {
	return readLeased(ctx, o, subscriberRows, scanSubscriber, name)
}

// SubscriberStates implements db.SubscriberStore.
func (o ops) SubscriberStates(ctx context.Context) ([]db.SubscriberState, error) {
	return listLeased(ctx, o, subscriberRows, scanSubscriber)
}

// HeadPosition implements db.SubscriberStore.
func (o ops) HeadPosition(ctx context.Context) (db.Position, error) {
	var id sql.NullInt64
	if err := o.queryRow(ctx, `SELECT max(id) FROM event`).Scan(&id); err != nil {
		return db.Position{}, fmt.Errorf("sqlite: head position: %w", o.s.translate(err))
	}
	return db.Position{EventID: id.Int64}, nil
}

// EventPosition implements db.SubscriberStore.
func (o ops) EventPosition(ctx context.Context, id int64) (db.Position, error) {
	var n int64
	if err := o.queryRow(ctx, `SELECT id FROM event WHERE id = ?`, id).Scan(&n); err != nil {
		return db.Position{}, fmt.Errorf("sqlite: position of event %d: %w", id, o.s.translate(err))
	}
	return db.Position{EventID: id}, nil
}

// CreateSubscriber implements db.SubscriberStore.
func (o ops) CreateSubscriber(ctx context.Context, name string, now time.Time) (bool, error) {
	res, err := o.exec(ctx, `INSERT INTO subscriber (name, position_id, updated_at)
SELECT ?, coalesce(max(id), 0), ? FROM event WHERE true ON CONFLICT (name) DO NOTHING`, name, db.Micros(now))
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: create subscriber %q: %w", name, o.s.translate(err))
	}
	return n == 1, nil
}

// DeleteSubscriber implements db.SubscriberStore.
func (o ops) DeleteSubscriber(ctx context.Context, name string) error {
	err := o.atomic(ctx, func(o ops) error {
		if _, err := o.exec(ctx, `DELETE FROM subscriber_dead_letter WHERE subscriber = ?`, name); err != nil {
			return o.s.translate(err)
		}
		_, err := o.exec(ctx, `DELETE FROM subscriber WHERE name = ?`, name)
		return o.s.translate(err)
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete subscriber %q: %w", name, err)
	}
	return nil
}

const insertDeadLetterSQL = `
INSERT INTO subscriber_dead_letter (subscriber, event_id, message_id, event_type, attempts, error, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// UpdateSubscriber implements db.SubscriberStore.
func (o ops) UpdateSubscriber(ctx context.Context, p db.UpdateSubscriberParams) (db.SubscriberState, error) {
	set := []any{p.Position.Xact, p.Position.EventID, p.ClaimedBy, timeArg(p.LeaseUntil), p.Delivered, p.Failures,
		p.LastError, db.Micros(p.Now)}
	return updateLeased(ctx, o, subscriberRows, scanSubscriber, p.Name, p.SerialNo, set, func(o ops) error {
		for _, d := range p.DeadLetters {
			if _, err := o.exec(ctx, insertDeadLetterSQL, p.Name, d.EventID, d.MessageID, d.EventType, d.Attempts, d.Error,
				db.Micros(p.Now), db.Micros(p.Now)); err != nil {
				return o.s.translate(err)
			}
		}
		return nil
	})
}

// RenewSubscriberLease implements db.SubscriberStore.
func (o ops) RenewSubscriberLease(ctx context.Context, name string, serialNo int64, worker string, until time.Time) error {
	return o.renewLease(ctx, subscriberRows, name, serialNo, worker, until)
}

// SubscriberEvents implements db.SubscriberStore.
func (o ops) SubscriberEvents(ctx context.Context, after db.Position, limit int) ([]db.PositionedEvent, error) {
	rows, err := o.query(ctx, `SELECT `+eventCols+` FROM event e WHERE e.id > ? ORDER BY e.id LIMIT ?`, after.EventID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events after %v: %w", after, o.s.translate(err))
	}
	defer rows.Close()
	var out []db.PositionedEvent
	for rows.Next() {
		se, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: events after %v: %w", after, o.s.translate(err))
		}
		out = append(out, db.PositionedEvent{Position: db.Position{EventID: se.ID}, Event: se.Event})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: events after %v: %w", after, o.s.translate(err))
	}
	return out, nil
}

// CountEventsAfter implements db.SubscriberStore.
func (o ops) CountEventsAfter(ctx context.Context, after db.Position, limit int) (int64, error) {
	var n int64
	if err := o.queryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM event WHERE id > ? LIMIT ?)`, after.EventID, limit).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count events after %v: %w", after, o.s.translate(err))
	}
	return n, nil
}

// scanDeadLetter reads a row of subscriber_dead_letter (the columns of
// DeadLetters).
func scanDeadLetter(sc scanner) (db.DeadLetter, error) {
	var d db.DeadLetter
	var created, updated int64
	if err := sc.Scan(&d.ID, &d.Subscriber, &d.EventID, &d.MessageID, &d.EventType, &d.Attempts, &d.Error,
		&d.Retry, &created, &updated); err != nil {
		return d, err
	}
	d.CreatedAt, d.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
	return d, nil
}

// HorizonWait implements db.SubscriberStore: SQLite serialises writers,
// so no committed event ever waits behind a running transaction.
func (o ops) HorizonWait(ctx context.Context, after db.Position, limit int) (db.HorizonWait, error) {
	return db.HorizonWait{}, nil
}

// DeadLetters implements db.SubscriberStore.
func (o ops) DeadLetters(ctx context.Context, subscriber string, retryOnly bool, limit int) ([]db.DeadLetter, error) {
	out, err := collect(scanDeadLetter)(o.query(ctx, `
SELECT id, subscriber, event_id, message_id, event_type, attempts, error, retry, created_at, updated_at
  FROM subscriber_dead_letter WHERE subscriber = ? AND (retry = 1 OR ? = 0) ORDER BY id LIMIT ?`,
		subscriber, retryOnly, limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: dead letters of %q: %w", subscriber, o.s.translate(err))
	}
	return out, nil
}

// CountDeadLetters implements db.SubscriberStore.
func (o ops) CountDeadLetters(ctx context.Context, subscriber string) (int64, error) {
	var n int64
	if err := o.queryRow(ctx, `SELECT count(*) FROM subscriber_dead_letter WHERE subscriber = ?`, subscriber).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count dead letters of %q: %w", subscriber, o.s.translate(err))
	}
	return n, nil
}

// MarkDeadLetters implements db.SubscriberStore.
func (o ops) MarkDeadLetters(ctx context.Context, subscriber string, id int64, now time.Time) (int, error) {
	res, err := o.exec(ctx, `UPDATE subscriber_dead_letter SET retry = 1, updated_at = ? WHERE subscriber = ? AND (? = 0 OR id = ?)`,
		db.Micros(now), subscriber, id, id)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err == nil && id != 0 && n == 0 {
		err = db.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: retry dead letters of %q: %w", subscriber, o.s.translate(err))
	}
	return int(n), nil
}

// SettleDeadLetter implements db.SubscriberStore.
func (o ops) SettleDeadLetter(ctx context.Context, id int64, attempts int, errMsg string, now time.Time) error {
	var err error
	if errMsg == "" {
		_, err = o.exec(ctx, `DELETE FROM subscriber_dead_letter WHERE id = ?`, id)
	} else {
		_, err = o.exec(ctx, `UPDATE subscriber_dead_letter SET retry = 0, attempts = attempts + ?, error = ?, updated_at = ? WHERE id = ?`,
			attempts, errMsg, db.Micros(now), id)
	}
	if err != nil {
		return fmt.Errorf("sqlite: settle dead letter %d: %w", id, o.s.translate(err))
	}
	return nil
}

var _ db.SubscriberStore = ops{}
