package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// saveEventsBatch is the number of events stored by one INSERT.
const saveEventsBatch = 1000

// insertEvents stores a batch given as parallel arrays, in array order
// (so ids increase in input order); message ids stored before are skipped
// and only the new rows are returned.
const insertEvents = `
INSERT INTO event (message_id, event_type, timestamp, traits)
SELECT u.message_id, u.event_type, u.ts, u.traits::jsonb
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
       WITH ORDINALITY AS u(message_id, event_type, ts, traits, n)
 ORDER BY u.n
ON CONFLICT (message_id) DO NOTHING
RETURNING id, message_id`

// SaveEvents stores events in batches of saveEventsBatch, all in one
// transaction. ids[i] is 0 for a message_id stored before or earlier in
// events.
func (o *ops) SaveEvents(ctx context.Context, events []stream.Event) ([]int64, error) {
	e, err := db.EncodeEvents(events)
	if err != nil {
		return nil, fmt.Errorf("postgres: save events: %w", err)
	}
	return o.SaveEncodedEvents(ctx, e)
}

// SaveEncodedEvents is SaveEvents of events checked and encoded
// beforehand (db.EncodedEventSaver).
func (o *ops) SaveEncodedEvents(ctx context.Context, e db.EncodedEvents) ([]int64, error) {
	n := e.Len()
	ids := make([]int64, n)
	if n == 0 {
		return ids, nil
	}
	err := o.inTx(ctx, func(q querier) error {
		first := make(map[string]int, n) // message_id → index of its first occurrence
		for start := 0; start < n; start += saveEventsBatch {
			end := min(start+saveEventsBatch, n)
			mids := make([]string, 0, end-start)
			types := make([]string, 0, end-start)
			traits := make([]string, 0, end-start)
			ts := make([]int64, 0, end-start)
			for i := start; i < end; i++ {
				ev, tr := e.Event(i)
				if _, dup := first[ev.MessageID]; dup {
					continue
				}
				first[ev.MessageID] = i
				mids = append(mids, ev.MessageID)
				types = append(types, ev.Type)
				ts = append(ts, db.Micros(ev.Timestamp))
				traits = append(traits, tr)
			}
			if len(mids) == 0 {
				continue
			}
			rows, err := q.Query(ctx, insertEvents, mids, types, ts, traits)
			if err != nil {
				return interpretError(err)
			}
			var id int64
			var mid string
			_, err = pgx.ForEachRow(rows, []any{&id, &mid}, func() error {
				ids[first[mid]] = id
				return nil
			})
			if err != nil {
				return interpretError(err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: save %d events: %w", n, err)
	}
	return ids, nil
}

// checkEvent rejects what no store can keep (stream.StorageLimits): the
// rules are the stream package's, so both drivers refuse the same events.
// The error wraps stream.ErrInvalidEvent.
func checkEvent(i int, ev stream.Event) error {
	if err := stream.StorageLimits().CheckEvent(ev); err != nil {
		return fmt.Errorf("event %d: %w", i, err)
	}
	return nil
}

// checkValues rejects distinguishing values that cannot be stored.
func checkValues(traits map[string]stream.Value) error {
	return stream.StorageLimits().CheckTraits(traits)
}

const eventColumns = `e.id, e.message_id, e.event_type, e.timestamp, e.traits`

func scanEvent(row pgx.Row) (int64, stream.Event, error) {
	var (
		id     int64
		ev     stream.Event
		us     int64
		traits []byte
	)
	if err := row.Scan(&id, &ev.MessageID, &ev.Type, &us, &traits); err != nil {
		return 0, ev, interpretError(err)
	}
	ev.Timestamp = db.FromMicros(us)
	t, err := db.DecodeTraits(traits)
	if err != nil {
		return 0, ev, fmt.Errorf("event %d: %w", id, err)
	}
	ev.Traits = t
	return id, ev, nil
}

const selectEventByMessageID = `SELECT ` + eventColumns + ` FROM event e WHERE e.message_id = $1`

// EventByMessageID returns a stored event; db.ErrNotFound if none.
func (o *ops) EventByMessageID(ctx context.Context, messageID string) (db.StoredEvent, error) {
	id, ev, err := scanEvent(o.q.QueryRow(ctx, selectEventByMessageID, messageID))
	if err != nil {
		return db.StoredEvent{}, fmt.Errorf("postgres: event with message_id %q: %w", messageID, err)
	}
	return db.StoredEvent{ID: id, Event: ev, Mark: db.Mark{}.Format(id)}, nil
}

// conds collects the WHERE conditions and arguments of a query built from
// fixed fragments; only placeholders carry input.
type conds struct {
	where []string
	args  []any
}

// add appends a condition whose "$?" placeholders all stand for arg.
func (c *conds) add(cond string, arg any) {
	c.args = append(c.args, arg)
	c.where = append(c.where, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(c.args))))
}

func (c *conds) sql() string {
	if len(c.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.where, " AND ")
}

// addMark adds the paging bound and returns the ORDER BY of the listing.
func (c *conds) addMark(m db.Mark, column string) string {
	if m.Ascending {
		if m.After > 0 {
			c.add(column+" > $?", m.After)
		}
		return " ORDER BY " + column + " ASC"
	}
	if m.After > 0 {
		c.add(column+" < $?", m.After)
	}
	return " ORDER BY " + column + " DESC"
}

// traitsMatch is true when every trait of the $? object is present in the
// column with the same typed value (jsonb equality of the tagged forms).
const traitsMatch = `NOT EXISTS (SELECT 1 FROM jsonb_each($?::jsonb) f WHERE %s -> f.key IS DISTINCT FROM f.value)`

func eventConds(p db.FindEventsParams) (conds, string, db.Mark, error) {
	var c conds
	m, err := db.ParseMark(p.Mark)
	if err != nil {
		return c, "", m, err
	}
	if !p.From.IsZero() {
		c.add("e.timestamp > $?", db.Micros(p.From))
	}
	if !p.To.IsZero() {
		c.add("e.timestamp <= $?", db.Micros(p.To))
	}
	if p.EventType != "" {
		c.add("e.event_type = $?", p.EventType)
	}
	if len(p.Traits) > 0 {
		c.add(fmt.Sprintf(traitsMatch, "e.traits"), traitsArg(p.Traits))
	}
	order := c.addMark(m, "e.id")
	return c, order, m, nil
}

// FindEvents lists events with the filters of p, newest id first unless
// the mark asks for ascending order.
func (o *ops) FindEvents(ctx context.Context, p db.FindEventsParams) ([]db.StoredEvent, error) {
	c, order, m, err := eventConds(p)
	if err != nil {
		return nil, err
	}
	query := `SELECT ` + eventColumns + ` FROM event e` + c.sql() + order
	if p.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(p.Limit)
	}
	rows, err := o.q.Query(ctx, query, o.planned(c.args)...)
	if err != nil {
		return nil, fmt.Errorf("postgres: find events: %w", interpretError(err))
	}
	defer rows.Close()
	var out []db.StoredEvent
	for rows.Next() {
		id, ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: find events: %w", err)
		}
		out = append(out, db.StoredEvent{ID: id, Event: ev, Mark: m.Format(id)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: find events: %w", interpretError(err))
	}
	return out, nil
}

// CountEvents counts the events FindEvents would return without limit.
func (o *ops) CountEvents(ctx context.Context, p db.FindEventsParams) (int64, error) {
	c, _, _, err := eventConds(p)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := o.q.QueryRow(ctx, `SELECT count(*) FROM event e`+c.sql(), o.planned(c.args)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count events: %w", interpretError(err))
	}
	return n, nil
}

// trimEvents deletes the oldest events before $1, at most $2, except those
// linked to a stream that is not completed (D-18). Links to completed
// streams go with the events (ON DELETE CASCADE).
var trimEvents = `
DELETE FROM event WHERE id IN (
  SELECT e.id FROM event e
   WHERE e.timestamp < $1
     AND NOT EXISTS (SELECT 1 FROM stream_event se JOIN stream s ON s.id = se.stream_id
                      WHERE se.event_id = e.id AND s.state <> ` + db.StateSQL(stream.StateCompleted) + `)
   ORDER BY e.timestamp, e.id
   LIMIT $2)`

// TrimEvents deletes up to limit events (all with limit <= 0) older than
// before, oldest first, keeping every event of an unfinished stream.
func (o *ops) TrimEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := o.q.Exec(ctx, trimEvents, db.Micros(before), limitArg(limit))
	if err != nil {
		return 0, fmt.Errorf("postgres: trim events before %s: %w", stream.FormatTime(before), interpretError(err))
	}
	return int(tag.RowsAffected()), nil
}

// purgeEvents deletes events by id; their links go with them (ON DELETE
// CASCADE).
const purgeEvents = `DELETE FROM event WHERE id = ANY($1::bigint[])`

// PurgeEvents deletes the events ids and their stream links.
func (o *ops) PurgeEvents(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := o.q.Exec(ctx, purgeEvents, ids)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge %d events: %w", len(ids), interpretError(err))
	}
	return int(tag.RowsAffected()), nil
}

// selectEventTypes walks the event_type index one distinct value at a time
// (a loose index scan), which stays fast with millions of events.
const selectEventTypes = `
WITH RECURSIVE t(event_type) AS (
  (SELECT event_type FROM event ORDER BY event_type LIMIT 1)
  UNION ALL
  SELECT (SELECT e.event_type FROM event e WHERE e.event_type > t.event_type ORDER BY e.event_type LIMIT 1)
    FROM t WHERE t.event_type IS NOT NULL
)
SELECT event_type FROM t WHERE event_type IS NOT NULL`

// EventTypes returns the distinct stored event types in byte order.
func (o *ops) EventTypes(ctx context.Context) ([]string, error) {
	rows, err := o.q.Query(ctx, selectEventTypes)
	if err != nil {
		return nil, fmt.Errorf("postgres: event types: %w", interpretError(err))
	}
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: event types: %w", interpretError(err))
	}
	return types, nil
}

var _ db.EncodedEventSaver = (*ops)(nil)
