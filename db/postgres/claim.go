package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// claimSQL selects the first ready streams in deadline order, locking them
// and skipping those another transaction holds, and claims them in the
// same statement. The row lock re-checks the ready condition on the
// newest version of a row changed since the statement began (READ
// COMMITTED), so a stream that stopped being ready is not claimed.
func claimSQL(a stream.Action) string {
	order := "fire_timestamp"
	if a == stream.Expire {
		order = "expire_timestamp"
	}
	return `
WITH c AS (
  SELECT id FROM stream
   WHERE ` + db.ReadySQL(a, "$1") + `
   ORDER BY ` + order + `, id
   LIMIT $2
   FOR UPDATE SKIP LOCKED
)
UPDATE stream s SET state = $3, state_serial_no = s.state_serial_no + 1, open = FALSE,
       claimed_by = $4, lease_until = $5
  FROM c WHERE s.id = c.id
RETURNING ` + streamColumns
}

var (
	claimFireSQL   = claimSQL(stream.Fire)
	claimExpireSQL = claimSQL(stream.Expire)
)

// ClaimStreams claims up to p.Limit streams ready for p.Action in one
// statement (see db.Ops).
func (o *ops) ClaimStreams(ctx context.Context, p db.ClaimParams) ([]stream.Stream, error) {
	query := claimFireSQL
	switch p.Action {
	case db.Fire:
	case db.Expire:
		query = claimExpireSQL
	default:
		return nil, fmt.Errorf("postgres: claim streams: unknown action %d", int(p.Action))
	}
	if p.Limit < 1 {
		return nil, fmt.Errorf("postgres: claim streams: limit %d, want at least 1", p.Limit)
	}
	out, err := collectStreams(o.q.Query(ctx, query, db.Micros(p.Now), p.Limit, int(p.Action.ClaimState()),
		optString(p.Owner), optMicros(p.LeaseUntil)))
	if err != nil {
		return nil, fmt.Errorf("postgres: claim streams ready to %s: %w", p.Action, err)
	}
	slices.SortFunc(out, p.Action.ReadyOrder) // RETURNING has no order
	return out, nil
}

// serialArrays splits claims into the id and serial arrays of an unnest.
func serialArrays(claims []db.StreamSerial) (ids, serials []int64) {
	ids = make([]int64, len(claims))
	serials = make([]int64, len(claims))
	for i, c := range claims {
		ids[i], serials[i] = c.ID, c.SerialNo
	}
	return ids, serials
}

const renewLeasesSQL = `
UPDATE stream s SET lease_until = $3, state_serial_no = s.state_serial_no + 1
  FROM unnest($1::bigint[], $2::bigint[]) AS c(id, serial)
 WHERE s.id = c.id AND s.state_serial_no = c.serial
RETURNING s.id, s.state_serial_no`

// RenewLeases extends the leases of the claims still held, in one
// statement (see db.Ops).
func (o *ops) RenewLeases(ctx context.Context, claims []db.StreamSerial, leaseUntil time.Time) (map[int64]int64, error) {
	renewed := make(map[int64]int64, len(claims))
	if len(claims) == 0 {
		return renewed, nil
	}
	ids, serials := serialArrays(claims)
	rows, err := o.q.Query(ctx, renewLeasesSQL, ids, serials, optMicros(leaseUntil))
	if err != nil {
		return nil, fmt.Errorf("postgres: renew %d leases: %w", len(claims), interpretError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id, serial int64
		if err := rows.Scan(&id, &serial); err != nil {
			return nil, fmt.Errorf("postgres: renew %d leases: %w", len(claims), interpretError(err))
		}
		renewed[id] = serial
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: renew %d leases: %w", len(claims), interpretError(err))
	}
	return renewed, nil
}

var (
	completeStreamsSQL = `
UPDATE stream s SET state = ` + db.StateSQL(stream.StateCompleted) + `, state_serial_no = s.state_serial_no + 1, open = FALSE,
       claimed_by = NULL, lease_until = NULL
  FROM unnest($1::bigint[], $2::bigint[]) AS c(id, serial)
 WHERE s.id = c.id AND s.state_serial_no = c.serial
RETURNING s.id`
	purgeStreamsSQL = `
DELETE FROM stream s
 USING unnest($1::bigint[], $2::bigint[]) AS c(id, serial)
 WHERE s.id = c.id AND s.state_serial_no = c.serial
RETURNING s.id`
)

// CompleteStreams completes or purges the claimed streams still at their
// serial, in one statement (see db.Ops).
func (o *ops) CompleteStreams(ctx context.Context, claims []db.StreamSerial, purge bool) ([]int64, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	query := completeStreamsSQL
	if purge {
		query = purgeStreamsSQL
	}
	ids, serials := serialArrays(claims)
	rows, err := o.q.Query(ctx, query, ids, serials)
	if err != nil {
		return nil, fmt.Errorf("postgres: complete %d streams: %w", len(claims), interpretError(err))
	}
	defer rows.Close()
	done := make(map[int64]bool, len(claims))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("postgres: complete %d streams: %w", len(claims), interpretError(err))
		}
		done[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: complete %d streams: %w", len(claims), interpretError(err))
	}
	return lostClaims(claims, done), nil
}

// lostClaims lists, in input order and once each, the ids of claims not
// in done.
func lostClaims(claims []db.StreamSerial, done map[int64]bool) []int64 {
	var lost []int64
	for _, c := range claims {
		if !done[c.ID] && !slices.Contains(lost, c.ID) {
			lost = append(lost, c.ID)
		}
	}
	return lost
}

// StreamsEvents returns the events of several streams in one query.
func (o *ops) StreamsEvents(ctx context.Context, streamIDs []int64) (map[int64][]stream.Event, error) {
	if len(streamIDs) == 0 {
		return map[int64][]stream.Event{}, nil
	}
	evs, err := o.streamEvents(ctx, streamIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: events of %d streams: %w", len(streamIDs), err)
	}
	return evs, nil
}
