package dbtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"
)

// ReplicaURLEnv names the environment variable with the URL of a
// streaming replica of the TEST_DATABASE_URL server (tests/replica.sh
// start prints one; .ci/run starts it).
const ReplicaURLEnv = "TEST_REPLICA_URL"

// ReplicaURL returns the URL of primaryURL's schema (a URL from
// PostgresURL) on the test replica, once the replica has replayed
// everything the primary had written when called: the schema, its tables
// and rows made before the call are there.
//
// Without TEST_REPLICA_URL the test is skipped, or fails when the CI
// environment variable is set. Tests that pause the replica's replay
// (PauseReplay) must not run in parallel with other replica tests.
func ReplicaURL(t testing.TB, primaryURL string) string {
	t.Helper()
	base := os.Getenv(ReplicaURLEnv)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is empty but CI is set: the read replica tests must run in CI (.ci/run starts tests/replica.sh)", ReplicaURLEnv)
		}
		t.Skipf("read replica tests skipped: set %s (eval \"$(tests/replica.sh start)\" makes a replica of the TEST_DATABASE_URL server)", ReplicaURLEnv)
	}
	p, err := url.Parse(primaryURL)
	if err != nil {
		t.Fatalf("primary URL: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s: want a postgres:// URL, got %q", ReplicaURLEnv, redact(base))
	}
	q := u.Query()
	if sp := p.Query().Get("search_path"); sp != "" {
		q.Set("search_path", sp)
	}
	u.RawQuery = q.Encode()
	WaitReplayed(t, primaryURL, u.String())
	return u.String()
}

// WaitReplayed waits until the replica at replicaURL has replayed the WAL
// the primary at primaryURL had written when called (within two minutes:
// a paused replay fails the test).
func WaitReplayed(t testing.TB, primaryURL, replicaURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lsn, err := queryString(ctx, primaryURL, `SELECT pg_current_wal_insert_lsn()::text`)
	if err != nil {
		t.Fatalf("primary's WAL position: %v", err)
	}
	for {
		done, err := queryString(ctx, replicaURL, `SELECT (pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= '`+lsn+`'::pg_lsn)::text`)
		if err == nil && done == "true" {
			return
		}
		if err == nil && done != "false" {
			err = fmt.Errorf("unexpected answer %q", done)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the replica %s did not replay the primary's WAL up to %s within two minutes (%v): is it a replica of %s, and is its replay paused?",
				redact(replicaURL), lsn, err, redact(primaryURL))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PauseReplay pauses the replay of WAL on the replica at replicaURL until
// the returned function (or, at the latest, t.Cleanup) resumes it. While
// paused the replica keeps receiving WAL but shows none of it: what the
// primary commits meanwhile is only on the primary.
func PauseReplay(t testing.TB, replicaURL string) (resume func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := execAdmin(ctx, replicaURL, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatalf("pause the replica's replay: %v", err)
	}
	resumed := false
	resume = func() {
		if resumed {
			return
		}
		resumed = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := execAdmin(ctx, replicaURL, `SELECT pg_wal_replay_resume()`); err != nil {
			t.Errorf("resume the replica's replay: %v", err)
		}
	}
	t.Cleanup(resume)
	for {
		state, err := queryString(ctx, replicaURL, `SELECT pg_get_wal_replay_pause_state()`)
		if err != nil {
			t.Fatalf("the replica's replay state: %v", err)
		}
		if state == "paused" {
			return resume
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the replica's replay is still %q after a minute", state)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// queryString runs a query of one text value on its own connection.
func queryString(ctx context.Context, rawURL, sql string) (string, error) {
	conn, err := connect(ctx, rawURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var s string
	err = conn.QueryRow(ctx, sql).Scan(&s)
	return s, err
}
