package sqlite

import (
	"context"
	"fmt"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

const stateCountsSQL = `SELECT state, count(*) FROM stream GROUP BY state`

// CountStreamsByState implements db.StateCounter. SQLite keeps no row
// estimates worth the name: every count is exact (one pass over the
// stream_state index).
func (o ops) CountStreamsByState(ctx context.Context, _ int64) (map[stream.State]int64, []stream.State, error) {
	rows, err := o.query(ctx, stateCountsSQL)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: count streams by state: %w", o.s.translate(err))
	}
	defer rows.Close()
	counts := map[stream.State]int64{}
	for rows.Next() {
		var st int
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, nil, fmt.Errorf("sqlite: count streams by state: %w", o.s.translate(err))
		}
		counts[stream.State(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlite: count streams by state: %w", o.s.translate(err))
	}
	return counts, nil, nil
}

var _ db.StateCounter = ops{}
