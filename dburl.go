package winchester

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// ErrMySQL is returned for mysql:// database URLs.
var ErrMySQL = errors.New("MySQL is not supported; use PostgreSQL or SQLite")

// SQLiteMemoryURL is the normalised URL of an in-memory SQLite database.
const SQLiteMemoryURL = "sqlite://:memory:"

// NormalizeDatabaseURL turns a database URL in the original's SQLAlchemy
// forms into the form the store opens:
//
//   - sqlite:///relative.db → sqlite:///<baseDir>/relative.db
//   - sqlite:////abs/path.db → sqlite:///abs/path.db
//   - sqlite:// and sqlite:///:memory: → sqlite://:memory:
//   - postgresql://…, postgres://…, postgresql+psycopg2://… → postgres://…
//   - mysql://…, mysql+pymysql://… → ErrMySQL
//
// A query string is kept. Relative SQLite paths are resolved in baseDir
// (itself made absolute against the current directory when relative).
func NormalizeDatabaseURL(raw, baseDir string) (string, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(raw), "://")
	if !ok || scheme == "" {
		return "", fmt.Errorf("database URL %q: want scheme://…, e.g. sqlite:///winchester.db or postgresql://user@host/db", MaskURL(raw))
	}
	scheme = strings.ToLower(scheme)
	base, _, _ := strings.Cut(scheme, "+") // driver suffix: postgresql+psycopg2
	switch base {
	case "sqlite", "sqlite3":
		return normalizeSQLite(rest, baseDir)
	case "postgres", "postgresql":
		if _, err := url.Parse("postgres://" + rest); err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error repeats the URL, password included
			}
			return "", fmt.Errorf("database URL %q: %v", MaskURL(raw), err)
		}
		return "postgres://" + rest, nil
	case "mysql", "mariadb":
		return "", fmt.Errorf("database URL %q: %w", MaskURL(raw), ErrMySQL)
	}
	return "", fmt.Errorf("database URL %q: unsupported scheme %q (use postgresql:// or sqlite://)", MaskURL(raw), scheme)
}

func normalizeSQLite(rest, baseDir string) (string, error) {
	path, query, _ := strings.Cut(rest, "?")
	if query != "" {
		query = "?" + query
	}
	if path == "" || path == ":memory:" || path == "/:memory:" {
		return SQLiteMemoryURL + query, nil
	}
	if !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("database URL %q: a SQLite URL has no host; write sqlite:///relative.db or sqlite:////absolute/path.db", "sqlite://"+rest)
	}
	path = path[1:] // SQLAlchemy: the third slash ends the (empty) host
	if !filepath.IsAbs(path) {
		base, err := filepath.Abs(baseDir)
		if err != nil {
			return "", fmt.Errorf("database URL %q: %w", "sqlite://"+rest, err)
		}
		path = filepath.Join(base, path)
	}
	return "sqlite://" + filepath.Clean(path) + query, nil
}

// MaskURL returns the URL with its password (in the user info or a
// password= parameter) replaced by xxxxx, for logs and summaries.
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		// Not parseable: hide everything between "://" and "@".
		if scheme, rest, ok := strings.Cut(raw, "://"); ok {
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				return scheme + "://xxxxx@" + rest[at+1:]
			}
		}
		return raw
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// IsSQLite reports whether a normalised database URL is a SQLite one.
func IsSQLite(normalized string) bool { return strings.HasPrefix(normalized, "sqlite://") }
