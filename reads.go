package winchester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/winchester-go/winchester/db"
)

// OpenReadStore opens the read store of database.read_url: a PostgreSQL
// store whose sessions are read-only (db.Options.ReadOnly), for the
// queries of the HTTP API, the console and the operator's listings. It
// returns nil, nil when the configuration has no read_url (read from the
// primary).
//
// It fails when the replica cannot be reached or its schema is not the
// one this binary expects, so that a wrong read_url stops a process at
// start rather than at its first query. It logs whether the server is in
// recovery (a standby) and its lag; a read_url naming a primary is
// accepted with a warning (its sessions are read-only all the same).
func OpenReadStore(ctx context.Context, cfg *Config, log *slog.Logger) (db.Store, error) {
	if cfg.ReadURL == "" {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	masked := MaskURL(cfg.ReadURL)
	store, err := db.Open(ctx, cfg.ReadURL, db.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open read replica %s (database.read_url): %w", masked, err)
	}
	r, ok := store.(db.ReplicaReporter)
	if !ok {
		return store, nil
	}
	st, err := r.ReplicaStatus(ctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open read replica %s (database.read_url): %w", masked, err), store.Close())
	}
	if st.InRecovery {
		log.Info("reading from a replica", "read_url", masked, "in_recovery", true, "lag", st.Lag)
	} else {
		log.Warn("database.read_url is not a replica in recovery (pg_is_in_recovery() is false): reads go to another primary, read-only",
			"read_url", masked)
	}
	return store, nil
}
