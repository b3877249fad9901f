package sqlite

import (
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// The stream states the queries of this driver name, as SQL text.
var (
	stActive    = db.StateSQL(stream.StateActive)
	stFiring    = db.StateSQL(stream.StateFiring)
	stExpiring  = db.StateSQL(stream.StateExpiring)
	stCompleted = db.StateSQL(stream.StateCompleted)
)
