package winchester

// The storage drivers Open picks from by database URL scheme (sqlite://,
// postgres://, postgresql://).
import (
	_ "github.com/winchester-go/winchester/db/postgres"
	_ "github.com/winchester-go/winchester/db/sqlite"
)
