package sqlite

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    location
		wantErr string
	}{
		{name: "file", raw: "sqlite:///var/lib/winchester/w.db", want: location{path: "/var/lib/winchester/w.db", query: url.Values{}}},
		{name: "file_query", raw: "sqlite:///tmp/w.db?_pragma=synchronous(NORMAL)", want: location{path: "/tmp/w.db", query: url.Values{"_pragma": {"synchronous(NORMAL)"}}}},
		{name: "memory", raw: "sqlite://:memory:", want: location{path: ":memory:", query: url.Values{}}},
		{name: "memory_slash", raw: "sqlite:///:memory:", want: location{path: ":memory:", query: url.Values{}}},
		{name: "empty", raw: "sqlite://", want: location{path: ":memory:", query: url.Values{}}},
		{name: "relative", raw: "sqlite://w.db", wantErr: "must be absolute"},
		{name: "other_scheme", raw: "postgres://localhost/db", wantErr: "want sqlite:///abs/path.db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseURL(tc.raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseURL(%q) error = %v, want one containing %q", tc.raw, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseURL(%q): %v", tc.raw, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(location{})); diff != "" {
				t.Errorf("parseURL(%q) (-want +got):\n%s", tc.raw, diff)
			}
		})
	}
}

func TestMemoryStore(t *testing.T) {
	ctx := t.Context()
	s, err := db.Open(ctx, "sqlite://:memory:", db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("db.Open: %v", err)
	}
	defer s.Close()
	ev := stream.Event{MessageID: "m-1", Type: "test.mem", Timestamp: stream.SystemClock{}.Now(), Traits: map[string]stream.Value{}}
	if _, err := s.SaveEvents(ctx, []stream.Event{ev}); err != nil {
		t.Fatalf("SaveEvents: %v", err)
	}
	// The data lives as long as the store: every operation sees it.
	for range 3 {
		if _, err := s.EventByMessageID(ctx, "m-1"); err != nil {
			t.Fatalf("EventByMessageID: %v", err)
		}
	}
	// A second memory store is private.
	s2, err := Open(ctx, "sqlite://:memory:", db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s2.Close()
	if _, err := s2.EventByMessageID(ctx, "m-1"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("second memory store sees the first's event: %v", err)
	}
}

func TestMemoryWithoutMigrateIsOutOfDate(t *testing.T) {
	_, err := Open(t.Context(), "sqlite://:memory:", db.Options{})
	if !errors.Is(err, db.ErrSchemaOutOfDate) || !strings.Contains(err.Error(), "winchester_db -c <config> upgrade head") {
		t.Errorf("Open without schema = %v, want db.ErrSchemaOutOfDate naming the fix", err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.EventTypes(t.Context()); !errors.Is(err, db.ErrUnavailable) {
		t.Errorf("EventTypes after Close = %v, want db.ErrUnavailable", err)
	}
	err = s.InTx(t.Context(), func(context.Context, db.Ops) error { return nil })
	if !errors.Is(err, db.ErrUnavailable) {
		t.Errorf("InTx after Close = %v, want db.ErrUnavailable", err)
	}
}

// A missing directory is a configuration mistake, not an outage: waiting
// for it ("database unavailable, retry later") never helps.
func TestMissingDirectoryIsNotUnavailable(t *testing.T) {
	_, err := Open(t.Context(), "sqlite:///nonexistent-dir-for-test/sub/w.db", db.Options{Migrate: true})
	if err == nil || errors.Is(err, db.ErrUnavailable) || !strings.Contains(err.Error(), "/nonexistent-dir-for-test/sub/w.db") {
		t.Errorf("Open in a missing directory = %v, want a permanent error naming the path", err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := t.Context()
	raw := "sqlite://" + filepath.Join(t.TempDir(), "w.db")
	s, err := Open(ctx, raw, db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
	if err := (Driver{}).ForceVersion(ctx, raw, 99); err != nil {
		t.Fatalf("ForceVersion: %v", err)
	}
	_, err = Open(ctx, raw, db.Options{})
	if !errors.Is(err, db.ErrSchemaOutOfDate) || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema = %v, want db.ErrSchemaOutOfDate saying it is newer", err)
	}
}

func TestDrivers(t *testing.T) {
	found := false
	for _, d := range db.Drivers() {
		found = found || d == "sqlite"
	}
	if !found {
		t.Errorf("db.Drivers() = %v, want sqlite among them", db.Drivers())
	}
}

// helperMigrateEnv names the database URL a helper process upgrades.
const helperMigrateEnv = "WINCHESTER_SQLITE_TEST_MIGRATE_URL"

// TestMigrateConcurrentProcesses starts several processes (this test
// binary) that upgrade one new database file at the same moment: the file
// lock makes them take turns, so none fails and none applies a migration
// twice.
func TestMigrateConcurrentProcesses(t *testing.T) {
	raw := "sqlite://" + filepath.Join(t.TempDir(), "w.db")
	const n = 4
	cmds := make([]*exec.Cmd, n)
	outs := make([]strings.Builder, n)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperMigrateProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), helperMigrateEnv+"="+raw)
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatalf("start process %d: %v", i, err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i].String())
		}
		if !strings.Contains(outs[i].String(), "helper migrated") {
			t.Errorf("process %d did not run the migration helper:\n%s", i, outs[i].String())
		}
	}
	v, dirty, err := Driver{}.SchemaVersion(t.Context(), raw)
	head, _ := headVersion()
	if err != nil || v != head || dirty {
		t.Fatalf("SchemaVersion = %d, %v, %v; want %d, false, nil", v, dirty, err, head)
	}
	s, err := Open(t.Context(), raw, db.Options{})
	if err != nil {
		t.Fatalf("Open after concurrent upgrades: %v", err)
	}
	defer s.Close()
	if _, err := s.EventTypes(t.Context()); err != nil {
		t.Errorf("EventTypes: %v", err)
	}
}

// TestHelperMigrateProcess is the body of the child processes of
// TestMigrateConcurrentProcesses; it does nothing in a normal run.
func TestHelperMigrateProcess(t *testing.T) {
	raw := os.Getenv(helperMigrateEnv)
	if raw == "" {
		t.Skip("helper process of TestMigrateConcurrentProcesses")
	}
	for range 3 {
		if err := (Driver{}).Migrate(t.Context(), raw, db.Head); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		s, err := Open(t.Context(), raw, db.Options{Migrate: true})
		if err != nil {
			t.Fatalf("Open with Migrate: %v", err)
		}
		s.Close()
	}
	t.Log("helper migrated")
}

// TestTwoStoresOneFile writes through two stores on one file at once, as
// two processes would: BEGIN IMMEDIATE and the busy timeout make the
// writers take turns, so no write fails.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := t.Context()
	raw := "sqlite://" + filepath.Join(t.TempDir(), "w.db")
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, raw, db.Options{Migrate: true})
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	const writers, batches = 8, 10
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			s := stores[w%2]
			for b := range batches {
				evs := make([]stream.Event, 10)
				for i := range evs {
					evs[i] = stream.Event{MessageID: fmt.Sprintf("w%d-b%d-%d", w, b, i), Type: "test.two", Timestamp: time.Unix(int64(b), 0).UTC(), Traits: map[string]stream.Value{}}
				}
				if _, err := s.SaveEvents(ctx, evs); err != nil {
					errs <- fmt.Errorf("writer %d batch %d: %w", w, b, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	n, err := stores[0].CountEvents(ctx, db.FindEventsParams{})
	if err != nil || n != writers*batches*10 {
		t.Errorf("CountEvents = %d, %v; want %d", n, err, writers*batches*10)
	}
}

func TestCancelledContext(t *testing.T) {
	s, err := Open(t.Context(), "sqlite://:memory:", db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = s.InTx(ctx, func(context.Context, db.Ops) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("InTx with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.EventTypes(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("EventTypes with a cancelled context = %v, want context.Canceled", err)
	}
	// The store still works afterwards.
	if _, err := s.EventTypes(t.Context()); err != nil {
		t.Errorf("EventTypes after a cancelled call: %v", err)
	}
}

// TestStoreInsideItsOwnTx: using the Store instead of the given Ops inside
// InTx fails at once (it would wait forever for the one connection), and
// the function's context works with the Store again once the transaction
// has ended.
func TestStoreInsideItsOwnTx(t *testing.T) {
	s, err := Open(t.Context(), "sqlite://:memory:", db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ev := stream.Event{MessageID: "m", Type: "t", Timestamp: time.Unix(1, 0).UTC(), Traits: map[string]stream.Value{}}
	var kept context.Context
	err = s.InTx(t.Context(), func(ctx context.Context, tx db.Ops) error {
		kept = ctx
		if _, err := s.EventTypes(ctx); !errors.Is(err, errStoreInsideTx) {
			t.Errorf("Store.EventTypes inside InTx = %v, want errStoreInsideTx", err)
		}
		if _, err := s.StreamByID(ctx, 1); !errors.Is(err, errStoreInsideTx) {
			t.Errorf("Store.StreamByID inside InTx = %v, want errStoreInsideTx", err)
		}
		if _, err := s.SaveEvents(ctx, []stream.Event{ev}); !errors.Is(err, errStoreInsideTx) {
			t.Errorf("Store.SaveEvents inside InTx = %v, want errStoreInsideTx", err)
		}
		if err := s.InTx(ctx, func(context.Context, db.Ops) error { return nil }); !errors.Is(err, errStoreInsideTx) {
			t.Errorf("nested Store.InTx = %v, want errStoreInsideTx", err)
		}
		_, err := tx.SaveEvents(ctx, []stream.Event{ev})
		return err
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	if _, err := s.EventByMessageID(kept, "m"); err != nil {
		t.Errorf("Store with the function's context after the transaction: %v", err)
	}
}

// SQLite has no replicas: a read-only store (database.read_url) is
// refused, and nothing is created.
func TestOpenReadOnlyRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "w.db")
	_, err := Open(t.Context(), "sqlite://"+path, db.Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "need PostgreSQL") {
		t.Errorf("Open with ReadOnly: %v, want a refusal naming PostgreSQL", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused open created %s (%v)", path, err)
	}
}
