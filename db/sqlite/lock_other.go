//go:build !unix

package sqlite

import "context"

// withMigrateLock runs fn. Without flock, concurrent migrations from
// several processes rely on SQLite's own write lock only.
func withMigrateLock(_ context.Context, _ location, fn func() error) error {
	return fn()
}
