package trigger_test

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// keyHookStore: beforeOpen runs before the single-stream OpenStream (on
// the batch path, its redo of a key that lost a race).
type keyHookStore struct {
	db.Store
	single     bool
	beforeOpen func()
}

type keyHookOps struct {
	db.Ops
	s keyHookStore
}

type keyHookBatchOps struct {
	keyHookOps
	db.BatchIngester
}

func (s keyHookStore) InTx(ctx context.Context, fn func(ctx context.Context, tx db.Ops) error) error {
	return s.Store.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		if s.single {
			return fn(ctx, keyHookOps{Ops: tx, s: s})
		}
		return fn(ctx, keyHookBatchOps{keyHookOps: keyHookOps{Ops: tx, s: s}, BatchIngester: tx.(db.BatchIngester)})
	})
}

func (o keyHookOps) OpenStream(ctx context.Context, name, key string) (stream.Stream, error) {
	if o.s.beforeOpen != nil {
		o.s.beforeOpen()
	}
	return o.Ops.OpenStream(ctx, name, key)
}

func (o keyHookBatchOps) OpenStream(ctx context.Context, name, key string) (stream.Stream, error) {
	return o.keyHookOps.OpenStream(ctx, name, key)
}

// lockWaiter reports, through a connection of its own, whether a backend
// with a given application_name waits for a lock: the proof that a
// transaction reached the point where it blocks on another one.
type lockWaiter struct {
	conn *pgx.Conn
}

func newLockWaiter(t *testing.T, url string) *lockWaiter {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return &lockWaiter{conn: conn}
}

// wait polls until a backend of app waits for a lock; it returns an error
// after a few seconds. It may be called from any goroutine, one at a time.
func (w *lockWaiter) wait(ctx context.Context, app string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		err := w.conn.QueryRow(ctx,
			`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n)
		if err != nil {
			return fmt.Errorf("query pg_stat_activity: %w", err)
		}
		if n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no backend of %s waited for a lock within 5s", app)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// withApp returns url with its application_name parameter set.
func withApp(t *testing.T, rawURL, app string) string {
	t.Helper()
	u, err := neturl.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestBatchesDoNotDeadlock forces the interleaving that deadlocked batches
// before they locked their keys: batch X loses the create race for key b
// (a third transaction, W, created it) and looks b up again after
// inserting the new stream of key a, while batch Y, started meanwhile,
// waits for X. Each step waits until PostgreSQL shows the transaction
// that should be blocked waiting for a lock, so the test proves the
// interleaving happened. With key locks, Y waits for X instead of
// deadlocking with it. The single-stream path runs the same interleaving.
func TestBatchesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	for _, single := range []bool{false, true} {
		name := "batch"
		if single {
			name = "single"
		}
		t.Run(name, func(t *testing.T) {
			url := dbtest.PostgresURL(t)
			open := func(app string) *postgres.Store {
				s, err := postgres.Open(t.Context(), withApp(t, url, app), db.Options{Migrate: true})
				if err != nil {
					t.Fatalf("open PostgreSQL store: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			suffix := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
			xApp, yApp := "deadlock-x-"+suffix, "deadlock-y-"+suffix
			pg, xPG, yPG := open("deadlock-w-"+suffix), open(xApp), open(yApp)
			locks := newLockWaiter(t, url)
			ctx := t.Context()
			t0 := time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)
			clock := &settableClock{t0}
			defs, _, err := trigger.Parse("triggers.yaml", []byte(`
- name: by_last
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
  fire_criteria:
  - event_type: compute.instance.exists
`))
			if err != nil {
				t.Fatal(err)
			}
			ids, err := pg.SaveEvents(ctx, []stream.Event{instanceEvent("w", "compute.instance.update", "b", t0)})
			if err != nil {
				t.Fatal(err)
			}
			// W: an uncommitted open stream of key b.
			wReady, wCommit, wDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				wDone <- pg.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
					dist := map[string]stream.Value{"instance_id": stream.String("b")}
					_, _, err := tx.CreateStream(ctx, db.NewStream{Name: "by_last", Key: stream.Key(dist), DistinguishedBy: dist,
						FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), FireCounts: []int{0}, EventIDs: ids, Now: t0})
					close(wReady)
					<-wCommit
					return err
				})
			}()
			<-wReady

			// X's lookup of b again (after its create of b was refused)
			// holds X's stream of a; it goes on once Y waits for X.
			xRedo := make(chan struct{})
			var xOnce sync.Once
			var yWaited error = errors.New("X never looked b up again")
			redo := func() {
				xOnce.Do(func() {
					close(xRedo)
					yWaited = locks.wait(ctx, yApp)
				})
			}
			xStore := keyHookStore{Store: xPG, single: single}
			if single {
				n := 0
				xStore.beforeOpen = func() {
					if n++; n == 3 { // a, b, b again
						redo()
					}
				}
			} else {
				xStore.beforeOpen = redo // only the redo looks up one key
			}
			yStore := keyHookStore{Store: yPG, single: single}
			mk := func(s trigger.Store) *trigger.Manager {
				m, err := trigger.NewManager(s, defs, trigger.ManagerConfig{Clock: clock, MaxAttempts: 1})
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			x, y := mk(xStore), mk(yStore)
			xErr, yErr := make(chan error, 1), make(chan error, 1)
			go func() {
				_, err := x.AddEvents(ctx, []stream.Event{
					instanceEvent("xa", "compute.instance.update", "a", t0.Add(time.Minute)),
					instanceEvent("xb", "compute.instance.update", "b", t0.Add(time.Minute)),
				})
				xErr <- err
			}()
			if err := locks.wait(ctx, xApp); err != nil { // X waits for W on b
				t.Errorf("X did not wait for W: %v", err)
			}
			close(wCommit)
			if err := <-wDone; err != nil {
				t.Fatal(err)
			}
			select {
			case <-xRedo:
			case <-time.After(5 * time.Second):
				t.Fatal("X did not look b up again")
			}
			go func() {
				_, err := y.AddEvents(ctx, []stream.Event{
					instanceEvent("ya", "compute.instance.update", "a", t0.Add(2*time.Minute)),
					instanceEvent("yb", "compute.instance.update", "b", t0.Add(2*time.Minute)),
				})
				yErr <- err
			}()
			ex, ey := <-xErr, <-yErr
			if yWaited != nil {
				t.Errorf("Y did not wait for X: %v", yWaited)
			}
			if ex != nil || ey != nil {
				t.Errorf("a batch failed: X: %v; Y: %v", ex, ey)
			}
		})
	}
}
