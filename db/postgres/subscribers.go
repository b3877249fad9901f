package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
)

// scanSubscriber reads a row of db.SubscriberTable (its Columns).
func scanSubscriber(row pgx.Row) (db.SubscriberState, error) {
	var (
		s       db.SubscriberState
		lease   *int64
		updated int64
	)
	err := row.Scan(&s.Name, &s.SerialNo, &s.Position.Xact, &s.Position.EventID, &s.ClaimedBy, &lease,
		&s.Delivered, &s.Failures, &s.LastError, &updated)
	if err != nil {
		return s, interpretError(err)
	}
	s.LeaseUntil, s.UpdatedAt = optTime(lease), db.FromMicros(updated)
	return s, nil
}

// SubscriberState implements db.SubscriberStore.
func (o *ops) SubscriberState(ctx context.Context, name string) (db.SubscriberState, error) {
	return readLeased(ctx, o, subscriberRows, scanSubscriber, name)
}

// SubscriberStates implements db.SubscriberStore.
func (o *ops) SubscriberStates(ctx context.Context) ([]db.SubscriberState, error) {
	return listLeased(ctx, o, subscriberRows, scanSubscriber)
}

// safeXmin is the oldest transaction still running when the statement's
// snapshot was taken: every transaction below it has ended, so every event
// below it is committed (or gone) and none can be added.
const safeXmin = `pg_snapshot_xmin(pg_current_snapshot())::text::bigint`

const headPosition = `SELECT xact_id, id FROM event WHERE xact_id < ` + safeXmin + ` ORDER BY xact_id DESC, id DESC LIMIT 1`

// HeadPosition implements db.SubscriberStore.
func (o *ops) HeadPosition(ctx context.Context) (db.Position, error) {
	var p db.Position
	err := o.q.QueryRow(ctx, headPosition).Scan(&p.Xact, &p.EventID)
	if err = interpretError(err); errors.Is(err, db.ErrNotFound) {
		return db.Position{}, nil
	}
	if err != nil {
		return p, fmt.Errorf("postgres: head position: %w", err)
	}
	return p, nil
}

// EventPosition implements db.SubscriberStore.
func (o *ops) EventPosition(ctx context.Context, id int64) (db.Position, error) {
	p := db.Position{EventID: id}
	err := o.q.QueryRow(ctx, `SELECT xact_id FROM event WHERE id = $1`, id).Scan(&p.Xact)
	if err != nil {
		return p, fmt.Errorf("postgres: position of event %d: %w", id, interpretError(err))
	}
	return p, nil
}

// CreateSubscriber implements db.SubscriberStore.
func (o *ops) CreateSubscriber(ctx context.Context, name string, now time.Time) (bool, error) {
	tag, err := o.q.Exec(ctx, `
INSERT INTO subscriber (name, position_xact, position_id, updated_at)
SELECT $1, coalesce(h.xact_id, 0), coalesce(h.id, 0), $2
  FROM (SELECT 1) AS one LEFT JOIN (`+headPosition+`) AS h ON true
ON CONFLICT (name) DO NOTHING`, name, db.Micros(now))
	if err != nil {
		return false, fmt.Errorf("postgres: create subscriber %q: %w", name, interpretError(err))
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteSubscriber implements db.SubscriberStore.
func (o *ops) DeleteSubscriber(ctx context.Context, name string) error {
	err := o.inTx(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM subscriber_dead_letter WHERE subscriber = $1`, name); err != nil {
			return interpretError(err)
		}
		_, err := q.Exec(ctx, `DELETE FROM subscriber WHERE name = $1`, name)
		return interpretError(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: delete subscriber %q: %w", name, err)
	}
	return nil
}

const insertDeadLetter = `
INSERT INTO subscriber_dead_letter (subscriber, event_id, message_id, event_type, attempts, error, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`

// UpdateSubscriber implements db.SubscriberStore.
func (o *ops) UpdateSubscriber(ctx context.Context, p db.UpdateSubscriberParams) (db.SubscriberState, error) {
	set := []any{p.Position.Xact, p.Position.EventID, p.ClaimedBy, optMicros(p.LeaseUntil), p.Delivered, p.Failures,
		p.LastError, db.Micros(p.Now)}
	return updateLeased(ctx, o, subscriberRows, scanSubscriber, p.Name, p.SerialNo, set, func(q querier) error {
		for _, d := range p.DeadLetters {
			if _, err := q.Exec(ctx, insertDeadLetter, p.Name, d.EventID, d.MessageID, d.EventType, d.Attempts, d.Error,
				db.Micros(p.Now)); err != nil {
				return interpretError(err)
			}
		}
		return nil
	})
}

// RenewSubscriberLease implements db.SubscriberStore.
func (o *ops) RenewSubscriberLease(ctx context.Context, name string, serialNo int64, worker string, until time.Time) error {
	return o.renewLease(ctx, subscriberRows, name, serialNo, worker, until)
}

// SubscriberEvents implements db.SubscriberStore.
func (o *ops) SubscriberEvents(ctx context.Context, after db.Position, limit int) ([]db.PositionedEvent, error) {
	rows, err := o.q.Query(ctx, `
SELECT e.xact_id, `+eventColumns+` FROM event e
 WHERE (e.xact_id, e.id) > ($1, $2) AND e.xact_id < `+safeXmin+`
 ORDER BY e.xact_id, e.id LIMIT $3`, after.Xact, after.EventID, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: events after %v: %w", after, interpretError(err))
	}
	defer rows.Close()
	var out []db.PositionedEvent
	for rows.Next() {
		var pe db.PositionedEvent
		var xact int64
		id, ev, err := scanEvent(prefixRow{rows, &xact})
		if err != nil {
			return nil, fmt.Errorf("postgres: events after %v: %w", after, err)
		}
		pe.Position, pe.Event = db.Position{Xact: xact, EventID: id}, ev
		out = append(out, pe)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: events after %v: %w", after, interpretError(err))
	}
	return out, nil
}

// prefixRow scans one extra leading column into first before the columns
// scanEvent reads.
type prefixRow struct {
	row   pgx.Row
	first *int64
}

func (r prefixRow) Scan(dest ...any) error { return r.row.Scan(append([]any{r.first}, dest...)...) }

// CountEventsAfter implements db.SubscriberStore.
func (o *ops) CountEventsAfter(ctx context.Context, after db.Position, limit int) (int64, error) {
	var n int64
	err := o.q.QueryRow(ctx, `
SELECT count(*) FROM (SELECT 1 FROM event e
 WHERE (e.xact_id, e.id) > ($1, $2) AND e.xact_id < `+safeXmin+` LIMIT $3) AS x`,
		after.Xact, after.EventID, limit).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: count events after %v: %w", after, interpretError(err))
	}
	return n, nil
}

// scanDeadLetter reads a row of subscriber_dead_letter (the columns of
// DeadLetters).
func scanDeadLetter(row pgx.Row) (db.DeadLetter, error) {
	var d db.DeadLetter
	var created, updated int64
	if err := row.Scan(&d.ID, &d.Subscriber, &d.EventID, &d.MessageID, &d.EventType, &d.Attempts, &d.Error,
		&d.Retry, &created, &updated); err != nil {
		return d, interpretError(err)
	}
	d.CreatedAt, d.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
	return d, nil
}

// horizonWait counts the committed events after a position at or above
// the horizon and finds the transaction holding it: the one whose id is
// the snapshot's xmin (pg_stat_activity and pg_prepared_xacts show 32-bit
// transaction ids, the xmin's low bits). The whole statement shares one
// snapshot.
const horizonWait = `
WITH h AS (SELECT ` + safeXmin + ` AS xmin)
SELECT (SELECT count(*) FROM (SELECT 1 FROM event e WHERE (e.xact_id, e.id) > ($1, $2) AND e.xact_id >= h.xmin LIMIT $3) AS x),
       a.pid, a.xact_start, coalesce(a.state, ''), coalesce(a.application_name, ''), coalesce(a.datname::text, ''),
       coalesce(a.usename::text, ''), p.gid, p.prepared
  FROM h
  LEFT JOIN pg_stat_activity a ON a.backend_xid::text::bigint = h.xmin % 4294967296
  LEFT JOIN pg_prepared_xacts p ON p.transaction::text::bigint = h.xmin % 4294967296
 LIMIT 1`

// HorizonWait implements db.SubscriberStore.
func (o *ops) HorizonWait(ctx context.Context, after db.Position, limit int) (db.HorizonWait, error) {
	var (
		w                        db.HorizonWait
		pid                      *int32
		start, prepared          *time.Time
		state, app, dbname, user string
		gid                      *string
	)
	err := o.q.QueryRow(ctx, horizonWait, after.Xact, after.EventID, limit).
		Scan(&w.HeldBack, &pid, &start, &state, &app, &dbname, &user, &gid, &prepared)
	if err != nil {
		return db.HorizonWait{}, fmt.Errorf("postgres: horizon wait after %v: %w", after, interpretError(err))
	}
	if w.HeldBack == 0 {
		return db.HorizonWait{}, nil
	}
	switch {
	case gid != nil:
		w.Holder = fmt.Sprintf("prepared transaction %q", *gid)
		if prepared != nil {
			w.Since = prepared.UTC()
		}
	case pid != nil:
		w.Holder = describeBackend(*pid, state, app, dbname, user)
		if start != nil {
			w.Since = start.UTC()
		}
	}
	return w, nil
}

// describeBackend describes a server process for an operator: "pid 42
// (idle in transaction, application psql, database winchester, user
// report)", leaving out what it may not see.
func describeBackend(pid int32, state, app, dbname, user string) string {
	var parts []string
	for _, kv := range [][2]string{{"", state}, {"application ", app}, {"database ", dbname}, {"user ", user}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+kv[1])
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("pid %d", pid)
	}
	return fmt.Sprintf("pid %d (%s)", pid, strings.Join(parts, ", "))
}

// DeadLetters implements db.SubscriberStore.
func (o *ops) DeadLetters(ctx context.Context, subscriber string, retryOnly bool, limit int) ([]db.DeadLetter, error) {
	out, err := collect(scanDeadLetter)(o.q.Query(ctx, `
SELECT id, subscriber, event_id, message_id, event_type, attempts, error, retry, created_at, updated_at
  FROM subscriber_dead_letter WHERE subscriber = $1 AND (retry OR NOT $2) ORDER BY id LIMIT $3`,
		subscriber, retryOnly, limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: dead letters of %q: %w", subscriber, err)
	}
	return out, nil
}

// CountDeadLetters implements db.SubscriberStore.
func (o *ops) CountDeadLetters(ctx context.Context, subscriber string) (int64, error) {
	var n int64
	if err := o.q.QueryRow(ctx, `SELECT count(*) FROM subscriber_dead_letter WHERE subscriber = $1`, subscriber).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count dead letters of %q: %w", subscriber, interpretError(err))
	}
	return n, nil
}

// MarkDeadLetters implements db.SubscriberStore.
func (o *ops) MarkDeadLetters(ctx context.Context, subscriber string, id int64, now time.Time) (int, error) {
	tag, err := o.q.Exec(ctx, `UPDATE subscriber_dead_letter SET retry = true, updated_at = $3
 WHERE subscriber = $1 AND ($2 = 0 OR id = $2)`, subscriber, id, db.Micros(now))
	if err == nil && id != 0 && tag.RowsAffected() == 0 {
		err = db.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: retry dead letters of %q: %w", subscriber, interpretError(err))
	}
	return int(tag.RowsAffected()), nil
}

// SettleDeadLetter implements db.SubscriberStore.
func (o *ops) SettleDeadLetter(ctx context.Context, id int64, attempts int, errMsg string, now time.Time) error {
	var err error
	if errMsg == "" {
		_, err = o.q.Exec(ctx, `DELETE FROM subscriber_dead_letter WHERE id = $1`, id)
	} else {
		_, err = o.q.Exec(ctx, `UPDATE subscriber_dead_letter SET retry = false, attempts = attempts + $2, error = $3, updated_at = $4
 WHERE id = $1`, id, attempts, errMsg, db.Micros(now))
	}
	if err != nil {
		return fmt.Errorf("postgres: settle dead letter %d: %w", id, interpretError(err))
	}
	return nil
}

var _ db.SubscriberStore = (*ops)(nil)
