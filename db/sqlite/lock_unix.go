//go:build unix

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// withMigrateLock runs fn while holding an exclusive flock on
// "<database>.migrate.lock", so migrations of one database file by
// several processes (or several stores in one process) run one after the
// other. golang-migrate's own SQLite lock is in-process only. An in-memory
// database is private to its store and needs no lock.
func withMigrateLock(ctx context.Context, loc location, fn func() error) error {
	if loc.memory() {
		return fn()
	}
	path := loc.path + ".migrate.lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open migration lock: %w", err)
	}
	defer f.Close()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for migration lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file releases it anyway
	return fn()
}
