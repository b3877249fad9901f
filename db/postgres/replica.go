package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
)

// replicaStatusSQL reads the replication state. The lag is measured on
// the server's clock against the commit time of the newest replayed
// transaction (the one place SQL reads the clock: it is a measurement, not
// data); a replica that has replayed everything it received lags 0
// however old that transaction is, so an idle primary does not look like
// a late replica.
const replicaStatusSQL = `
SELECT pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery()
                 OR pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
            THEN 0
            ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)::float8
       END`

// ReplicaStatus reports whether the database is a standby in recovery and
// its replay lag (db.ReplicaReporter).
func (s *Store) ReplicaStatus(ctx context.Context) (db.ReplicaStatus, error) {
	var st db.ReplicaStatus
	var lag float64
	if err := s.pool.QueryRow(ctx, replicaStatusSQL).Scan(&st.InRecovery, &lag); err != nil {
		return db.ReplicaStatus{}, fmt.Errorf("replica status: %w", interpretError(err))
	}
	if lag > 0 {
		st.Lag = time.Duration(lag * float64(time.Second))
	}
	return st, nil
}
