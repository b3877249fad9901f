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
//
// The lock file is removed before the lock is released, so nothing is left
// beside the database. A process that opened the file before it was
// removed finds, once it holds the lock, that the path no longer names the
// file it locked, and starts again with a new one.
func withMigrateLock(ctx context.Context, loc location, fn func() error) error {
	if loc.memory() {
		return fn()
	}
	path := loc.path + ".migrate.lock"
	for {
		f, err := lockFile(ctx, path)
		if err != nil {
			return err
		}
		if f == nil {
			continue // locked a file that was removed meanwhile
		}
		err = fn()
		// Remove while still holding the lock: waiters notice and retry.
		if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("remove migration lock: %w", rmErr))
		}
		f.Close() // releases the lock
		return err
	}
}

// lockFile opens path and takes an exclusive flock on it. It returns nil
// and no error when the file it locked is no longer the one at path.
func lockFile(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open migration lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for migration lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	held, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat migration lock: %w", err)
	}
	now, err := os.Stat(path)
	if err != nil || !os.SameFile(held, now) {
		f.Close()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("stat migration lock: %w", err)
		}
		return nil, nil
	}
	return f, nil
}
