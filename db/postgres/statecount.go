package postgres

import (
	"context"
	"fmt"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// stateEstimates reads the planner's statistics of stream.state: the
// table's estimated row count times the frequency of each common value
// (pg_stats, kept by ANALYZE and autovacuum). No row is read. A state
// rare enough to be missing from the sample is missing here. The view
// pg_stats is filtered by constants (schema, table, column) so that only
// one row of pg_statistic is read.
const stateEstimates = `WITH t AS (
  SELECT c.reltuples, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = to_regclass('stream'))
SELECT u.v::int, (u.f * greatest(t.reltuples, 0))::bigint
  FROM t, pg_stats s
 CROSS JOIN LATERAL unnest(s.most_common_vals::text::int[], s.most_common_freqs) AS u(v, f)
 WHERE s.schemaname = (SELECT nspname FROM t) AND s.tablename = 'stream' AND s.attname = 'state'`

// stateCounts counts the streams of the given states exactly, through the
// stream_state_id index (an index-only scan of just those states'
// entries).
const stateCounts = `SELECT state, count(*) FROM stream WHERE state = ANY($1) GROUP BY state`

// CountStreamsByState counts streams by state: a state the statistics
// estimate at exactBelow streams or more keeps the estimate (counting it
// would read that many index entries on every call); every other state,
// including those too rare to be in the statistics, is counted exactly,
// which costs in proportion to its count. Without statistics (a table
// never analysed) every state is counted exactly.
func (o *ops) CountStreamsByState(ctx context.Context, exactBelow int64) (map[stream.State]int64, []stream.State, error) {
	counts := map[stream.State]int64{}
	var estimated []stream.State
	rows, err := o.q.Query(ctx, stateEstimates)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: estimate streams by state: %w", interpretError(err))
	}
	for rows.Next() {
		var st int
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("postgres: estimate streams by state: %w", interpretError(err))
		}
		if n >= exactBelow {
			counts[stream.State(st)] = n
			estimated = append(estimated, stream.State(st))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("postgres: estimate streams by state: %w", interpretError(err))
	}
	var exact []int
	for _, st := range stream.States() {
		if _, ok := counts[st]; !ok {
			exact = append(exact, int(st))
		}
	}
	if len(exact) == 0 {
		return counts, estimated, nil
	}
	rows, err = o.q.Query(ctx, stateCounts, exact)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: count streams by state: %w", interpretError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var st int
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, nil, fmt.Errorf("postgres: count streams by state: %w", interpretError(err))
		}
		counts[stream.State(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("postgres: count streams by state: %w", interpretError(err))
	}
	return counts, estimated, nil
}

var _ db.StateCounter = (*ops)(nil)
