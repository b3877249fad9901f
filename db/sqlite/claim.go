package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// claimSQL claims the first ready streams in deadline order in one
// statement. SQLite has one writer, so the selection and the update see
// the same rows; the ready condition is that of ReadyStreams.
func claimSQL(a stream.Action) string {
	index, order := "stream_ready_fire", "fire_timestamp"
	if a == stream.Expire {
		index, order = "stream_ready_expire", "expire_timestamp"
	}
	return `UPDATE stream SET state = ?, state_serial_no = state_serial_no + 1, open = 0,
       claimed_by = ?, lease_until = ?
 WHERE id IN (SELECT s.id FROM stream s INDEXED BY ` + index + `
               WHERE ` + db.ReadySQL(a, "?") + `
               ORDER BY s.` + order + `, s.id LIMIT ?)
RETURNING ` + returningCols
}

var (
	claimFireSQL   = claimSQL(stream.Fire)
	claimExpireSQL = claimSQL(stream.Expire)
)

// ClaimStreams claims up to p.Limit streams ready for p.Action in one
// statement (see db.Ops).
func (o ops) ClaimStreams(ctx context.Context, p db.ClaimParams) ([]stream.Stream, error) {
	query := claimFireSQL
	switch p.Action {
	case db.Fire:
	case db.Expire:
		query = claimExpireSQL
	default:
		return nil, fmt.Errorf("sqlite: claim streams: unknown action %d", int(p.Action))
	}
	if p.Limit < 1 {
		return nil, fmt.Errorf("sqlite: claim streams: limit %d, want at least 1", p.Limit)
	}
	what := "claim streams ready to " + p.Action.String()
	var out []stream.Stream
	err := o.atomic(ctx, func(o ops) error {
		rows, err := o.query(ctx, query, int(p.Action.ClaimState()), textArg(p.Owner), timeArg(p.LeaseUntil), db.Micros(p.Now), p.Limit)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, o.s.translate(err))
		}
		out, err = o.collectStreams(rows, what)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, p.Action.ReadyOrder) // RETURNING has no order
	return out, nil
}

const renewLeaseSQL = `UPDATE stream SET lease_until = ?, state_serial_no = state_serial_no + 1
 WHERE id = ? AND state_serial_no = ? RETURNING state_serial_no`

// RenewLeases extends the leases of the claims still held, in one
// transaction (see db.Ops).
func (o ops) RenewLeases(ctx context.Context, claims []db.StreamSerial, leaseUntil time.Time) (map[int64]int64, error) {
	renewed := make(map[int64]int64, len(claims))
	if len(claims) == 0 {
		return renewed, nil
	}
	err := o.atomic(ctx, func(o ops) error {
		for _, c := range claims {
			var serial int64
			err := o.queryRow(ctx, renewLeaseSQL, timeArg(leaseUntil), c.ID, c.SerialNo).Scan(&serial)
			if err == nil {
				renewed[c.ID] = serial
				continue
			}
			if err = o.s.translate(err); !errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("sqlite: renew lease of stream %d: %w", c.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return renewed, nil
}

var (
	completeStreamSQL = `UPDATE stream SET state = ` + db.StateSQL(stream.StateCompleted) + `, state_serial_no = state_serial_no + 1, open = 0,
       claimed_by = NULL, lease_until = NULL
 WHERE id = ? AND state_serial_no = ?`
	purgeClaimedSQL = `DELETE FROM stream WHERE id = ? AND state_serial_no = ?`
)

// CompleteStreams completes or purges the claimed streams still at their
// serial, in one transaction (see db.Ops).
func (o ops) CompleteStreams(ctx context.Context, claims []db.StreamSerial, purge bool) ([]int64, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	query := completeStreamSQL
	if purge {
		query = purgeClaimedSQL
	}
	var lost []int64
	err := o.atomic(ctx, func(o ops) error {
		lost = nil
		for _, c := range claims {
			res, err := o.exec(ctx, query, c.ID, c.SerialNo)
			if err != nil {
				return fmt.Errorf("sqlite: complete stream %d: %w", c.ID, o.s.translate(err))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlite: complete stream %d: %w", c.ID, o.s.translate(err))
			}
			if n != 1 && !slices.Contains(lost, c.ID) {
				lost = append(lost, c.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// StreamsEvents returns the events of several streams (see db.Ops).
func (o ops) StreamsEvents(ctx context.Context, streamIDs []int64) (map[int64][]stream.Event, error) {
	return o.eventsOf(ctx, streamIDs)
}
