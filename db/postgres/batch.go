package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// The ingest path's stream operations for many streams, one statement
// each (db.BatchIngester). Their parameters are parallel arrays expanded
// with unnest, as in SaveEvents.

// selectOpenStreams looks up each key of the arrays $1 (names) and $2
// (keys) with the open-key index, one key after the other in array order
// (a nested loop: the lateral subquery depends on the key), locking each
// row as it is found in selectOpenStreamsForUpdate. A join would let the
// planner scan and hash every open stream instead, whatever the number of
// keys.
var (
	selectOpenStreams = `SELECT ` + streamColumns + `
  FROM unnest($1::text[], $2::text[]) AS k(name, stream_key)
 CROSS JOIN LATERAL (SELECT * FROM stream s
                      WHERE s.name = k.name AND s.key_digest = stream_key_digest(k.stream_key)
                        AND s.stream_key = k.stream_key AND s.open AND s.state = ` + db.StateSQL(stream.StateActive)
	selectOpenStreamsForUpdate = selectOpenStreams + ` FOR UPDATE) s`
	selectOpenStreamsNoLock    = selectOpenStreams + `) s`
)

// OpenStreams returns the open, active stream of each key that has one.
// Inside a transaction it locks their rows until commit (FOR UPDATE), in
// key order: the keys are sorted (bytewise, as the "C" collation of the
// columns sorts them) and deduplicated before the lookup, which takes
// them in array order. The advisory locks of the keys (lockKeysSQL) and
// the lookup are sent together, one round trip: PostgreSQL runs them in
// that order, and the lookup not at all when the locks fail.
func (o *ops) OpenStreams(ctx context.Context, keys []db.StreamKey) (map[db.StreamKey]stream.Stream, error) {
	out := make(map[db.StreamKey]stream.Stream, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b db.StreamKey) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Key, b.Key))
	})
	sorted = slices.Compact(sorted)
	names := make([]string, len(sorted))
	skeys := make([]string, len(sorted))
	for i, k := range sorted {
		names[i], skeys[i] = k.Name, k.Key
	}
	var streams []stream.Stream
	var err error
	if o.pool != nil {
		streams, err = collectStreams(o.q.Query(ctx, selectOpenStreamsNoLock, names, skeys))
	} else {
		var batch pgx.Batch
		batch.Queue(lockKeysSQL, keyHashes(sorted))
		batch.Queue(selectOpenStreamsForUpdate, names, skeys)
		br := o.q.SendBatch(ctx, &batch)
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("postgres: lock the keys of %d streams: %w", len(sorted), interpretError(err))
		}
		streams, err = collectStreams(br.Query())
		if cerr := br.Close(); err == nil && cerr != nil {
			err = interpretError(cerr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: open streams of %d keys: %w", len(names), err)
	}
	for _, s := range streams {
		out[db.StreamKey{Name: s.Name, Key: s.Key}] = s
	}
	return out, nil
}

// lockKeysSQL takes transaction-level advisory locks, one per key hash,
// in ascending order. The function is volatile, so PostgreSQL calls it
// after sorting (9.6 and later).
//
// A batch takes, before any row lock, an advisory lock on every key it
// looks up (keyHashes), in the order of the keys' hashes. A batch then
// owns its keys until commit: no other ingester can create, extend or lock
// a stream of them meanwhile, so the creates of a batch are never refused
// and two batches cannot deadlock, however their keys overlap (row locks
// alone could: a create refused because another transaction committed a
// stream for the key forced a second lookup out of key order). Two keys
// with the same hash share a lock, which only serialises them.
const lockKeysSQL = `SELECT pg_advisory_xact_lock(h) FROM unnest($1::bigint[]) AS h ORDER BY h`

// keyHashes returns the lock keys of keys for lockKeysSQL: sorted,
// without duplicates.
func keyHashes(keys []db.StreamKey) []int64 {
	hashes := make([]int64, 0, len(keys))
	for _, k := range keys {
		h := fnv.New64a()
		h.Write([]byte(k.Name))
		h.Write([]byte{0})
		h.Write([]byte(k.Key))
		hashes = append(hashes, int64(h.Sum64()))
	}
	slices.Sort(hashes)
	return slices.Compact(hashes)
}

// closeStreams closes the open streams among $1 and returns the ids of
// $1 that name no stream.
const closeStreams = `
WITH closed AS (UPDATE stream SET open = FALSE WHERE id = ANY($1::bigint[]) AND open RETURNING id)
SELECT DISTINCT k.id FROM unnest($1::bigint[]) AS k(id)
 WHERE NOT EXISTS (SELECT 1 FROM stream s WHERE s.id = k.id)
 ORDER BY k.id`

// CloseStreams marks streams closed for new events. Closing a closed
// stream does nothing; db.ErrNotFound, naming them, when some ids name no
// stream (the others are closed).
func (o *ops) CloseStreams(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := o.q.Query(ctx, closeStreams, ids)
	var missing []int64
	if err == nil {
		missing, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		return fmt.Errorf("postgres: close %d streams: %w", len(ids), interpretError(err))
	}
	if len(missing) > 0 {
		return fmt.Errorf("postgres: close %d streams: streams %v: %w", len(ids), missing, db.ErrNotFound)
	}
	return nil
}

// insertStreams inserts the streams given as parallel arrays ($1–$10 and $13, in
// array order) with ids drawn from the table's sequence, and links the
// events ($11: the 1-based position of the stream in the arrays, $12: the
// event id) of those actually inserted. It returns each stream's drawn id
// and whether it was inserted, in array order (the caller gives no event
// twice for one stream). A row whose open key is taken (by a stored
// stream, an uncommitted one, whose transaction it waits for, or an
// earlier row of the same statement) is skipped.
var insertStreams = `
WITH seq AS MATERIALIZED (SELECT pg_get_serial_sequence('stream', 'id') AS name),
u AS (
  SELECT nextval(seq.name) AS id, u.*
    FROM seq, unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
                $7::bigint[], $8::text[], $9::boolean[], $10::bigint[], $13::bigint[])
         WITH ORDINALITY AS u(name, stream_key, dist_traits, first_event, last_event, expire_timestamp,
                              fire_timestamp, fire_counts, closed, created_at, definition_version, n)
), ins AS (
  INSERT INTO stream (id, name, stream_key, dist_traits, state, state_serial_no, open,
                      first_event, last_event, expire_timestamp, fire_timestamp, fire_counts, created_at,
                      definition_version)
  SELECT u.id, u.name, u.stream_key, u.dist_traits::jsonb, ` + db.StateSQL(stream.StateActive) + `, 0, NOT u.closed,
         u.first_event, u.last_event, u.expire_timestamp, u.fire_timestamp, u.fire_counts::jsonb, u.created_at,
         u.definition_version
    FROM u ORDER BY u.n
  ON CONFLICT (name, key_digest) WHERE open DO NOTHING
  RETURNING id
), links AS (
  INSERT INTO stream_event (stream_id, event_id)
  SELECT ins.id, l.event_id
    FROM unnest($11::bigint[], $12::bigint[]) AS l(n, event_id)
    JOIN u ON u.n = l.n JOIN ins ON ins.id = u.id
)
SELECT u.id, ins.id IS NOT NULL FROM u LEFT JOIN ins ON ins.id = u.id ORDER BY u.n`

// CreateStreams inserts streams (open and active, or closed when
// p.Closed) and links their events in one statement. created[i] is false
// (and ids[i] 0) when an open stream with the same name and key exists,
// stored before or earlier in ps.
func (o *ops) CreateStreams(ctx context.Context, ps []db.BatchNewStream) ([]int64, []bool, error) {
	ids := make([]int64, len(ps))
	created := make([]bool, len(ps))
	if len(ps) == 0 {
		return ids, created, nil
	}
	var (
		names, keys, dists      = make([]string, len(ps)), make([]string, len(ps)), make([]string, len(ps))
		firsts, lasts, nows     = make([]int64, len(ps)), make([]int64, len(ps)), make([]int64, len(ps))
		expires, fires          = make([]*int64, len(ps)), make([]*int64, len(ps))
		counts                  = make([]*string, len(ps))
		closed                  = make([]bool, len(ps))
		versions                = make([]int64, len(ps))
		linkStreams, linkEvents []int64
	)
	for i, p := range ps {
		if err := checkNewStream(p.NewStream); err != nil {
			return nil, nil, fmt.Errorf("postgres: create %d streams: stream %d: %w", len(ps), i, err)
		}
		names[i], keys[i], dists[i] = p.Name, p.Key, traitsArg(p.DistinguishedBy)
		firsts[i], lasts[i], nows[i] = db.Micros(p.FirstEvent), db.Micros(p.LastEvent), db.Micros(p.Now)
		expires[i], fires[i] = optMicros(p.ExpireTimestamp), optMicros(p.FireTimestamp)
		counts[i] = fireCounts(p.FireCounts)
		closed[i] = p.Closed
		versions[i] = p.DefinitionVersion
		// A new stream has no links yet: without repeated ids the links
		// need no ON CONFLICT clause (which costs a speculative insertion
		// per row).
		for _, e := range distinct(p.EventIDs) {
			linkStreams = append(linkStreams, int64(i+1))
			linkEvents = append(linkEvents, e)
		}
	}
	rows, err := o.q.Query(ctx, insertStreams, names, keys, dists, firsts, lasts, expires, fires, counts, closed, nows,
		linkStreams, linkEvents, versions)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: create %d streams: %w", len(ps), interpretError(err))
	}
	var (
		i        int
		id       int64
		inserted bool
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &inserted}, func() error {
		if i >= len(ps) {
			return fmt.Errorf("more result rows than the %d streams", len(ps))
		}
		if inserted {
			ids[i], created[i] = id, true
		}
		i++
		return nil
	})
	if err == nil && i != len(ps) {
		err = fmt.Errorf("%d result rows for %d streams", i, len(ps))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: create %d streams: %w", len(ps), interpretError(err))
	}
	return ids, created, nil
}

// distinct returns ids without repetitions, in order (ids itself when
// it has none).
func distinct(ids []int64) []int64 {
	seen := make(map[int64]struct{}, len(ids))
	for i, id := range ids {
		if _, dup := seen[id]; dup {
			out := slices.Clone(ids[:i])
			for _, id := range ids[i+1:] {
				if _, dup := seen[id]; !dup {
					seen[id] = struct{}{}
					out = append(out, id)
				}
			}
			return out
		}
		seen[id] = struct{}{}
	}
	return ids
}

// checkNewStream rejects what CreateStream rejects.
func checkNewStream(p db.NewStream) error {
	if p.Name == "" {
		return errors.New("empty trigger name")
	}
	if want := stream.Key(p.DistinguishedBy); p.Key != want {
		return fmt.Errorf("trigger %q: key %q is not the key %q of its distinguishing values", p.Name, p.Key, want)
	}
	if err := checkValues(p.DistinguishedBy); err != nil {
		return fmt.Errorf("trigger %q: distinguishing %w", p.Name, err)
	}
	return nil
}

// appendStreams updates the open, active streams among the parallel
// arrays $1–$6, links the events ($7: stream id, $8: event id) of those
// updated and returns their ids.
var appendStreams = `
WITH u AS (
  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])
         AS u(id, first_event, last_event, expire_timestamp, fire_timestamp, fire_counts)
), upd AS (
  UPDATE stream s SET first_event = u.first_event, last_event = u.last_event, expire_timestamp = u.expire_timestamp,
         fire_timestamp = COALESCE(u.fire_timestamp, s.fire_timestamp), fire_counts = u.fire_counts::jsonb
    FROM u
   WHERE s.id = u.id AND ` + openActive + `
  RETURNING s.id
), links AS (
  INSERT INTO stream_event (stream_id, event_id)
  SELECT l.stream_id, l.event_id FROM unnest($7::bigint[], $8::bigint[]) AS l(stream_id, event_id)
   WHERE l.stream_id IN (SELECT id FROM upd)
  ON CONFLICT DO NOTHING
)
SELECT id FROM upd`

// AppendToStreams links events to open, active streams and updates their
// columns in one statement; conflicted are the streams that are not open
// and active, left untouched. Several elements for one stream are merged
// first, with the result of applying them in order.
func (o *ops) AppendToStreams(ctx context.Context, ps []db.AppendParams) ([]int64, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	merged := mergeAppends(ps)
	n := len(merged)
	var (
		ids, firsts, lasts      = make([]int64, n), make([]int64, n), make([]int64, n)
		expires, fires          = make([]*int64, n), make([]*int64, n)
		counts                  = make([]*string, n)
		linkStreams, linkEvents []int64
	)
	for i, p := range merged {
		ids[i], firsts[i], lasts[i] = p.StreamID, db.Micros(p.FirstEvent), db.Micros(p.LastEvent)
		expires[i], fires[i] = optMicros(p.ExpireTimestamp), optMicros(p.FireTimestamp)
		counts[i] = fireCounts(p.FireCounts)
		for _, e := range p.EventIDs {
			linkStreams = append(linkStreams, p.StreamID)
			linkEvents = append(linkEvents, e)
		}
	}
	rows, err := o.q.Query(ctx, appendStreams, ids, firsts, lasts, expires, fires, counts, linkStreams, linkEvents)
	var updated []int64
	if err == nil {
		updated, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: append to %d streams: %w", n, interpretError(err))
	}
	ok := make(map[int64]bool, len(updated))
	for _, id := range updated {
		ok[id] = true
	}
	var conflicted []int64
	for _, p := range merged {
		if !ok[p.StreamID] {
			conflicted = append(conflicted, p.StreamID)
		}
	}
	return conflicted, nil
}

// mergeAppends folds the elements of ps for one stream into one, in the
// place of the first: the last element's columns (a zero FireTimestamp
// keeps the one before) and every element's events.
func mergeAppends(ps []db.AppendParams) []db.AppendParams {
	at := make(map[int64]int, len(ps))
	out := make([]db.AppendParams, 0, len(ps))
	for _, p := range ps {
		i, ok := at[p.StreamID]
		if !ok {
			at[p.StreamID] = len(out)
			out = append(out, p)
			continue
		}
		q := &out[i]
		ids := append(slices.Clip(q.EventIDs), p.EventIDs...)
		fire := q.FireTimestamp
		*q = p
		q.EventIDs = ids
		if q.FireTimestamp.IsZero() {
			q.FireTimestamp = fire
		}
	}
	return out
}

var _ db.BatchIngester = (*ops)(nil)
