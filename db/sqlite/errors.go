package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/winchester-go/winchester/db"
)

// translate maps every error of database/sql and modernc.org/sqlite to the
// db sentinels; it is the only place that looks at library errors. The
// result wraps the sentinel and keeps the library's message as text.
func (s *Store) translate(err error) error {
	if err == nil {
		return nil
	}
	if s != nil && s.closed.Load() {
		return fmt.Errorf("store is closed: %w", db.ErrUnavailable)
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return db.ErrNotFound
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn):
		return fmt.Errorf("%v: %w", err, db.ErrUnavailable)
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	code := se.Code()
	switch code {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%s: %w", se.Error(), db.ErrDuplicate)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%s (a referenced event or stream does not exist): %w", se.Error(), db.ErrNotFound)
	}
	switch code & 0xff { // primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		// Another process held the write lock for longer than
		// busy_timeout: nothing was written, run it again.
		return fmt.Errorf("%s: %w", se.Error(), db.ErrAborted)
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB,
		sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS, sqlite3.SQLITE_PERM:
		return fmt.Errorf("%s: %w", se.Error(), db.ErrUnavailable)
	}
	return fmt.Errorf("%s", se.Error())
}

// cantOpen reports whether err is SQLite's "unable to open database
// file".
func cantOpen(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CANTOPEN
}
