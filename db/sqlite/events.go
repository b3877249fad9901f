package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

const eventCols = "e.id, e.message_id, e.event_type, e.timestamp, e.traits"

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect returns a function that scans every row of a query with scan
// and closes the rows; it takes the query's results as they are, so a call
// reads collect(scanJob)(o.query(...)).
func collect[T any](scan func(scanner) (T, error)) func(*sql.Rows, error) ([]T, error) {
	return func(rows *sql.Rows, err error) ([]T, error) {
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []T
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	}
}

func scanEvent(sc scanner) (db.StoredEvent, error) {
	var (
		se     db.StoredEvent
		ts     int64
		traits []byte
	)
	if err := sc.Scan(&se.ID, &se.Event.MessageID, &se.Event.Type, &ts, &traits); err != nil {
		return se, err
	}
	se.Event.Timestamp = db.FromMicros(ts)
	tr, err := db.DecodeTraits(traits)
	if err != nil {
		return se, fmt.Errorf("event %d: %w", se.ID, err)
	}
	se.Event.Traits = tr
	return se, nil
}

// checkEvent refuses events no store can keep (stream.StorageLimits): the
// rules are the stream package's, so both drivers refuse the same events
// (SQLite itself would store a NUL or invalid UTF-8; PostgreSQL would not).
// The error wraps stream.ErrInvalidEvent.
func checkEvent(i int, ev stream.Event) error {
	if err := stream.StorageLimits().CheckEvent(ev); err != nil {
		return fmt.Errorf("event %d: %w", i, err)
	}
	return nil
}

const insertEventSQL = `INSERT INTO event (message_id, event_type, timestamp, traits) VALUES (?, ?, ?, ?)
ON CONFLICT (message_id) DO NOTHING RETURNING id`

// SaveEvents implements db.Ops.
func (o ops) SaveEvents(ctx context.Context, events []stream.Event) ([]int64, error) {
	for i, ev := range events {
		if err := checkEvent(i, ev); err != nil {
			return nil, fmt.Errorf("sqlite: save events: %w", err)
		}
	}
	ids := make([]int64, len(events))
	if len(events) == 0 {
		return ids, nil
	}
	err := o.atomic(ctx, func(o ops) error {
		insert := o.stmt(ctx, insertEventSQL) // once per batch
		for i, ev := range events {
			args := []any{ev.MessageID, ev.Type, db.Micros(ev.Timestamp), db.EncodeTraits(ev.Traits)}
			var row scanner
			if insert != nil {
				row = insert.QueryRowContext(ctx, args...)
			} else {
				row = o.queryRow(ctx, insertEventSQL, args...)
			}
			err := row.Scan(&ids[i])
			if errors.Is(err, sql.ErrNoRows) { // the message_id exists: a duplicate
				ids[i] = 0
				continue
			}
			if err != nil {
				return fmt.Errorf("sqlite: save event %q: %w", ev.MessageID, o.s.translate(err))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

const eventByMessageIDSQL = `SELECT ` + eventCols + ` FROM event e WHERE e.message_id = ?`

// EventByMessageID implements db.Ops.
func (o ops) EventByMessageID(ctx context.Context, messageID string) (db.StoredEvent, error) {
	se, err := scanEvent(o.queryRow(ctx, eventByMessageIDSQL, messageID))
	if err != nil {
		return db.StoredEvent{}, fmt.Errorf("sqlite: event with message_id %q: %w", messageID, o.s.translate(err))
	}
	se.Mark = db.Mark{}.Format(se.ID)
	return se, nil
}

// valueCond returns the SQL condition that the typed JSON value in column
// expression col (as stored by db.EncodeValue) equals v, and its arguments.
func valueCond(col string, v stream.Value) (string, []any) {
	switch v.Kind() {
	case stream.KindString:
		return "json_extract(" + col + ", '$.s') = ?", []any{v.Text()}
	case stream.KindInt:
		return "json_extract(" + col + ", '$.i') = ?", []any{v.IntValue()}
	case stream.KindFloat:
		return "json_extract(" + col + ", '$.f') = ?", []any{v.FloatValue()}
	case stream.KindDatetime:
		return "json_extract(" + col + ", '$.d') = ?", []any{db.Micros(v.Time())}
	case stream.KindTimeRange:
		b, e := v.Range()
		return "(json_extract(" + col + ", '$.r[0]') = ? AND json_extract(" + col + ", '$.r[1]') = ?)", []any{db.Micros(b), db.Micros(e)}
	}
	return "0", nil // the zero Value matches nothing
}

// traitConds adds one condition per trait of want: the JSON object in
// column col has the trait with that typed value.
func traitConds(where []string, args []any, col string, want map[string]stream.Value) ([]string, []any) {
	for _, name := range slices.Sorted(maps.Keys(want)) {
		cond, cargs := valueCond("j.value", want[name])
		where = append(where, "EXISTS (SELECT 1 FROM json_each("+col+") j WHERE j.key = ? AND "+cond+")")
		args = append(args, name)
		args = append(args, cargs...)
	}
	return where, args
}

// markCond adds the paging bound of m on column col.
func markCond(where []string, args []any, col string, m db.Mark) ([]string, []any) {
	if m.After == 0 {
		return where, args
	}
	if m.Ascending {
		return append(where, col+" > ?"), append(args, m.After)
	}
	return append(where, col+" < ?"), append(args, m.After)
}

func orderLimit(col string, m db.Mark, limit int) string {
	s := " ORDER BY " + col + " DESC"
	if m.Ascending {
		s = " ORDER BY " + col + " ASC"
	}
	if limit > 0 {
		s += fmt.Sprintf(" LIMIT %d", limit)
	}
	return s
}

func whereClause(where []string) string {
	if len(where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(where, " AND ")
}

// eventsFilter is the WHERE clause of FindEvents and CountEvents.
func eventsFilter(p db.FindEventsParams) (db.Mark, string, []any, error) {
	m, err := db.ParseMark(p.Mark)
	if err != nil {
		return m, "", nil, err
	}
	var (
		where []string
		args  []any
	)
	if !p.From.IsZero() {
		where, args = append(where, "e.timestamp > ?"), append(args, db.Micros(p.From))
	}
	if !p.To.IsZero() {
		where, args = append(where, "e.timestamp <= ?"), append(args, db.Micros(p.To))
	}
	if p.EventType != "" {
		where, args = append(where, "e.event_type = ?"), append(args, p.EventType)
	}
	where, args = traitConds(where, args, "e.traits", p.Traits)
	where, args = markCond(where, args, "e.id", m)
	return m, whereClause(where), args, nil
}

// FindEvents implements db.Ops.
func (o ops) FindEvents(ctx context.Context, p db.FindEventsParams) ([]db.StoredEvent, error) {
	m, where, args, err := eventsFilter(p)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find events: %w", err)
	}
	rows, err := o.query(ctx, `SELECT `+eventCols+` FROM event e`+where+orderLimit("e.id", m, p.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find events: %w", o.s.translate(err))
	}
	defer rows.Close()
	out := []db.StoredEvent{}
	for rows.Next() {
		se, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: find events: %w", o.s.translate(err))
		}
		se.Mark = m.Format(se.ID)
		out = append(out, se)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: find events: %w", o.s.translate(err))
	}
	return out, nil
}

// CountEvents implements db.Ops.
func (o ops) CountEvents(ctx context.Context, p db.FindEventsParams) (int64, error) {
	_, where, args, err := eventsFilter(p)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count events: %w", err)
	}
	var n int64
	if err := o.queryRow(ctx, `SELECT count(*) FROM event e`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count events: %w", o.s.translate(err))
	}
	return n, nil
}

// trimSQL deletes the oldest events before a time that no unfinished
// stream holds; their links to completed streams go with them (ON DELETE
// CASCADE).
var trimSQL = `DELETE FROM event WHERE id IN (
	SELECT e.id FROM event e
	 WHERE e.timestamp < ?
	   AND NOT EXISTS (SELECT 1 FROM stream_event se JOIN stream s ON s.id = se.stream_id
	                    WHERE se.event_id = e.id AND s.state <> ` + db.StateSQL(stream.StateCompleted) + `)
	 ORDER BY e.timestamp, e.id
	 LIMIT ?)`

// TrimEvents implements db.Ops. A limit <= 0 means no limit.
func (o ops) TrimEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	res, err := o.exec(ctx, trimSQL, db.Micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: trim events before %s: %w", stream.FormatTime(before), o.s.translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: trim events: %w", o.s.translate(err))
	}
	return int(n), nil
}

// purgeEventSQL deletes one event; its links go with it (ON DELETE
// CASCADE, foreign keys are on).
const purgeEventSQL = `DELETE FROM event WHERE id = ?`

// PurgeEvents implements db.Ops.
func (o ops) PurgeEvents(ctx context.Context, ids []int64) (int, error) {
	n := 0
	err := o.atomic(ctx, func(o ops) error {
		for _, id := range ids {
			res, err := o.exec(ctx, purgeEventSQL, id)
			if err != nil {
				return o.s.translate(err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return o.s.translate(err)
			}
			n += int(k)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge %d events: %w", len(ids), err)
	}
	return n, nil
}

// EventTypes implements db.Ops.
func (o ops) EventTypes(ctx context.Context) ([]string, error) {
	rows, err := o.query(ctx, `SELECT DISTINCT event_type FROM event ORDER BY event_type`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: event types: %w", o.s.translate(err))
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("sqlite: event types: %w", o.s.translate(err))
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: event types: %w", o.s.translate(err))
	}
	return out, nil
}
