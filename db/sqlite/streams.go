package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

const streamCols = `s.id, s.name, s.stream_key, s.dist_traits, s.state, s.state_serial_no, s.open,
	s.first_event, s.last_event, s.expire_timestamp, s.fire_timestamp, s.fire_counts,
	s.claimed_by, s.lease_until, s.attempts, s.last_error, s.created_at, s.definition_version`

// returningCols is streamCols for RETURNING clauses (no table alias).
var returningCols = strings.ReplaceAll(streamCols, "s.", "")

func scanStream(sc scanner) (stream.Stream, error) {
	var (
		st                          stream.Stream
		dist                        []byte
		state                       int
		open                        bool
		first, last                 int64
		expire, fire, lease, create sql.NullInt64
		counts, claimedBy, lastErr  sql.NullString
	)
	err := sc.Scan(&st.ID, &st.Name, &st.Key, &dist, &state, &st.SerialNo, &open,
		&first, &last, &expire, &fire, &counts, &claimedBy, &lease, &st.Attempts, &lastErr, &create, &st.DefinitionVersion)
	if err != nil {
		return st, err
	}
	st.State = stream.State(state)
	st.Open = open
	st.FirstEvent = db.FromMicros(first)
	st.LastEvent = db.FromMicros(last)
	st.ExpireTimestamp = nullTime(expire)
	st.FireTimestamp = nullTime(fire)
	st.LeaseUntil = nullTime(lease)
	st.CreatedAt = nullTime(create)
	st.ClaimedBy = claimedBy.String
	st.LastError = lastErr.String
	if st.DistinguishedBy, err = db.DecodeTraits(dist); err != nil {
		return st, fmt.Errorf("stream %d: distinguishing traits: %w", st.ID, err)
	}
	if counts.Valid {
		if err := json.Unmarshal([]byte(counts.String), &st.FireCounts); err != nil {
			return st, fmt.Errorf("stream %d: fire counts %q: %w", st.ID, counts.String, err)
		}
	}
	return st, nil
}

func nullTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return db.FromMicros(v.Int64)
}

// timeArg is the stored form of an optional time: NULL for the zero time.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return db.Micros(t)
}

// countsArg is the stored form of fire counts: NULL for nil.
func countsArg(c []int) any {
	if c == nil {
		return nil
	}
	b, _ := json.Marshal(c)
	return string(b)
}

func textArg(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var openStreamSQL = `SELECT ` + streamCols + ` FROM stream s
 WHERE s.name = ? AND s.stream_key = ? AND s.open = 1 AND s.state = ` + db.StateSQL(stream.StateActive)

// OpenStream implements db.Ops.
func (o ops) OpenStream(ctx context.Context, name, key string) (stream.Stream, error) {
	st, err := scanStream(o.queryRow(ctx, openStreamSQL, name, key))
	if err != nil {
		return st, fmt.Errorf("sqlite: open stream of trigger %q key %q: %w", name, key, o.s.translate(err))
	}
	return st, nil
}

var createStreamSQL = `INSERT INTO stream (name, stream_key, dist_traits, state, state_serial_no, open,
	first_event, last_event, expire_timestamp, fire_timestamp, fire_counts, created_at, definition_version)
VALUES (?, ?, ?, ` + db.StateSQL(stream.StateActive) + `, 0, 1, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name, stream_key) WHERE open = 1 DO NOTHING
RETURNING id`

const linkSQL = `INSERT INTO stream_event (stream_id, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING`

// CreateStream implements db.Ops.
func (o ops) CreateStream(ctx context.Context, p db.NewStream) (id int64, created bool, err error) {
	if p.Name == "" {
		return 0, false, errors.New("sqlite: create stream: empty trigger name")
	}
	if want := stream.Key(p.DistinguishedBy); p.Key != want {
		return 0, false, fmt.Errorf("sqlite: create stream of trigger %q: key %q is not the key %q of its distinguishing values", p.Name, p.Key, want)
	}
	if err := stream.StorageLimits().CheckTraits(p.DistinguishedBy); err != nil {
		return 0, false, fmt.Errorf("sqlite: create stream of trigger %q: distinguishing %w", p.Name, err)
	}
	err = o.atomic(ctx, func(o ops) error {
		err := o.queryRow(ctx, createStreamSQL, p.Name, p.Key, db.EncodeTraits(p.DistinguishedBy),
			db.Micros(p.FirstEvent), db.Micros(p.LastEvent), timeArg(p.ExpireTimestamp), timeArg(p.FireTimestamp),
			countsArg(p.FireCounts), timeArg(p.Now), p.DefinitionVersion).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) { // a twin open stream exists
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlite: create stream of trigger %q: %w", p.Name, o.s.translate(err))
		}
		created = true
		return o.link(ctx, id, p.EventIDs)
	})
	if err != nil || !created {
		return 0, false, err
	}
	return id, true, nil
}

func (o ops) link(ctx context.Context, streamID int64, eventIDs []int64) error {
	for _, eid := range eventIDs {
		if _, err := o.exec(ctx, linkSQL, streamID, eid); err != nil {
			return fmt.Errorf("sqlite: link event %d to stream %d: %w", eid, streamID, o.s.translate(err))
		}
	}
	return nil
}

// appendTimesSQL reads what AppendToStream compares its times with; no
// row when the stream is not open and active.
var appendTimesSQL = `SELECT expire_timestamp, fire_timestamp FROM stream
 WHERE id = ? AND open = 1 AND state = ` + db.StateSQL(stream.StateActive)

// appendSQL are the append statements, indexed by the columns they set
// (appendExpire, appendFire): AppendToStream sets expire_timestamp and
// fire_timestamp only when their value changes.
// SQLite rewrites the entries of every index on a column an UPDATE sets,
// even to the same value (stream_ready_expire, stream_ready_fire), and
// most appends change neither time (a "$first + 30d" expiry, a fire time
// already set or still unset): with the streams spread over a large table
// each rewritten entry is one more page to write to the WAL at commit.
var appendSQL = func() [4]string {
	var out [4]string
	for v := range out {
		set := `first_event = ?, last_event = ?, fire_counts = ?`
		if v&appendExpire != 0 {
			set += `, expire_timestamp = ?`
		}
		if v&appendFire != 0 {
			set += `, fire_timestamp = ?`
		}
		out[v] = `UPDATE stream SET ` + set + `
 WHERE id = ? AND open = 1 AND state = ` + db.StateSQL(stream.StateActive)
	}
	return out
}()

// The bits of an appendSQL index: the columns the statement sets.
const (
	appendExpire = 1 << iota
	appendFire
)

// AppendToStream implements db.Ops. A zero FireTimestamp leaves the
// stored one (null stays null); the expiry and fire times are written
// only when they change.
func (o ops) AppendToStream(ctx context.Context, p db.AppendParams) error {
	return o.atomic(ctx, func(o ops) error {
		var expire, fire sql.NullInt64
		err := o.queryRow(ctx, appendTimesSQL, p.StreamID).Scan(&expire, &fire)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: append to stream %d: it is no longer open and active: %w", p.StreamID, db.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("sqlite: append to stream %d: %w", p.StreamID, o.s.translate(err))
		}
		variant := 0
		args := []any{db.Micros(p.FirstEvent), db.Micros(p.LastEvent), countsArg(p.FireCounts)}
		if !sameTime(expire, p.ExpireTimestamp) {
			variant |= appendExpire
			args = append(args, timeArg(p.ExpireTimestamp))
		}
		if !p.FireTimestamp.IsZero() && !sameTime(fire, p.FireTimestamp) {
			variant |= appendFire
			args = append(args, timeArg(p.FireTimestamp))
		}
		res, err := o.exec(ctx, appendSQL[variant], append(args, p.StreamID)...)
		if err != nil {
			return fmt.Errorf("sqlite: append to stream %d: %w", p.StreamID, o.s.translate(err))
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("sqlite: append to stream %d: it is no longer open and active: %w", p.StreamID, db.ErrConflict)
		}
		return o.link(ctx, p.StreamID, p.EventIDs)
	})
}

// sameTime reports whether the stored time v is t (null is the zero time).
func sameTime(v sql.NullInt64, t time.Time) bool {
	if t.IsZero() {
		return !v.Valid
	}
	return v.Valid && v.Int64 == db.Micros(t)
}

const closeStreamSQL = `UPDATE stream SET open = 0 WHERE id = ?`

// CloseStream implements db.Ops. Closing a closed stream does nothing.
func (o ops) CloseStream(ctx context.Context, id int64) error {
	res, err := o.exec(ctx, closeStreamSQL, id)
	if err != nil {
		return fmt.Errorf("sqlite: close stream %d: %w", id, o.s.translate(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("sqlite: close stream %d: %w", id, db.ErrNotFound)
	}
	return nil
}

// The ready and stale queries name their partial indexes: without
// statistics the planner would rather use stream_state and sort.
var readyFireSQL = `SELECT ` + streamCols + ` FROM stream s INDEXED BY stream_ready_fire
 WHERE ` + db.ReadySQL(stream.Fire, "?") + `
 ORDER BY s.fire_timestamp, s.id LIMIT ?`

var readyExpireSQL = `SELECT ` + streamCols + ` FROM stream s INDEXED BY stream_ready_expire
 WHERE ` + db.ReadySQL(stream.Expire, "?") + `
 ORDER BY s.expire_timestamp, s.id LIMIT ?`

// ReadyStreams implements db.Ops. A limit <= 0 means no limit.
func (o ops) ReadyStreams(ctx context.Context, p db.ReadyParams) ([]stream.Stream, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = -1
	}
	now := db.Micros(p.Now)
	var (
		rows *sql.Rows
		err  error
	)
	switch p.Action {
	case db.Fire:
		rows, err = o.query(ctx, readyFireSQL, now, limit)
	case db.Expire:
		rows, err = o.query(ctx, readyExpireSQL, now, limit)
	default:
		return nil, fmt.Errorf("sqlite: ready streams: unknown action %d", p.Action)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: streams ready to %s: %w", p.Action, o.s.translate(err))
	}
	return o.collectStreams(rows, "streams ready to "+p.Action.String())
}

var staleSQL = `SELECT ` + streamCols + ` FROM stream s INDEXED BY stream_stale_claim
 WHERE s.state IN (` + db.StateSQL(stream.StateFiring) + `, ` + db.StateSQL(stream.StateExpiring) + `) AND s.lease_until < ?
 ORDER BY s.lease_until, s.id LIMIT ?`

// StaleClaims implements db.Ops. A limit <= 0 means no limit.
func (o ops) StaleClaims(ctx context.Context, now time.Time, limit int) ([]stream.Stream, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := o.query(ctx, staleSQL, db.Micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stale claims: %w", o.s.translate(err))
	}
	return o.collectStreams(rows, "stale claims")
}

func (o ops) collectStreams(rows *sql.Rows, what string) ([]stream.Stream, error) {
	defer rows.Close()
	out := []stream.Stream{}
	for rows.Next() {
		st, err := scanStream(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, o.s.translate(err))
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, o.s.translate(err))
	}
	return out, nil
}

// SetStreamState implements db.Ops.
func (o ops) SetStreamState(ctx context.Context, p db.SetStateParams) (stream.Stream, error) {
	if !p.State.Valid() {
		return stream.Stream{}, fmt.Errorf("sqlite: set state of stream %d: invalid state %d", p.ID, int(p.State))
	}
	set := []string{"state = ?", "state_serial_no = state_serial_no + 1"}
	args := []any{int(p.State)}
	if p.State != stream.StateActive {
		set = append(set, "open = 0")
	}
	if p.ClaimedBy != nil {
		set, args = append(set, "claimed_by = ?"), append(args, textArg(*p.ClaimedBy))
	}
	if p.LeaseUntil != nil {
		set, args = append(set, "lease_until = ?"), append(args, timeArg(*p.LeaseUntil))
	}
	if p.Attempts != nil {
		set, args = append(set, "attempts = ?"), append(args, *p.Attempts)
	}
	if p.LastError != nil {
		set, args = append(set, "last_error = ?"), append(args, textArg(*p.LastError))
	}
	if p.FireTimestamp != nil {
		set, args = append(set, "fire_timestamp = ?"), append(args, timeArg(*p.FireTimestamp))
	}
	if p.ExpireTimestamp != nil {
		set, args = append(set, "expire_timestamp = ?"), append(args, timeArg(*p.ExpireTimestamp))
	}
	where := ` WHERE id = ? AND state_serial_no = ?`
	args = append(args, p.ID, p.SerialNo)
	if p.ReadyFor != 0 {
		where += ` AND ` + db.ReadySQL(p.ReadyFor, "?")
		args = append(args, timeArg(p.ReadyAt))
	}
	query := `UPDATE stream SET ` + strings.Join(set, ", ") + where + ` RETURNING ` + returningCols
	var st stream.Stream
	err := o.atomic(ctx, func(o ops) error {
		var err error
		st, err = scanStream(o.queryRow(ctx, query, args...))
		if errors.Is(err, sql.ErrNoRows) {
			return o.casFailed(ctx, "set state of stream", p.ID, p.SerialNo)
		}
		if err != nil {
			return fmt.Errorf("sqlite: set state of stream %d to %s: %w", p.ID, p.State, o.s.translate(err))
		}
		return nil
	})
	return st, err
}

const serialSQL = `SELECT state_serial_no FROM stream WHERE id = ?`

// casFailed explains a compare-and-set that matched no row: the stream is
// gone (ErrNotFound) or its serial moved on (ErrConflict).
func (o ops) casFailed(ctx context.Context, what string, id, serial int64) error {
	var cur int64
	err := o.queryRow(ctx, serialSQL, id).Scan(&cur)
	if err != nil {
		return fmt.Errorf("sqlite: %s %d: %w", what, id, o.s.translate(err))
	}
	return fmt.Errorf("sqlite: %s %d: state_serial_no is %d, not %d: %w", what, id, cur, serial, db.ErrConflict)
}

// resetSQL moves error to retry_fire and expire_error to retry_expire.
var resetSQL = `UPDATE stream SET state = CASE state WHEN ` + db.StateSQL(stream.StateError) + ` THEN ` + db.StateSQL(stream.StateRetryFire) + ` ELSE ` + db.StateSQL(stream.StateRetryExpire) + ` END,
       state_serial_no = state_serial_no + 1
 WHERE id = ? AND state IN (` + db.StateSQL(stream.StateError) + `, ` + db.StateSQL(stream.StateExpireError) + `)
RETURNING ` + returningCols

// ResetStream implements db.Ops: one compare-and-set statement, as in
// the PostgreSQL driver; a stream in another state is read and returned
// unchanged.
func (o ops) ResetStream(ctx context.Context, id int64) (stream.Stream, error) {
	var st stream.Stream
	err := o.atomic(ctx, func(o ops) error {
		var err error
		st, err = scanStream(o.queryRow(ctx, resetSQL, id))
		if errors.Is(err, sql.ErrNoRows) {
			st, err = scanStream(o.queryRow(ctx, streamByIDSQL, id))
		}
		return err
	})
	if err != nil {
		return stream.Stream{}, fmt.Errorf("sqlite: reset stream %d: %w", id, o.s.translate(err))
	}
	return st, nil
}

// PurgeStream implements db.Ops. Its event links go with it (ON DELETE
// CASCADE); the events stay.
func (o ops) PurgeStream(ctx context.Context, id int64, serialNo int64) error {
	return o.atomic(ctx, func(o ops) error {
		query, args := `DELETE FROM stream WHERE id = ?`, []any{id}
		if serialNo >= 0 {
			query, args = query+` AND state_serial_no = ?`, append(args, serialNo)
		}
		res, err := o.exec(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("sqlite: purge stream %d: %w", id, o.s.translate(err))
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
		if serialNo < 0 {
			return fmt.Errorf("sqlite: purge stream %d: %w", id, db.ErrNotFound)
		}
		return o.casFailed(ctx, "purge stream", id, serialNo)
	})
}

const streamByIDSQL = `SELECT ` + streamCols + ` FROM stream s WHERE s.id = ?`

// StreamByID implements db.Ops.
func (o ops) StreamByID(ctx context.Context, id int64) (stream.Stream, error) {
	st, err := scanStream(o.queryRow(ctx, streamByIDSQL, id))
	if err != nil {
		return st, fmt.Errorf("sqlite: stream %d: %w", id, o.s.translate(err))
	}
	return st, nil
}

// StreamEvents implements db.Ops.
func (o ops) StreamEvents(ctx context.Context, streamID int64) ([]stream.Event, error) {
	byStream, err := o.eventsOf(ctx, []int64{streamID})
	if err != nil {
		return nil, err
	}
	if evs := byStream[streamID]; evs != nil {
		return evs, nil
	}
	return []stream.Event{}, nil
}

// eventsOf loads the events of several streams in one query per chunk,
// each stream's ordered by timestamp then id.
func (o ops) eventsOf(ctx context.Context, streamIDs []int64) (map[int64][]stream.Event, error) {
	out := make(map[int64][]stream.Event, len(streamIDs))
	const chunk = 500
	for start := 0; start < len(streamIDs); start += chunk {
		ids := streamIDs[start:min(start+chunk, len(streamIDs))]
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		query := `SELECT se.stream_id, ` + eventCols + ` FROM stream_event se JOIN event e ON e.id = se.event_id
 WHERE se.stream_id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)
 ORDER BY se.stream_id, e.timestamp, e.id`
		rows, err := o.query(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: stream events: %w", o.s.translate(err))
		}
		for rows.Next() {
			var sid int64
			var (
				se     db.StoredEvent
				ts     int64
				traits []byte
			)
			if err := rows.Scan(&sid, &se.ID, &se.Event.MessageID, &se.Event.Type, &ts, &traits); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: stream events: %w", o.s.translate(err))
			}
			se.Event.Timestamp = db.FromMicros(ts)
			if se.Event.Traits, err = db.DecodeTraits(traits); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: stream %d: event %d: %w", sid, se.ID, err)
			}
			out[sid] = append(out[sid], se.Event)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("sqlite: stream events: %w", o.s.translate(err))
		}
	}
	return out, nil
}

// streamsFilter is the WHERE clause of FindStreams and CountStreams.
func streamsFilter(p db.FindStreamsParams) (db.Mark, string, []any, error) {
	m, err := db.ParseMark(p.Mark)
	if err != nil {
		return m, "", nil, err
	}
	var (
		where []string
		args  []any
	)
	if p.StreamID != 0 {
		where, args = append(where, "s.id = ?"), append(args, p.StreamID)
	}
	if p.State != 0 {
		where, args = append(where, "s.state = ?"), append(args, int(p.State))
	}
	if !p.OlderThan.IsZero() {
		where, args = append(where, "s.first_event < ?"), append(args, db.Micros(p.OlderThan))
	}
	if !p.YoungerThan.IsZero() {
		where, args = append(where, "s.last_event > ?"), append(args, db.Micros(p.YoungerThan))
	}
	if p.Name != "" {
		where, args = append(where, "s.name = ?"), append(args, p.Name)
	}
	where, args = traitConds(where, args, "s.dist_traits", p.DistinguishedBy)
	where, args = markCond(where, args, "s.id", m)
	return m, whereClause(where), args, nil
}

// FindStreams implements db.Ops.
func (o ops) FindStreams(ctx context.Context, p db.FindStreamsParams) ([]db.FoundStream, error) {
	m, where, args, err := streamsFilter(p)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find streams: %w", err)
	}
	var out []db.FoundStream
	err = o.atomic(ctx, func(o ops) error { // one snapshot for streams and their events
		rows, err := o.query(ctx, `SELECT `+streamCols+` FROM stream s`+where+orderLimit("s.id", m, p.Limit), args...)
		if err != nil {
			return fmt.Errorf("sqlite: find streams: %w", o.s.translate(err))
		}
		sts, err := o.collectStreams(rows, "find streams")
		if err != nil {
			return err
		}
		out = make([]db.FoundStream, len(sts))
		ids := make([]int64, len(sts))
		for i, st := range sts {
			out[i] = db.FoundStream{Stream: st, Mark: m.Format(st.ID)}
			ids[i] = st.ID
		}
		if !p.IncludeEvents || len(ids) == 0 {
			return nil
		}
		evs, err := o.eventsOf(ctx, ids)
		if err != nil {
			return err
		}
		for i := range out {
			out[i].Events = evs[out[i].Stream.ID]
			if out[i].Events == nil {
				out[i].Events = []stream.Event{}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CountStreams implements db.Ops.
func (o ops) CountStreams(ctx context.Context, p db.FindStreamsParams) (int64, error) {
	_, where, args, err := streamsFilter(p)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count streams: %w", err)
	}
	var n int64
	if err := o.queryRow(ctx, `SELECT count(*) FROM stream s`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count streams: %w", o.s.translate(err))
	}
	return n, nil
}

// StreamHasDistTrait implements db.Ops. ErrNotFound if the stream does not
// exist.
func (o ops) StreamHasDistTrait(ctx context.Context, streamID int64, name string, value stream.Value) (stream.Value, bool, error) {
	var dist []byte
	if err := o.queryRow(ctx, `SELECT dist_traits FROM stream WHERE id = ?`, streamID).Scan(&dist); err != nil {
		return stream.Value{}, false, fmt.Errorf("sqlite: stream %d: %w", streamID, o.s.translate(err))
	}
	traits, err := db.DecodeTraits(dist)
	if err != nil {
		return stream.Value{}, false, fmt.Errorf("sqlite: stream %d: distinguishing traits: %w", streamID, err)
	}
	v, ok := traits[name]
	if !ok || (!value.IsZero() && !v.Equal(value)) {
		return stream.Value{}, false, nil
	}
	return v, true, nil
}
