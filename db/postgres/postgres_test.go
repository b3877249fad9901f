package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/stream"
)

func TestExerciseTwoStores(t *testing.T) {
	dbtest.ExerciseTwoStores(t, func(t *testing.T) (db.Store, db.Store) {
		url := databases.URL(t)
		return openURL(t, url), openURL(t, url)
	})
}

func TestExerciseMigrations(t *testing.T) {
	dbtest.ExerciseMigrations(t, postgres.Driver{}, func(t *testing.T) string { return dbtest.PostgresURL(t) })
}

func TestOpenChecksSchemaVersion(t *testing.T) {
	ctx := t.Context()
	url := dbtest.PostgresURL(t)
	d := postgres.Driver{}

	_, err := postgres.Open(ctx, url, db.Options{})
	if !errors.Is(err, db.ErrSchemaOutOfDate) || !strings.Contains(err.Error(), "winchester_db -c <config> upgrade head") {
		t.Fatalf("Open(empty schema) = %v, want ErrSchemaOutOfDate naming the upgrade command", err)
	}
	if v, dirty, err := d.SchemaVersion(ctx, url); err != nil || v != 0 || dirty {
		t.Fatalf("SchemaVersion(empty) = %d, %v, %v; want 0, false, nil", v, dirty, err)
	}

	s, err := postgres.Open(ctx, url, db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open(Migrate) = %v", err)
	}
	s.Close()
	head := headVersion(t)
	if v, dirty, err := d.SchemaVersion(ctx, url); err != nil || v != uint(head) || dirty {
		t.Fatalf("SchemaVersion(migrated) = %d, %v, %v; want %d, false, nil", v, dirty, err, head)
	}
	s, err = postgres.Open(ctx, url, db.Options{})
	if err != nil {
		t.Fatalf("Open(migrated) = %v", err)
	}
	s.Close()

	if err := d.ForceVersion(ctx, url, head+1); err != nil {
		t.Fatalf("ForceVersion(%d) = %v", head+1, err)
	}
	if _, err := postgres.Open(ctx, url, db.Options{}); !errors.Is(err, db.ErrSchemaOutOfDate) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open(schema newer than the binary) = %v, want ErrSchemaOutOfDate saying it is newer", err)
	}
	if err := d.ForceVersion(ctx, url, head); err != nil {
		t.Fatalf("ForceVersion(%d) = %v", head, err)
	}
	if err := d.Migrate(ctx, url, 0); err != nil {
		t.Fatalf("Migrate(base) = %v", err)
	}
	if _, err := postgres.Open(ctx, url, db.Options{}); !errors.Is(err, db.ErrSchemaOutOfDate) {
		t.Fatalf("Open(after downgrade) = %v, want ErrSchemaOutOfDate", err)
	}
}

func TestOpenDirtySchema(t *testing.T) {
	ctx := t.Context()
	url := dbtest.PostgresURL(t)
	if err := (postgres.Driver{}).Migrate(ctx, url, db.Head); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE schema_migrations SET dirty = TRUE`); err != nil {
		t.Fatalf("mark dirty: %v", err)
	}
	head := headVersion(t)
	force := fmt.Sprintf("force %d", head)
	_, err = postgres.Open(ctx, url, db.Options{})
	if !errors.Is(err, db.ErrSchemaOutOfDate) || !strings.Contains(err.Error(), force) {
		t.Fatalf("Open(dirty) = %v, want ErrSchemaOutOfDate with the force hint", err)
	}
	if v, dirty, err := (postgres.Driver{}).SchemaVersion(ctx, url); err != nil || v != uint(head) || !dirty {
		t.Fatalf("SchemaVersion(dirty) = %d, %v, %v; want %d, true, nil", v, dirty, err, head)
	}
	err = (postgres.Driver{}).Migrate(ctx, url, db.Head)
	if !errors.Is(err, db.ErrSchemaOutOfDate) || !strings.Contains(err.Error(), force) {
		t.Fatalf("Migrate(dirty) = %v, want ErrSchemaOutOfDate with the force hint", err)
	}
}

func TestDriverRegisteredForBothSchemes(t *testing.T) {
	url := dbtest.PostgresURL(t)
	if err := (postgres.Driver{}).Migrate(t.Context(), url, db.Head); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	for _, scheme := range []string{"postgres", "postgresql"} {
		t.Run(scheme, func(t *testing.T) {
			_, rest, _ := strings.Cut(url, "://")
			s, err := db.Open(t.Context(), scheme+"://"+rest, db.Options{})
			if err != nil {
				t.Fatalf("db.Open(%s://…) = %v", scheme, err)
			}
			s.Close()
		})
	}
}

// TestMigrateConcurrentGoroutines: several upgrades at once neither fail
// nor apply a migration twice (the advisory lock serialises them).
func TestMigrateConcurrentGoroutines(t *testing.T) {
	url := dbtest.PostgresURL(t)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = (postgres.Driver{}).Migrate(t.Context(), url, db.Head) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d = %v", i, err)
		}
	}
	checkMigrated(t, url)
}

// TestMigrateConcurrentProcesses runs two processes (this test binary)
// that upgrade the same schema at the same moment.
func TestMigrateConcurrentProcesses(t *testing.T) {
	url := dbtest.PostgresURL(t)
	const n = 2
	cmds := make([]*exec.Cmd, n)
	outs := make([]strings.Builder, n)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperMigrateProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "WINCHESTER_TEST_MIGRATE_URL="+url)
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
	}
	for i := range outs {
		if !strings.Contains(outs[i].String(), "migrated") {
			t.Errorf("process %d did not run the migration helper:\n%s", i, outs[i].String())
		}
	}
	checkMigrated(t, url)
}

// TestHelperMigrateProcess is the body of TestMigrateConcurrentProcesses'
// child processes; it does nothing in a normal run.
func TestHelperMigrateProcess(t *testing.T) {
	url := os.Getenv("WINCHESTER_TEST_MIGRATE_URL")
	if url == "" {
		t.Skip("helper process of TestMigrateConcurrentProcesses")
	}
	for range 3 {
		if err := (postgres.Driver{}).Migrate(t.Context(), url, db.Head); err != nil {
			t.Fatalf("Migrate = %v", err)
		}
	}
	fmt.Println("migrated")
}

// checkMigrated asserts the schema at url is at the newest version, clean,
// with the tables created once.
func checkMigrated(t *testing.T, url string) {
	t.Helper()
	v, dirty, err := (postgres.Driver{}).SchemaVersion(t.Context(), url)
	if head := headVersion(t); err != nil || v != uint(head) || dirty {
		t.Fatalf("SchemaVersion = %d, %v, %v; want %d, false, nil", v, dirty, err, head)
	}
	s, err := postgres.Open(t.Context(), url, db.Options{})
	if err != nil {
		t.Fatalf("Open after concurrent migrations = %v", err)
	}
	defer s.Close()
	ids, err := s.SaveEvents(t.Context(), []stream.Event{{MessageID: "m1", Type: "t", Timestamp: time.Unix(1, 0).UTC()}})
	if err != nil || len(ids) != 1 || ids[0] == 0 {
		t.Fatalf("SaveEvents after concurrent migrations = %v, %v", ids, err)
	}
}

// TestLostConnection terminates the store's backend from a second
// connection: the next query fails with db.ErrUnavailable and the pool
// recovers on the call after it.
func TestLostConnection(t *testing.T) {
	ctx := t.Context()
	base := dbtest.PostgresURL(t)
	if err := (postgres.Driver{}).Migrate(ctx, base, db.Head); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	app := fmt.Sprintf("winchester_lost_%d", time.Now().UnixNano())
	url := base + "&application_name=" + app + "&pool_max_conns=1"
	s, err := postgres.Open(ctx, url, db.Options{})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	defer s.Close()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect admin: %v", err)
	}
	defer admin.Close(ctx)
	terminate := func() {
		t.Helper()
		var n int
		err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n)
		if err != nil || n < 1 {
			t.Fatalf("terminate backend: %d terminated, %v", n, err)
		}
	}

	err = s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		if _, err := tx.EventTypes(ctx); err != nil {
			return err
		}
		terminate()
		_, err := tx.EventTypes(ctx)
		return err
	})
	if !errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("query after the backend was terminated: %v, want ErrUnavailable", err)
	}
	if _, err := s.EventTypes(ctx); err != nil {
		t.Fatalf("query after reconnecting: %v", err)
	}

	// Outside a transaction, the pool may notice the dead connection
	// itself (health check before use) and retry on a new one.
	terminate()
	if _, err := s.EventTypes(ctx); err != nil && !errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("query after terminate: %v, want nil or ErrUnavailable", err)
	}
	if _, err := s.EventTypes(ctx); err != nil {
		t.Fatalf("second query after terminate: %v", err)
	}

	s.Close()
	if _, err := s.EventTypes(ctx); !errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("query on a closed store: %v, want ErrUnavailable", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		// Port 1 on localhost: nothing listens, the connection is refused.
		{name: "refused", url: "postgres://postgres@127.0.0.1:1/test?connect_timeout=2"},
		// A non-routable address: the connection times out (or the
		// network is unreachable).
		{name: "timeout", url: "postgres://postgres@10.255.255.1:5432/test?connect_timeout=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if _, err := postgres.Open(ctx, tc.url, db.Options{}); !errors.Is(err, db.ErrUnavailable) {
				t.Errorf("Open = %v, want ErrUnavailable", err)
			}
			if _, _, err := (postgres.Driver{}).SchemaVersion(ctx, tc.url); !errors.Is(err, db.ErrUnavailable) {
				t.Errorf("SchemaVersion = %v, want ErrUnavailable", err)
			}
			if err := (postgres.Driver{}).Migrate(ctx, tc.url, db.Head); !errors.Is(err, db.ErrUnavailable) {
				t.Errorf("Migrate = %v, want ErrUnavailable", err)
			}
		})
	}
}

// TestSaveEventsLargeBatch crosses the internal batch size with
// duplicates inside the call, across batches and already stored.
func TestSaveEventsLargeBatch(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	ts := time.Date(2014, 8, 1, 10, 20, 45, 453201000, time.UTC)
	ev := func(i int) stream.Event {
		return stream.Event{MessageID: fmt.Sprintf("m-%05d", i), Type: "compute.instance.exists", Timestamp: ts.Add(time.Duration(i) * time.Microsecond),
			Traits: map[string]stream.Value{"n": stream.Int(int64(i))}}
	}
	if _, err := s.SaveEvents(ctx, []stream.Event{ev(5)}); err != nil {
		t.Fatalf("SaveEvents(first) = %v", err)
	}
	var events []stream.Event
	for i := range 2500 {
		events = append(events, ev(i))
	}
	events = append(events, ev(10), ev(1500), ev(2499)) // repeats in later batches
	ids, err := s.SaveEvents(ctx, events)
	if err != nil {
		t.Fatalf("SaveEvents = %v", err)
	}
	var dups []int
	last := int64(0)
	for i, id := range ids {
		if id == 0 {
			dups = append(dups, i)
			continue
		}
		if id <= last {
			t.Fatalf("ids[%d] = %d after %d: ids do not follow input order", i, id, last)
		}
		last = id
	}
	if diff := cmp.Diff([]int{5, 2500, 2501, 2502}, dups); diff != "" {
		t.Errorf("duplicate positions (-want +got):\n%s", diff)
	}
	n, err := s.CountEvents(ctx, db.FindEventsParams{})
	if err != nil || n != 2500 {
		t.Errorf("CountEvents = %d, %v; want 2500", n, err)
	}
	got, err := s.EventByMessageID(ctx, "m-01234")
	if err != nil {
		t.Fatalf("EventByMessageID = %v", err)
	}
	if diff := cmp.Diff(ev(1234), got.Event, cmp.Comparer(func(a, b stream.Value) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("stored event (-want +got):\n%s", diff)
	}
}

// TestOpenStreamLocksAgainstClaims proves the ingest locking protocol on
// PostgreSQL: while an ingester holds a stream found with OpenStream in a
// transaction, a worker's claim (the state compare-and-set) waits, and the
// ingester's append is neither lost nor refused (D-9).
func TestOpenStreamLocksAgainstClaims(t *testing.T) {
	ctx := t.Context()
	url := dbtest.PostgresURL(t)
	app := fmt.Sprintf("winchester_lock_%d", time.Now().UnixNano())
	s, err := postgres.Open(ctx, url+"&application_name="+app, db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	defer s.Close()
	ts := time.Date(2014, 8, 1, 10, 20, 45, 453201000, time.UTC)
	ids, err := s.SaveEvents(ctx, []stream.Event{
		{MessageID: "first", Type: "t", Timestamp: ts, Traits: map[string]stream.Value{}},
		{MessageID: "late", Type: "t", Timestamp: ts.Add(time.Second), Traits: map[string]stream.Value{}},
	})
	if err != nil {
		t.Fatalf("SaveEvents = %v", err)
	}
	dist := map[string]stream.Value{"instance_id": stream.String("i-1")}
	id, _, err := s.CreateStream(ctx, db.NewStream{Name: "trig", Key: stream.Key(dist), DistinguishedBy: dist,
		FirstEvent: ts, LastEvent: ts, ExpireTimestamp: ts.Add(time.Hour), FireTimestamp: ts, EventIDs: ids[:1], Now: ts})
	if err != nil {
		t.Fatalf("CreateStream = %v", err)
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect admin: %v", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))

	locked, release := make(chan struct{}), make(chan struct{})
	ingest := make(chan error, 1)
	go func() {
		ingest <- s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			st, err := tx.OpenStream(ctx, "trig", stream.Key(dist))
			if err != nil {
				return err
			}
			close(locked)
			<-release
			return tx.AppendToStream(ctx, db.AppendParams{StreamID: st.ID, EventIDs: ids[1:], FirstEvent: ts,
				LastEvent: ts.Add(time.Second), ExpireTimestamp: ts.Add(time.Hour)})
		})
	}()
	<-locked
	claim := make(chan error, 1)
	go func() {
		_, err := s.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 0, State: stream.StateFiring})
		claim <- err
	}()
	// Wait until the claim is blocked on the ingester's row lock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&waiting)
		if err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if waiting == 1 {
			break
		}
		select {
		case err := <-claim:
			t.Fatalf("the claim finished (%v) while the ingester held the stream", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim never waited for the ingester's lock")
		}
	}
	close(release)
	if err := <-ingest; err != nil {
		t.Fatalf("ingester: %v, want its append to succeed", err)
	}
	if err := <-claim; err != nil {
		t.Fatalf("claim after the ingester committed: %v", err)
	}
	evs, err := s.StreamEvents(ctx, id)
	if err != nil {
		t.Fatalf("StreamEvents = %v", err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.MessageID)
	}
	if diff := cmp.Diff([]string{"first", "late"}, got); diff != "" {
		t.Errorf("events of the claimed stream (-want +got):\n%s", diff)
	}
}

func TestMigrateMissingSchema(t *testing.T) {
	url := dbtest.PostgresURL(t)
	missing := strings.Replace(url, "search_path=", "search_path=no_such_schema_", 1)
	err := (postgres.Driver{}).Migrate(t.Context(), missing, db.Head)
	if err == nil || !strings.Contains(err.Error(), "CREATE SCHEMA") {
		t.Fatalf("Migrate(missing schema) = %v, want an error saying to create the schema", err)
	}
	if _, err := postgres.Open(t.Context(), missing, db.Options{}); !errors.Is(err, db.ErrSchemaOutOfDate) {
		t.Fatalf("Open(missing schema) = %v, want ErrSchemaOutOfDate", err)
	}
}

// headVersion is the newest version among the driver's migrations.
func headVersion(t *testing.T) int {
	t.Helper()
	entries, err := fs.Glob((postgres.Driver{}).Migrations(), "*.up.sql")
	if err != nil || len(entries) == 0 {
		t.Fatalf("migrations: %v, %v", entries, err)
	}
	slices.Sort(entries)
	head, err := strconv.Atoi(entries[len(entries)-1][:6])
	if err != nil {
		t.Fatalf("migration %s: %v", entries[len(entries)-1], err)
	}
	return head
}

// A server that answers but refuses the connection as configured (no
// such database, no such role) is a mistake to fix, not an outage to wait
// out: the error says what is wrong and is not db.ErrUnavailable.
func TestRefusedConnection(t *testing.T) {
	base := dbtest.PostgresURL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(u *url.URL)
		want string
	}{
		{name: "missing database", edit: func(u *url.URL) { u.Path = "/winchester_no_such_database" },
			want: `database "winchester_no_such_database" does not exist (SQLSTATE 3D000): create the database`},
		{name: "missing role", edit: func(u *url.URL) { u.User = url.User("winchester_no_such_role") },
			want: `role "winchester_no_such_role" does not exist (SQLSTATE 28000): check the user`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := *u
			tc.edit(&v)
			s, err := postgres.Open(t.Context(), v.String(), db.Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", v.Redacted())
			}
			if errors.Is(err, db.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "refused the connection") {
				t.Errorf("Open(%s) = %v, want a permanent error containing %q", v.Redacted(), err, tc.want)
			}
		})
	}
}

// TestMigrateConnectionDropped kills the connection of a migration while
// it runs (blocked on a lock the test holds, so the kill lands inside the
// migration): golang-migrate's error means db.ErrUnavailable, and the
// half-applied version is left dirty for winchester_db force.
func TestMigrateConnectionDropped(t *testing.T) {
	ctx := t.Context()
	url := dbtest.PostgresURL(t)
	if err := (postgres.Driver{}).Migrate(ctx, url, 1); err != nil {
		t.Fatalf("Migrate to 1 = %v", err)
	}
	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer locker.Close(context.WithoutCancel(ctx))
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Migration 2 alters the stream table: it waits for this lock.
	if _, err := tx.Exec(ctx, `LOCK TABLE stream IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatalf("lock stream: %v", err)
	}
	var lockerPID int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&lockerPID); err != nil {
		t.Fatalf("backend pid: %v", err)
	}

	// pg_stat_activity is read once per transaction: watch it from a
	// connection of its own.
	watcher, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer watcher.Close(context.WithoutCancel(ctx))

	done := make(chan error, 1)
	go func() { done <- (postgres.Driver{}).Migrate(ctx, url, db.Head) }()

	// Wait until the migration's connection waits for the lock, then
	// terminate it.
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		err := watcher.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE $1::int = ANY(pg_blocking_pids(pid))`, lockerPID).Scan(&n)
		if err != nil {
			t.Fatalf("terminate the migration's connection: %v", err)
		}
		if n > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Migrate returned %v before it waited for the lock", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the migration never waited for the lock on stream")
		}
	}
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Migrate did not return after its connection was terminated")
	}
	if !errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("Migrate with its connection dropped = %v, want db.ErrUnavailable", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("release the lock: %v", err)
	}
	version, dirty, err := (postgres.Driver{}).SchemaVersion(ctx, url)
	if err != nil || version != 2 || !dirty {
		t.Errorf("SchemaVersion after the dropped migration = %d, dirty %v, %v; want 2, dirty", version, dirty, err)
	}
}
