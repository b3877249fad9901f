package postgres

import (
	"context"
	"fmt"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

const insertFixtureEvent = `
INSERT INTO event (id, message_id, event_type, timestamp, traits)
VALUES ($1, $2, $3, $4, $5)`

const insertFixtureStream = `
INSERT INTO stream (id, name, stream_key, dist_traits, state, state_serial_no, open,
                    first_event, last_event, expire_timestamp, fire_timestamp, fire_counts,
                    claimed_by, lease_until, attempts, last_error, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`

// moveSequences sets the id sequences past the highest ids, so rows
// inserted later do not collide with the fixture's.
const moveSequences = `
SELECT setval(pg_get_serial_sequence('event', 'id'), COALESCE((SELECT max(id) FROM event), 0) + 1, false),
       setval(pg_get_serial_sequence('stream', 'id'), COALESCE((SELECT max(id) FROM stream), 0) + 1, false)`

// LoadFixture inserts the fixture's rows with their ids, in one
// transaction, and moves the id sequences past them. Streams in state
// active are open, except that of several active streams with one name and
// key (possible in the original's data, impossible here) only the first is
// open; the others are loaded closed.
func (s *Store) LoadFixture(ctx context.Context, f db.Fixture) error {
	err := s.inTx(ctx, func(q querier) error {
		for _, fe := range f.Events {
			ev := fe.Event
			if err := checkEvent(int(fe.ID), ev); err != nil {
				return err
			}
			if _, err := q.Exec(ctx, insertFixtureEvent, fe.ID, ev.MessageID, ev.Type,
				db.Micros(ev.Timestamp), traitsArg(ev.Traits)); err != nil {
				return fmt.Errorf("event %d: %w", fe.ID, interpretError(err))
			}
		}
		openKeys := map[[2]string]bool{}
		for _, fs := range f.Streams {
			st := fs.Stream
			key := stream.Key(st.DistinguishedBy)
			open := st.State == stream.StateActive && !openKeys[[2]string{st.Name, key}]
			if open {
				openKeys[[2]string{st.Name, key}] = true
			}
			if err := checkValues(st.DistinguishedBy); err != nil {
				return fmt.Errorf("stream %d: distinguishing %w", st.ID, err)
			}
			if _, err := q.Exec(ctx, insertFixtureStream, st.ID, st.Name, key,
				traitsArg(st.DistinguishedBy), int(st.State), st.SerialNo, open,
				db.Micros(st.FirstEvent), db.Micros(st.LastEvent), optMicros(st.ExpireTimestamp),
				optMicros(st.FireTimestamp), fireCounts(st.FireCounts), optString(st.ClaimedBy),
				optMicros(st.LeaseUntil), st.Attempts, optString(st.LastError), optMicros(st.CreatedAt)); err != nil {
				return fmt.Errorf("stream %d: %w", st.ID, interpretError(err))
			}
			if len(fs.EventIDs) > 0 {
				if _, err := q.Exec(ctx, insertLinks, st.ID, fs.EventIDs); err != nil {
					return fmt.Errorf("events of stream %d: %w", st.ID, interpretError(err))
				}
			}
		}
		if _, err := q.Exec(ctx, moveSequences); err != nil {
			return fmt.Errorf("move id sequences: %w", interpretError(err))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: load fixture: %w", err)
	}
	return nil
}
