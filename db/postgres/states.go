package postgres

import (
	"strconv"

	"github.com/winchester-go/winchester/stream"
)

// The stored numbers of the stream states as SQL text. SQL names states
// only through these (and the stream package owns the numbers), never by
// literal numbers.
var (
	stActive      = sqlState(stream.StateActive)
	stFiring      = sqlState(stream.StateFiring)
	stExpiring    = sqlState(stream.StateExpiring)
	stError       = sqlState(stream.StateError)
	stExpireError = sqlState(stream.StateExpireError)
	stCompleted   = sqlState(stream.StateCompleted)
	stRetryFire   = sqlState(stream.StateRetryFire)
	stRetryExpire = sqlState(stream.StateRetryExpire)
)

func sqlState(s stream.State) string { return strconv.Itoa(int(s)) }

// readyCond is the ready condition of action a (stream.Stream.ReadyTo)
// over the columns of stream, written once: the ready queries select with
// it and the claim's compare-and-set re-checks it. now is the SQL text of
// the time parameter. The state IN (…) term comes first and as the partial
// indexes stream_ready_fire and stream_ready_expire have it.
func readyCond(a stream.Action, now string) string {
	if a == stream.Expire {
		// An active stream with a fire time waits to fire; it is never
		// expired instead.
		return `state IN (` + stActive + `, ` + stRetryExpire + `) AND expire_timestamp < ` + now +
			` AND (state = ` + stRetryExpire + ` OR fire_timestamp IS NULL)`
	}
	return `state IN (` + stActive + `, ` + stRetryFire + `) AND fire_timestamp < ` + now
}
