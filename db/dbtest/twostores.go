package dbtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// PairFunc returns two stores on one fresh, empty, migrated database, as
// two processes would open it, and arranges their cleanup itself. A store
// that waits for a lock held by the other should give up quickly (SQLite:
// a busy_timeout of a few hundred milliseconds), so the suite stays fast.
type PairFunc func(t *testing.T) (a, b db.Store)

// ExerciseTwoStores specifies what two processes sharing a database see
// of each other's transactions: a lost compare-and-set is db.ErrConflict
// and only that, and a transaction the database aborts because of the
// other's work (a deadlock, a serialisation failure, a busy timeout) is
// db.ErrAborted and only that, wrote nothing, and succeeds when run again.
func ExerciseTwoStores(t *testing.T, open PairFunc) {
	t.Helper()
	t.Run("LostCompareAndSetIsConflict", func(t *testing.T) {
		t.Parallel()
		a, b := open(t)
		ctx := t.Context()
		id := create(t, a, streamSpec{name: "cas", fire: at(time.Minute)})
		seen := streamByID(t, b, id) // b reads the stream...
		setState(t, a, id, stream.StateFiring)
		// ...and loses the compare-and-set to a.
		_, err := b.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: seen.SerialNo, State: stream.StateExpiring})
		wantOnly(t, "SetStreamState with the serial a concurrent store moved on", err, db.ErrConflict)
		err = b.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			_, err := tx.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: seen.SerialNo, State: stream.StateExpiring})
			return err
		})
		wantOnly(t, "the same compare-and-set inside InTx", err, db.ErrConflict)
		wantOnly(t, "PurgeStream with the old serial", b.PurgeStream(ctx, id, seen.SerialNo), db.ErrConflict)
		if got := streamByID(t, a, id); got.State != stream.StateFiring {
			t.Errorf("state after the lost compare-and-sets = %s, want firing", got.State)
		}
	})

	t.Run("CrossedTransactionsAbortOne", func(t *testing.T) {
		t.Parallel()
		a, b := open(t)
		ctx := t.Context()
		ids := [2]int64{
			create(t, a, streamSpec{name: "crossed", dist: instance("1")}),
			create(t, a, streamSpec{name: "crossed", dist: instance("2")}),
		}
		// Each store's transaction writes its own stream, waits until the
		// other has written its own (or has failed), then writes the
		// other's: on PostgreSQL a deadlock, on SQLite the second writer
		// cannot begin while the first holds the write lock. The database
		// must abort one of them; the other commits.
		stores := [2]db.Store{a, b}
		wrote := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
		done := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
		results := make(chan struct {
			i   int
			err error
		}, 2)
		for i, s := range stores {
			go func() {
				defer close(done[i])
				err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
					if err := bumpSerial(ctx, tx, ids[i]); err != nil {
						return err
					}
					close(wrote[i])
					select {
					case <-wrote[1-i]:
					case <-done[1-i]:
					case <-time.After(30 * time.Second):
						return errors.New("the other transaction neither wrote nor ended within 30s")
					}
					return bumpSerial(ctx, tx, ids[1-i])
				})
				results <- struct {
					i   int
					err error
				}{i, err}
			}()
		}
		var errs [2]error
		for range 2 {
			r := <-results
			errs[r.i] = r.err
		}
		loser := -1
		for i, err := range errs {
			switch {
			case err == nil:
			case loser >= 0:
				t.Fatalf("both transactions failed: %v; %v", errs[0], errs[1])
			default:
				loser = i
				wantOnly(t, "the transaction the database aborted", err, db.ErrAborted)
			}
		}
		if loser < 0 {
			t.Fatalf("both crossed transactions committed; want one aborted with db.ErrAborted")
		}
		// The winner wrote both streams once; the loser wrote nothing.
		for _, id := range ids {
			if got := streamByID(t, a, id); got.SerialNo != 1 {
				t.Errorf("stream %d: serial %d after the crossed transactions, want 1 (the aborted one wrote nothing)", id, got.SerialNo)
			}
		}
		// Run again, the aborted transaction succeeds.
		err := stores[loser].InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			if err := bumpSerial(ctx, tx, ids[loser]); err != nil {
				return err
			}
			return bumpSerial(ctx, tx, ids[1-loser])
		})
		if err != nil {
			t.Fatalf("the aborted transaction run again: %v", err)
		}
		for _, id := range ids {
			if got := streamByID(t, b, id); got.SerialNo != 2 {
				t.Errorf("stream %d: serial %d after the retry, want 2", id, got.SerialNo)
			}
		}
	})
}

// bumpSerial reads a stream and sets it to its own state with the
// compare-and-set, which increments its serial.
func bumpSerial(ctx context.Context, tx db.Ops, id int64) error {
	st, err := tx.StreamByID(ctx, id)
	if err != nil {
		return err
	}
	_, err = tx.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: st.SerialNo, State: st.State})
	return err
}

// wantOnly fails unless err wraps want and no other of the sentinels
// callers branch on to decide whether to retry.
func wantOnly(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
	for _, other := range []error{db.ErrConflict, db.ErrAborted, db.ErrNotFound, db.ErrUnavailable} {
		if other != want && errors.Is(err, other) {
			t.Errorf("%s: error = %v is also %v; want only %v", what, err, other, want)
		}
	}
}
