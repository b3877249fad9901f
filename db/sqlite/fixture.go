package sqlite

import (
	"context"
	"fmt"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// LoadFixture implements db.FixtureLoader: it inserts the rows with their
// ids in one transaction (AUTOINCREMENT moves the id sequences past them).
// Streams in state active are open, except that of several active streams
// with one name and key (possible in the original's data, impossible here)
// only the first is open; the others are loaded closed.
func (s *Store) LoadFixture(ctx context.Context, f db.Fixture) error {
	return s.inTx(ctx, func(ctx context.Context, o ops) error {
		for _, fe := range f.Events {
			ev := fe.Event
			if err := checkEvent(int(fe.ID), ev); err != nil {
				return fmt.Errorf("sqlite: load fixture: %w", err)
			}
			_, err := o.exec(ctx, `INSERT INTO event (id, message_id, event_type, timestamp, traits) VALUES (?, ?, ?, ?, ?)`,
				fe.ID, ev.MessageID, ev.Type, db.Micros(ev.Timestamp), db.EncodeTraits(ev.Traits))
			if err != nil {
				return fmt.Errorf("sqlite: load fixture: event %d: %w", fe.ID, s.translate(err))
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
			_, err := o.exec(ctx, `INSERT INTO stream (id, name, stream_key, dist_traits, state, state_serial_no, open,
	first_event, last_event, expire_timestamp, fire_timestamp, fire_counts, claimed_by, lease_until, attempts, last_error, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				st.ID, st.Name, key, db.EncodeTraits(st.DistinguishedBy), int(st.State), st.SerialNo, open,
				db.Micros(st.FirstEvent), db.Micros(st.LastEvent), timeArg(st.ExpireTimestamp), timeArg(st.FireTimestamp),
				countsArg(st.FireCounts), textArg(st.ClaimedBy), timeArg(st.LeaseUntil), st.Attempts, textArg(st.LastError), timeArg(st.CreatedAt))
			if err != nil {
				return fmt.Errorf("sqlite: load fixture: stream %d: %w", st.ID, s.translate(err))
			}
			if err := o.link(ctx, st.ID, fs.EventIDs); err != nil {
				return fmt.Errorf("sqlite: load fixture: %w", err)
			}
		}
		return nil
	})
}
