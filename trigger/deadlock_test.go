package trigger_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// keyHookStore: beforeOpen runs before the single-stream OpenStream (the
// batch path's redo), afterOpens after the batch OpenStreams.
type keyHookStore struct {
	db.Store
	single     bool
	beforeOpen func()
	afterOpens func()
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

func (o keyHookBatchOps) OpenStreams(ctx context.Context, keys []db.StreamKey) (map[db.StreamKey]stream.Stream, error) {
	open, err := o.BatchIngester.OpenStreams(ctx, keys)
	if err == nil && o.s.afterOpens != nil {
		o.s.afterOpens()
	}
	return open, err
}

// TestBatchesDoNotDeadlock forces the interleaving that deadlocked batches
// before they locked their keys: batch X loses the create race for key b
// (a third transaction created it) and looks b up again after inserting
// the new stream of key a, while batch Y, started meanwhile, has locked
// b's stream and waits for X's insert of a. With key locks, Y waits for X
// instead. The single-stream path runs the same interleaving.
func TestBatchesDoNotDeadlock(t *testing.T) {
	for _, single := range []bool{false, true} {
		name := "batch"
		if single {
			name = "single"
		}
		t.Run(name, func(t *testing.T) {
			pg := openPostgresStore(t)
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

			xRedo, yLocked := make(chan struct{}), make(chan struct{})
			var xOnce, yOnce sync.Once
			xStore := keyHookStore{Store: pg, single: single}
			yStore := keyHookStore{Store: pg, single: single}
			if single {
				// X's second lookup of b (after its refused create) is its redo.
				n := 0
				xStore.beforeOpen = func() {
					n++
					if n == 3 { // a, b, b again
						xOnce.Do(func() { close(xRedo) })
						select {
						case <-yLocked:
						case <-time.After(2 * time.Second):
						}
						time.Sleep(300 * time.Millisecond)
					}
				}
				m := 0
				yStore.beforeOpen = func() {
					m++
					if m == 2 { // Y got past a (its insert waits or not): signal at b
						yOnce.Do(func() { close(yLocked) })
					}
				}
			} else {
				xStore.beforeOpen = func() {
					xOnce.Do(func() { close(xRedo) })
					select {
					case <-yLocked:
					case <-time.After(2 * time.Second):
					}
					time.Sleep(300 * time.Millisecond) // Y is now waiting in CreateStreams
				}
				yStore.afterOpens = func() { yOnce.Do(func() { close(yLocked) }) }
			}
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
			time.Sleep(300 * time.Millisecond) // X waits for W on b
			close(wCommit)
			if err := <-wDone; err != nil {
				t.Fatal(err)
			}
			select {
			case <-xRedo:
			case <-time.After(3 * time.Second):
				t.Fatal("X did not redo b")
			}
			go func() {
				_, err := y.AddEvents(ctx, []stream.Event{
					instanceEvent("ya", "compute.instance.update", "a", t0.Add(2*time.Minute)),
					instanceEvent("yb", "compute.instance.update", "b", t0.Add(2*time.Minute)),
				})
				yErr <- err
			}()
			ex, ey := <-xErr, <-yErr
			t.Logf("X: %v", ex)
			t.Logf("Y: %v", ey)
			if ex != nil || ey != nil {
				t.Errorf("a batch failed")
			}
		})
	}
}
