package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// selectStreamStats groups every stream by trigger and state; the ready
// counts and oldest deadlines use the condition of ReadyStreams.
var selectStreamStats = `SELECT name, state, count(*),
       count(*) FILTER (WHERE ` + db.ReadySQL(stream.Fire, "$1") + `),
       count(*) FILTER (WHERE ` + db.ReadySQL(stream.Expire, "$1") + `),
       min(fire_timestamp) FILTER (WHERE ` + db.ReadySQL(stream.Fire, "$1") + `),
       min(expire_timestamp) FILTER (WHERE ` + db.ReadySQL(stream.Expire, "$1") + `)
  FROM stream
 GROUP BY name, state
 ORDER BY name, state`

// StreamStats implements db.Ops.
func (o *ops) StreamStats(ctx context.Context, now time.Time) ([]db.StreamStat, error) {
	rows, err := o.q.Query(ctx, selectStreamStats, db.Micros(now))
	if err != nil {
		return nil, fmt.Errorf("postgres: stream stats: %w", interpretError(err))
	}
	defer rows.Close()
	var out []db.StreamStat
	for rows.Next() {
		var (
			st           db.StreamStat
			state        int
			fire, expire *int64
		)
		if err := rows.Scan(&st.Name, &state, &st.Count, &st.ReadyToFire, &st.ReadyToExpire, &fire, &expire); err != nil {
			return nil, fmt.Errorf("postgres: stream stats: %w", interpretError(err))
		}
		st.State = stream.State(state)
		st.OldestFire, st.OldestExpire = optTime(fire), optTime(expire)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: stream stats: %w", interpretError(err))
	}
	return out, nil
}
