package db

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Driver opens stores for one URL scheme.
type Driver interface {
	// Open connects to the database at rawURL and returns a store. It checks
	// the schema version and fails with ErrSchemaOutOfDate when it does not
	// match, unless opts.Migrate is set (then it migrates first).
	Open(ctx context.Context, rawURL string, opts Options) (Store, error)
}

// Options tune Open.
type Options struct {
	// Migrate brings the schema up to date before use (the embedded SQLite
	// default does this on first start).
	Migrate bool
	// StatementFunc, when set, is called with the text of every SQL
	// statement the store sends, before it runs (tests count the
	// statements of a path; diagnostics). It may be called from several
	// goroutines at once and must be quick.
	StatementFunc func(sql string)
	// ReadOnly opens a store that only reads (a read replica's,
	// database.read_url): every session runs with
	// default_transaction_read_only on, so the server refuses a write
	// through it even if a caller attempts one. It excludes Migrate.
	// Only PostgreSQL supports it.
	ReadOnly bool
}

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// Register makes a driver available for a URL scheme. It is called from a
// driver package's init, like database/sql drivers; it panics on a nil
// driver, an empty scheme or a scheme registered twice.
func Register(scheme string, d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if d == nil || scheme == "" {
		panic("db: Register with nil driver or empty scheme")
	}
	if _, dup := drivers[scheme]; dup {
		panic("db: Register called twice for scheme " + scheme)
	}
	drivers[scheme] = d
}

// Drivers returns the registered schemes, sorted.
func Drivers() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	var out []string
	for k := range drivers {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Open opens a store with the driver registered for rawURL's scheme.
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	d, err := DriverFor(rawURL)
	if err != nil {
		return nil, err
	}
	return d.Open(ctx, rawURL, opts)
}

// DriverFor returns the driver registered for rawURL's scheme, for callers
// that use its optional capabilities (MigrationDriver) without opening a
// store.
func DriverFor(rawURL string) (Driver, error) {
	scheme, _, ok := strings.Cut(rawURL, ":")
	if !ok {
		return nil, fmt.Errorf("db: database URL %q has no scheme", Redact(rawURL))
	}
	driversMu.RLock()
	d := drivers[scheme]
	driversMu.RUnlock()
	if d == nil {
		return nil, fmt.Errorf("%w %q (forgotten import?)", ErrUnknownDriver, scheme)
	}
	return d, nil
}

// Redact returns rawURL with any password replaced by "xxxxx", for logs
// and messages.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
