package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresURLEnv names the environment variable with the URL of a
// PostgreSQL database tests may use (tests/pg.sh start prints one).
const PostgresURLEnv = "TEST_DATABASE_URL"

// PostgresURL returns the URL of a fresh, empty schema of the test
// database for t: it creates a uniquely named schema, points the URL's
// search_path at it and drops it (with everything in it) in t.Cleanup.
// Unless the URL says otherwise, its sessions run with synchronous_commit
// off.
//
// Without TEST_DATABASE_URL the test is skipped, or fails when the CI
// environment variable is set (CI must not skip the PostgreSQL tests).
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := baseURL(t)
	schema := schemaName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := execAdmin(ctx, base, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create test schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execAdmin(ctx, base, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	u, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("%s: %v", PostgresURLEnv, err)
	}
	return u
}

// baseURL returns TEST_DATABASE_URL; without it the test is skipped, or
// fails when the CI environment variable is set.
func baseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresURLEnv)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is empty but CI is set: the PostgreSQL tests must run in CI", PostgresURLEnv)
		}
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable, or run tests/pg.sh start)", PostgresURLEnv)
	}
	return base
}

// withSearchPath returns rawURL with its search_path parameter set to
// schema (pgx passes it to the server as a runtime parameter).
func withSearchPath(rawURL, schema string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("want a postgres:// URL, got %q", redact(rawURL))
	}
	q := u.Query()
	q.Set("search_path", schema)
	// Test data need no durability: commits need not wait for the disk
	// (the server still never corrupts anything; a crash may lose the
	// last commits). It keeps tests fast on servers with fsync on.
	if !q.Has("synchronous_commit") {
		q.Set("synchronous_commit", "off")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// schemaName is a valid, unique schema name that tells which test made it.
func schemaName(testName string) string {
	name := unsafeChars.ReplaceAllString(strings.ToLower(testName), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t_" + strings.Trim(name, "_") + "_" + hex.EncodeToString(b[:])
}

// execAdmin runs one statement on its own connection to the base URL.
func execAdmin(ctx context.Context, rawURL, sql string) error {
	conn, err := connect(ctx, rawURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// connect opens one connection to rawURL.
func connect(ctx context.Context, rawURL string) (*pgx.Conn, error) {
	cfg, err := pgxpool.ParseConfig(rawURL) // accepts and drops pool_* settings
	if err != nil {
		return nil, fmt.Errorf("parse %s: invalid URL", redact(rawURL))
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redact(rawURL), err)
	}
	return conn, nil
}

func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
