package dbtest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

func exerciseTx(t *testing.T, open OpenFunc) {
	t.Run("Commit", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		var id int64
		err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			ids, err := tx.SaveEvents(ctx, []stream.Event{newEvent("tx-1", "test.tx", base, nil)})
			if err != nil {
				return err
			}
			var created bool
			id, created, err = tx.CreateStream(ctx, db.NewStream{Name: "tx", Key: stream.Key(nil), FirstEvent: base, LastEvent: base, EventIDs: ids, Now: base})
			if err != nil || !created {
				return errors.Join(err, errors.New("stream not created"))
			}
			// Reads inside the transaction see its writes.
			st, err := tx.OpenStream(ctx, "tx", stream.Key(nil))
			if err != nil || st.ID != id {
				return errors.Join(err, errors.New("OpenStream inside the transaction missed the new stream"))
			}
			evs, err := tx.StreamEvents(ctx, id)
			if err != nil || len(evs) != 1 {
				return errors.Join(err, errors.New("StreamEvents inside the transaction missed the event"))
			}
			_, err = tx.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 0, State: stream.StateFiring})
			return err
		})
		if err != nil {
			t.Fatalf("InTx: %v", err)
		}
		st := streamByID(t, s, id)
		if st.State != stream.StateFiring || st.SerialNo != 1 {
			t.Errorf("after commit: %s/%d, want firing/1", st.State, st.SerialNo)
		}
		if _, err := s.EventByMessageID(ctx, "tx-1"); err != nil {
			t.Errorf("event after commit: %v", err)
		}
	})

	t.Run("RollbackOnError", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "keep"})
		boom := errors.New("boom")
		err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			if _, err := tx.SaveEvents(ctx, []stream.Event{newEvent("rb-1", "test.rb", base, nil)}); err != nil {
				return err
			}
			if _, _, err := tx.CreateStream(ctx, db.NewStream{Name: "gone", Key: stream.Key(nil), FirstEvent: base, LastEvent: base, Now: base}); err != nil {
				return err
			}
			if _, err := tx.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 0, State: stream.StateFiring}); err != nil {
				return err
			}
			if err := tx.PurgeStream(ctx, id, 1); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want the function's error", err)
		}
		_, err = s.EventByMessageID(ctx, "rb-1")
		wantErr(t, "event saved in the rolled-back transaction", err, db.ErrNotFound)
		_, err = s.OpenStream(ctx, "gone", stream.Key(nil))
		wantErr(t, "stream created in the rolled-back transaction", err, db.ErrNotFound)
		want := stream.Stream{ID: id, Name: "keep", State: stream.StateActive, FirstEvent: base, LastEvent: base, Key: stream.Key(nil), Open: true}
		if diff := cmp.Diff(want, streamByID(t, s, id), cmpOpts, ignoreClaim); diff != "" {
			t.Errorf("stream after rollback (-want +got):\n%s", diff)
		}
	})

	t.Run("ConflictInsideTx", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "c"})
		setState(t, s, id, stream.StateFiring)
		err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			_, err := tx.SetStreamState(ctx, db.SetStateParams{ID: id, SerialNo: 0, State: stream.StateExpiring})
			return err
		})
		wantErr(t, "stale CAS inside InTx", err, db.ErrConflict)
	})
}
