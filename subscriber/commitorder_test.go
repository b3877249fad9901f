package subscriber_test

import (
	"context"
	"slices"
	"testing"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/subscriber"
)

// watchedStore signals every SubscriberEvents call that returned.
type watchedStore struct {
	store
	reads chan int // the number of events each read returned
}

func (w watchedStore) SubscriberEvents(ctx context.Context, after db.Position, limit int) ([]db.PositionedEvent, error) {
	evs, err := w.store.SubscriberEvents(ctx, after, limit)
	if err == nil {
		select {
		case w.reads <- len(evs):
		default:
		}
	}
	return evs, err
}

// An ingest transaction that stored its event first (the lower id) but
// commits last must not be skipped: a position that only kept the highest
// delivered id would pass over it once the later transactions committed.
func TestHeldOpenIngestTransactionIsNotSkipped(t *testing.T) {
	s := openPostgres(t)
	in := newIngester(t, s)
	rec := newRecorder()
	ws := watchedStore{store: s, reads: make(chan int)}
	run(t, ws, "w1", subscriber.Definition{Name: "audit", Deliver: rec.deliver})
	created(t, s, "audit")

	early := in.events("held.open", 1)
	stored := make(chan struct{})
	commit := make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- s.InTx(context.Background(), func(ctx context.Context, tx db.Ops) error {
			if _, err := in.m.AddEventsTx(ctx, tx, early); err != nil {
				return err
			}
			close(stored)
			<-commit
			return nil
		})
	}()
	<-stored
	late := slices.Concat(in.add(in.events("committed.first", 2)), in.add(in.events("committed.first", 1)))

	// Let the subscriber read the log after the later transactions
	// committed, while the early one is still open: the second read
	// signalled began after the first returned, so after the commits.
	for reads := 0; reads < 2; {
		select {
		case n := <-ws.reads:
			if n != 0 {
				t.Fatalf("a read while the early transaction was open returned %d events, want none", n)
			}
			reads++
		case err := <-txDone:
			t.Fatalf("the held transaction ended early: %v", err)
		}
	}
	if got := rec.received(); len(got) != 0 {
		t.Fatalf("delivered %v while an earlier ingest transaction was open", got)
	}
	close(commit)
	if err := <-txDone; err != nil {
		t.Fatalf("held transaction: %v", err)
	}
	want := slices.Concat(messageIDs(early), late)
	if got := rec.waitFor(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v: the late committer first (it began first), each once", got, want)
	}
	st := waitPosition(t, s, "audit")
	if st.Delivered != int64(len(want)) {
		t.Errorf("stored delivered count %d, want %d", st.Delivered, len(want))
	}
}
