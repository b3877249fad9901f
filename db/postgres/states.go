package postgres

import (
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// The stream states the queries of this driver name, as SQL text.
var (
	stActive      = db.StateSQL(stream.StateActive)
	stFiring      = db.StateSQL(stream.StateFiring)
	stExpiring    = db.StateSQL(stream.StateExpiring)
	stError       = db.StateSQL(stream.StateError)
	stExpireError = db.StateSQL(stream.StateExpireError)
	stCompleted   = db.StateSQL(stream.StateCompleted)
	stRetryFire   = db.StateSQL(stream.StateRetryFire)
	stRetryExpire = db.StateSQL(stream.StateRetryExpire)
)
