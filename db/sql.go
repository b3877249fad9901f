package db

import (
	"strconv"

	"github.com/winchester-go/winchester/stream"
)

// StateSQL returns the stored number of state s as SQL text, for the
// drivers' queries: SQL names states through it, never by literal numbers
// (package stream owns the numbers).
func StateSQL(s stream.State) string { return strconv.Itoa(int(s)) }

// ReadySQL returns the ready condition of action a
// (stream.Stream.ReadyTo) as SQL over the columns of the stream table,
// written once for every driver: ReadyStreams selects with it and the
// ReadyFor re-check of SetStreamState applies it. now is the SQL text of
// the time parameter ("$1", "?"). The state IN (…) term comes first, as
// the drivers' partial indexes for the ready queries have it.
func ReadySQL(a stream.Action, now string) string {
	active, retryFire, retryExpire := StateSQL(stream.StateActive), StateSQL(stream.StateRetryFire), StateSQL(stream.StateRetryExpire)
	if a == stream.Expire {
		// An active stream with a fire time waits to fire; it is never
		// expired instead.
		return `state IN (` + active + `, ` + retryExpire + `) AND expire_timestamp < ` + now +
			` AND (state = ` + retryExpire + ` OR fire_timestamp IS NULL)`
	}
	return `state IN (` + active + `, ` + retryFire + `) AND fire_timestamp < ` + now
}
