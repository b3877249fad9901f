package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

const streamColumns = `s.id, s.name, s.stream_key, s.dist_traits, s.state, s.state_serial_no, s.open,
  s.first_event, s.last_event, s.expire_timestamp, s.fire_timestamp, s.fire_counts,
  s.claimed_by, s.lease_until, s.attempts, s.last_error, s.created_at, s.definition_version`

// streamReturning is streamColumns for RETURNING clauses (no alias).
const streamReturning = `id, name, stream_key, dist_traits, state, state_serial_no, open,
  first_event, last_event, expire_timestamp, fire_timestamp, fire_counts,
  claimed_by, lease_until, attempts, last_error, created_at, definition_version`

func scanStream(row pgx.Row) (stream.Stream, error) {
	var (
		s                            stream.Stream
		state                        int
		dist, counts                 []byte
		first, last                  int64
		expire, fire, lease, created *int64
		claimedBy, lastErr           *string
	)
	err := row.Scan(&s.ID, &s.Name, &s.Key, &dist, &state, &s.SerialNo, &s.Open,
		&first, &last, &expire, &fire, &counts,
		&claimedBy, &lease, &s.Attempts, &lastErr, &created, &s.DefinitionVersion)
	if err != nil {
		return s, interpretError(err)
	}
	s.State = stream.State(state)
	s.FirstEvent = db.FromMicros(first)
	s.LastEvent = db.FromMicros(last)
	s.ExpireTimestamp = optTime(expire)
	s.FireTimestamp = optTime(fire)
	s.LeaseUntil = optTime(lease)
	s.CreatedAt = optTime(created)
	if claimedBy != nil {
		s.ClaimedBy = *claimedBy
	}
	if lastErr != nil {
		s.LastError = *lastErr
	}
	if s.DistinguishedBy, err = db.DecodeTraits(dist); err != nil {
		return s, fmt.Errorf("stream %d: distinguishing traits: %w", s.ID, err)
	}
	if counts != nil {
		if err := json.Unmarshal(counts, &s.FireCounts); err != nil {
			return s, fmt.Errorf("stream %d: fire counts %s: %w", s.ID, counts, err)
		}
	}
	return s, nil
}

func collectStreams(rows pgx.Rows, err error) ([]stream.Stream, error) {
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	var out []stream.Stream
	for rows.Next() {
		s, err := scanStream(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, interpretError(rows.Err())
}

// limitArg is the value of a LIMIT parameter: NULL (no limit) for n <= 0.
func limitArg(n int) *int {
	if n <= 0 {
		return nil
	}
	return &n
}

func optTime(us *int64) time.Time {
	if us == nil {
		return time.Time{}
	}
	return db.FromMicros(*us)
}

// optMicros is the column value of an optional time: NULL for zero.
func optMicros(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	us := db.Micros(t)
	return &us
}

// optString is the column value of an optional text: NULL for "".
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// fireCounts is the column value of fire counts: NULL for nil. JSON goes
// to the server as text: a []byte would be sent as bytea in the simple
// protocol (PgBouncer), which jsonb refuses.
func fireCounts(c []int) *string {
	if c == nil {
		return nil
	}
	b, _ := json.Marshal(c)
	s := string(b)
	return &s
}

// traitsArg is the column value of typed traits (jsonb), as text for the
// same reason as fireCounts.
func traitsArg(traits map[string]stream.Value) string {
	return string(db.EncodeTraits(traits))
}

// ---- ingest

var selectOpenStream = `SELECT ` + streamColumns + ` FROM stream s
 WHERE s.name = $1 AND s.key_digest = stream_key_digest($2) AND s.stream_key = $2 AND s.open AND s.state = ` + db.StateSQL(stream.StateActive)

// OpenStream returns the open, active stream of trigger name with
// distinguishing key key, locking its row until the end of the
// transaction (FOR UPDATE); db.ErrNotFound if there is none.
func (o *ops) OpenStream(ctx context.Context, name, key string) (stream.Stream, error) {
	query := selectOpenStream
	if o.pool == nil {
		query += ` FOR UPDATE`
	}
	s, err := scanStream(o.q.QueryRow(ctx, query, name, key))
	if err != nil {
		return s, fmt.Errorf("postgres: open stream of trigger %q: %w", name, err)
	}
	return s, nil
}

var insertStream = `
INSERT INTO stream (name, stream_key, dist_traits, state, state_serial_no, open,
                    first_event, last_event, expire_timestamp, fire_timestamp, fire_counts, created_at, definition_version)
VALUES ($1, $2, $3, ` + db.StateSQL(stream.StateActive) + `, 0, TRUE, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (name, key_digest) WHERE open DO NOTHING
RETURNING id`

const insertLinks = `
INSERT INTO stream_event (stream_id, event_id)
SELECT $1, unnest($2::bigint[])
ON CONFLICT DO NOTHING`

// CreateStream inserts an open, active stream and links its events;
// created is false (and nothing is written) when an open stream with the
// same name and key exists.
func (o *ops) CreateStream(ctx context.Context, p db.NewStream) (int64, bool, error) {
	if p.Name == "" {
		return 0, false, errors.New("postgres: create stream: empty trigger name")
	}
	if want := stream.Key(p.DistinguishedBy); p.Key != want {
		return 0, false, fmt.Errorf("postgres: create stream of trigger %q: key %q is not the key %q of its distinguishing values", p.Name, p.Key, want)
	}
	if err := checkValues(p.DistinguishedBy); err != nil {
		return 0, false, fmt.Errorf("postgres: create stream of trigger %q: distinguishing %w", p.Name, err)
	}
	var id int64
	created := true
	err := o.inTx(ctx, func(q querier) error {
		err := q.QueryRow(ctx, insertStream, p.Name, p.Key, traitsArg(p.DistinguishedBy),
			db.Micros(p.FirstEvent), db.Micros(p.LastEvent), optMicros(p.ExpireTimestamp),
			optMicros(p.FireTimestamp), fireCounts(p.FireCounts), db.Micros(p.Now), p.DefinitionVersion).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			created = false
			return nil
		}
		if err != nil {
			return interpretError(err)
		}
		if len(p.EventIDs) > 0 {
			if _, err := q.Exec(ctx, insertLinks, id, p.EventIDs); err != nil {
				return interpretError(err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("postgres: create stream of trigger %q: %w", p.Name, err)
	}
	if !created {
		return 0, false, nil
	}
	return id, true, nil
}

// openActive is the condition of an append on the row s, written so that
// the planner cannot answer it with an index: an append finds its row by
// the primary key, whose pages the foreign-key check of the links it
// inserts next reads again, rather than by stream_state_id (state, id),
// whose pages nothing else of the ingest path reads. With a million open
// streams every other page an append reads is one the buffer pool has to
// fetch.
var openActive = `(s.open AND s.state = ` + db.StateSQL(stream.StateActive) + `) IS TRUE`

var updateAppend = `
UPDATE stream s SET first_event = $2, last_event = $3, expire_timestamp = $4,
       fire_timestamp = COALESCE($5, fire_timestamp), fire_counts = $6
 WHERE s.id = $1 AND ` + openActive

// AppendToStream links events to an open, active stream and updates its
// columns; db.ErrConflict when the stream is no longer open and active.
func (o *ops) AppendToStream(ctx context.Context, p db.AppendParams) error {
	err := o.inTx(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, updateAppend, p.StreamID, db.Micros(p.FirstEvent), db.Micros(p.LastEvent),
			optMicros(p.ExpireTimestamp), optMicros(p.FireTimestamp), fireCounts(p.FireCounts))
		if err != nil {
			return interpretError(err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%w: stream is not open and active", db.ErrConflict)
		}
		if len(p.EventIDs) > 0 {
			if _, err := q.Exec(ctx, insertLinks, p.StreamID, p.EventIDs); err != nil {
				return interpretError(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: append %d events to stream %d: %w", len(p.EventIDs), p.StreamID, err)
	}
	return nil
}

// CloseStream marks a stream closed for new events. Closing a closed
// stream does nothing; db.ErrNotFound if the stream does not exist.
func (o *ops) CloseStream(ctx context.Context, id int64) error {
	var exists bool
	err := o.q.QueryRow(ctx, `
WITH u AS (UPDATE stream SET open = FALSE WHERE id = $1 AND open RETURNING id)
SELECT EXISTS (SELECT 1 FROM u) OR EXISTS (SELECT 1 FROM stream WHERE id = $1)`, id).Scan(&exists)
	if err == nil && !exists {
		err = db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: close stream %d: %w", id, interpretError(err))
	}
	return nil
}

// ---- workers

var (
	selectReadyFire = `SELECT ` + streamColumns + ` FROM stream s
 WHERE ` + db.ReadySQL(stream.Fire, "$1") + `
 ORDER BY s.fire_timestamp, s.id LIMIT $2`
	selectReadyExpire = `SELECT ` + streamColumns + ` FROM stream s
 WHERE ` + db.ReadySQL(stream.Expire, "$1") + `
 ORDER BY s.expire_timestamp, s.id LIMIT $2`
)

// ReadyStreams returns up to p.Limit streams (all with a limit <= 0) ready
// for p.Action at p.Now, in deadline order. It takes no locks: claiming is the caller's
// compare-and-set (SetStreamState).
func (o *ops) ReadyStreams(ctx context.Context, p db.ReadyParams) ([]stream.Stream, error) {
	var query string
	switch p.Action {
	case db.Fire:
		query = selectReadyFire
	case db.Expire:
		query = selectReadyExpire
	default:
		return nil, fmt.Errorf("postgres: ready streams: unknown action %d", int(p.Action))
	}
	out, err := collectStreams(o.q.Query(ctx, query, db.Micros(p.Now), limitArg(p.Limit)))
	if err != nil {
		return nil, fmt.Errorf("postgres: streams ready to %s: %w", p.Action, err)
	}
	return out, nil
}

var selectStaleClaims = `SELECT ` + streamColumns + ` FROM stream s
 WHERE s.state IN (` + db.StateSQL(stream.StateFiring) + `, ` + db.StateSQL(stream.StateExpiring) + `) AND s.lease_until < $1
 ORDER BY s.lease_until, s.id LIMIT $2`

// StaleClaims returns up to limit streams (all with limit <= 0) in firing
// or expiring whose lease ended before now, oldest lease first.
func (o *ops) StaleClaims(ctx context.Context, now time.Time, limit int) ([]stream.Stream, error) {
	out, err := collectStreams(o.q.Query(ctx, selectStaleClaims, db.Micros(now), limitArg(limit)))
	if err != nil {
		return nil, fmt.Errorf("postgres: stale claims: %w", err)
	}
	return out, nil
}

// updateState is the compare-and-set of every transition. Each optional
// column has a flag parameter: false leaves the column as is.
var updateState = `
UPDATE stream SET state = $3, state_serial_no = state_serial_no + 1,
       open = CASE WHEN $3 = ` + db.StateSQL(stream.StateActive) + ` THEN open ELSE FALSE END,
       claimed_by       = CASE WHEN $4  THEN $5  ELSE claimed_by END,
       lease_until      = CASE WHEN $6  THEN $7  ELSE lease_until END,
       attempts         = CASE WHEN $8  THEN $9  ELSE attempts END,
       last_error       = CASE WHEN $10 THEN $11 ELSE last_error END,
       fire_timestamp   = CASE WHEN $12 THEN $13 ELSE fire_timestamp END,
       expire_timestamp = CASE WHEN $14 THEN $15 ELSE expire_timestamp END
 WHERE id = $1 AND state_serial_no = $2
   AND ($16 = 0
        OR ($16 = ` + strconv.Itoa(int(stream.Fire)) + ` AND ` + db.ReadySQL(stream.Fire, "$17") + `)
        OR ($16 = ` + strconv.Itoa(int(stream.Expire)) + ` AND ` + db.ReadySQL(stream.Expire, "$17") + `))
RETURNING ` + streamReturning

// SetStreamState applies p if the stream's state_serial_no is p.SerialNo
// and returns the stream as stored; db.ErrConflict if the serial differs,
// db.ErrNotFound if the stream is gone.
func (o *ops) SetStreamState(ctx context.Context, p db.SetStateParams) (stream.Stream, error) {
	if !p.State.Valid() {
		return stream.Stream{}, fmt.Errorf("postgres: set state of stream %d: invalid state %d", p.ID, int(p.State))
	}
	var (
		claimedBy, lastErr *string
		lease, fire, exp   *int64
		attempts           int
	)
	if p.ClaimedBy != nil {
		claimedBy = optString(*p.ClaimedBy)
	}
	if p.LastError != nil {
		lastErr = optString(*p.LastError)
	}
	if p.LeaseUntil != nil {
		lease = optMicros(*p.LeaseUntil)
	}
	if p.FireTimestamp != nil {
		fire = optMicros(*p.FireTimestamp)
	}
	if p.ExpireTimestamp != nil {
		exp = optMicros(*p.ExpireTimestamp)
	}
	if p.Attempts != nil {
		attempts = *p.Attempts
	}
	s, err := scanStream(o.q.QueryRow(ctx, updateState, p.ID, p.SerialNo, int(p.State),
		p.ClaimedBy != nil, claimedBy,
		p.LeaseUntil != nil, lease,
		p.Attempts != nil, attempts,
		p.LastError != nil, lastErr,
		p.FireTimestamp != nil, fire,
		p.ExpireTimestamp != nil, exp,
		int(p.ReadyFor), p.ReadyAt.UnixMicro()))
	if errors.Is(err, db.ErrNotFound) {
		err = o.missingOrConflict(ctx, p.ID, p.SerialNo)
	}
	if err != nil {
		return stream.Stream{}, fmt.Errorf("postgres: set stream %d (serial %d) to %s: %w", p.ID, p.SerialNo, p.State, err)
	}
	return s, nil
}

// missingOrConflict explains a compare-and-set that changed no row.
func (o *ops) missingOrConflict(ctx context.Context, id, serialNo int64) error {
	var current int64
	err := o.q.QueryRow(ctx, `SELECT state_serial_no FROM stream WHERE id = $1`, id).Scan(&current)
	if err != nil {
		return interpretError(err)
	}
	return fmt.Errorf("%w: state_serial_no is %d, not %d", db.ErrConflict, current, serialNo)
}

var updateReset = `
UPDATE stream SET state = CASE state WHEN ` + db.StateSQL(stream.StateError) + ` THEN ` + db.StateSQL(stream.StateRetryFire) + ` ELSE ` + db.StateSQL(stream.StateRetryExpire) + ` END,
       state_serial_no = state_serial_no + 1
 WHERE id = $1 AND state IN (` + db.StateSQL(stream.StateError) + `, ` + db.StateSQL(stream.StateExpireError) + `)
RETURNING ` + streamReturning

const selectStream = `SELECT ` + streamColumns + ` FROM stream s WHERE s.id = $1`

// ResetStream moves error to retry_fire and expire_error to retry_expire
// (serial+1); a stream in any other state is returned unchanged.
func (o *ops) ResetStream(ctx context.Context, id int64) (stream.Stream, error) {
	s, err := scanStream(o.q.QueryRow(ctx, updateReset, id))
	if errors.Is(err, db.ErrNotFound) {
		s, err = scanStream(o.q.QueryRow(ctx, selectStream, id))
	}
	if err != nil {
		return stream.Stream{}, fmt.Errorf("postgres: reset stream %d: %w", id, err)
	}
	return s, nil
}

// PurgeStream deletes a stream and its event links (not the events); with
// serialNo >= 0 only if its state_serial_no is serialNo.
func (o *ops) PurgeStream(ctx context.Context, id int64, serialNo int64) error {
	tag, err := o.q.Exec(ctx, `DELETE FROM stream WHERE id = $1 AND ($2::bigint < 0 OR state_serial_no = $2)`, id, serialNo)
	if err == nil && tag.RowsAffected() != 1 {
		err = o.missingOrConflict(ctx, id, serialNo)
	}
	if err != nil {
		return fmt.Errorf("postgres: purge stream %d: %w", id, interpretError(err))
	}
	return nil
}

// ---- reads

// StreamByID returns a stream; db.ErrNotFound if none.
func (o *ops) StreamByID(ctx context.Context, id int64) (stream.Stream, error) {
	s, err := scanStream(o.q.QueryRow(ctx, selectStream, id))
	if err != nil {
		return s, fmt.Errorf("postgres: stream %d: %w", id, err)
	}
	return s, nil
}

// selectStreamEvents walks the given streams' links and events by their
// keys, one stream at a time (LATERAL), whatever the table statistics say:
// a hash join over the whole event table, which the planner picks for a
// long id list on young tables, costs more the more events are stored.
const selectStreamEvents = `SELECT sid.id, ` + eventColumns + `
  FROM unnest($1::bigint[]) AS sid(id)
 CROSS JOIN LATERAL (
   SELECT e.* FROM stream_event se JOIN event e ON e.id = se.event_id
    WHERE se.stream_id = sid.id
   OFFSET 0 -- kept a subquery: not flattened into a join over all links
 ) e
 ORDER BY sid.id, e.timestamp, e.id`

// streamEvents loads the events of several streams in one query.
func (o *ops) streamEvents(ctx context.Context, ids []int64) (map[int64][]stream.Event, error) {
	rows, err := o.q.Query(ctx, selectStreamEvents, ids)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	out := make(map[int64][]stream.Event, len(ids))
	for rows.Next() {
		var (
			sid, id int64
			ev      stream.Event
			us      int64
			traits  []byte
		)
		if err := rows.Scan(&sid, &id, &ev.MessageID, &ev.Type, &us, &traits); err != nil {
			return nil, interpretError(err)
		}
		ev.Timestamp = db.FromMicros(us)
		if ev.Traits, err = db.DecodeTraits(traits); err != nil {
			return nil, fmt.Errorf("event %d: %w", id, err)
		}
		out[sid] = append(out[sid], ev)
	}
	return out, interpretError(rows.Err())
}

// StreamEvents returns the events of a stream ordered by timestamp then
// id, in one query.
func (o *ops) StreamEvents(ctx context.Context, streamID int64) ([]stream.Event, error) {
	evs, err := o.streamEvents(ctx, []int64{streamID})
	if err != nil {
		return nil, fmt.Errorf("postgres: events of stream %d: %w", streamID, err)
	}
	return evs[streamID], nil
}

func streamConds(p db.FindStreamsParams) (conds, string, db.Mark, error) {
	var c conds
	m, err := db.ParseMark(p.Mark)
	if err != nil {
		return c, "", m, err
	}
	if p.StreamID != 0 {
		c.add("s.id = $?", p.StreamID)
	}
	if p.State != 0 {
		c.add("s.state = $?", int(p.State))
	}
	if !p.OlderThan.IsZero() {
		c.add("s.first_event < $?", db.Micros(p.OlderThan))
	}
	if !p.YoungerThan.IsZero() {
		c.add("s.last_event > $?", db.Micros(p.YoungerThan))
	}
	if p.Name != "" {
		c.add("s.name = $?", p.Name)
	}
	if len(p.DistinguishedBy) > 0 {
		// Containment is implied by the typed equality below and is what
		// the GIN index stream_dist_traits answers.
		arg := traitsArg(p.DistinguishedBy)
		c.add("s.dist_traits @> $?::jsonb", arg)
		c.add(fmt.Sprintf(traitsMatch, "s.dist_traits"), arg)
	}
	order := c.addMark(m, "s.id")
	return c, order, m, nil
}

// FindStreams lists streams with the filters of p (and their events, in
// one more query, with p.IncludeEvents).
func (o *ops) FindStreams(ctx context.Context, p db.FindStreamsParams) ([]db.FoundStream, error) {
	c, order, m, err := streamConds(p)
	if err != nil {
		return nil, err
	}
	query := `SELECT ` + streamColumns + ` FROM stream s` + c.sql() + order
	if p.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(p.Limit)
	}
	streams, err := collectStreams(o.q.Query(ctx, query, o.planned(c.args)...))
	if err != nil {
		return nil, fmt.Errorf("postgres: find streams: %w", err)
	}
	out := make([]db.FoundStream, len(streams))
	ids := make([]int64, len(streams))
	for i, s := range streams {
		out[i] = db.FoundStream{Stream: s, Mark: m.Format(s.ID)}
		ids[i] = s.ID
	}
	if p.IncludeEvents && len(ids) > 0 {
		evs, err := o.streamEvents(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("postgres: find streams: %w", err)
		}
		for i := range out {
			out[i].Events = evs[out[i].Stream.ID]
		}
	}
	return out, nil
}

// CountStreams counts the streams FindStreams would return without limit.
func (o *ops) CountStreams(ctx context.Context, p db.FindStreamsParams) (int64, error) {
	c, _, _, err := streamConds(p)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := o.q.QueryRow(ctx, `SELECT count(*) FROM stream s`+c.sql(), o.planned(c.args)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count streams: %w", interpretError(err))
	}
	return n, nil
}

// StreamHasDistTrait returns the stream's distinguishing value of name
// when it has one equal to value (any value when value is the zero Value);
// db.ErrNotFound if the stream does not exist.
func (o *ops) StreamHasDistTrait(ctx context.Context, streamID int64, name string, value stream.Value) (stream.Value, bool, error) {
	var raw []byte
	err := o.q.QueryRow(ctx, `SELECT dist_traits -> $2 FROM stream WHERE id = $1`, streamID, name).Scan(&raw)
	if err == nil && raw == nil {
		return stream.Value{}, false, nil
	}
	if err != nil {
		return stream.Value{}, false, fmt.Errorf("postgres: distinguishing trait %q of stream %d: %w", name, streamID, interpretError(err))
	}
	v, err := db.DecodeValue(raw)
	if err != nil {
		return stream.Value{}, false, fmt.Errorf("postgres: distinguishing trait %q of stream %d: %w", name, streamID, err)
	}
	if !value.IsZero() && !v.Equal(value) {
		return stream.Value{}, false, nil
	}
	return v, true, nil
}
