package dbtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// workers is the number of goroutines racing in the concurrency tests.
const workers = 16

// race runs fn in n goroutines started together and returns their
// results in order.
func race[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

func exerciseConcurrency(t *testing.T, open OpenFunc) {
	t.Run("CreateSameStream", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		dist := dist42()
		type result struct {
			id      int64
			created bool
			err     error
		}
		results := race(workers, func(i int) result {
			id, created, err := s.CreateStream(ctx, db.NewStream{
				Name: "race", Key: stream.Key(dist), DistinguishedBy: dist,
				FirstEvent: base, LastEvent: base, ExpireTimestamp: at(time.Hour), Now: base,
			})
			return result{id, created, err}
		})
		var winners []int64
		for i, r := range results {
			switch {
			case r.err != nil:
				t.Errorf("goroutine %d: CreateStream: %v", i, r.err)
			case r.created:
				winners = append(winners, r.id)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("%d goroutines created the same stream %d times (ids %v), want exactly once", workers, len(winners), winners)
		}
		if n, err := s.CountStreams(ctx, db.FindStreamsParams{Name: "race"}); err != nil || n != 1 {
			t.Errorf("CountStreams = %d, %v; want 1", n, err)
		}
		got, err := s.OpenStream(ctx, "race", stream.Key(dist))
		if err != nil || got.ID != winners[0] {
			t.Errorf("OpenStream = %d, %v; want the winner %d", got.ID, err, winners[0])
		}
	})

	t.Run("ClaimOneStream", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		id := create(t, s, streamSpec{name: "claim", fire: base, expire: at(time.Hour)})
		lease := at(time.Hour)
		errs := race(workers, func(i int) error {
			_, err := s.SetStreamState(ctx, db.SetStateParams{
				ID: id, SerialNo: 0, State: stream.StateFiring,
				ClaimedBy: ptr(fmt.Sprintf("worker-%d", i)), LeaseUntil: &lease,
			})
			return err
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("goroutines %d and %d both claimed the stream", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, db.ErrConflict):
				t.Errorf("goroutine %d: SetStreamState: %v, want success or db.ErrConflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no goroutine claimed the stream")
		}
		st := streamByID(t, s, id)
		if st.SerialNo != 1 || st.State != stream.StateFiring || st.ClaimedBy != fmt.Sprintf("worker-%d", winner) {
			t.Errorf("claimed stream: %s/%d by %q; want firing/1 by worker-%d", st.State, st.SerialNo, st.ClaimedBy, winner)
		}
	})

	t.Run("SaveSameEvent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		type result struct {
			id  int64
			err error
		}
		results := race(workers, func(i int) result {
			ids, err := s.SaveEvents(ctx, []stream.Event{
				newEvent("same", "test.same", base, nil),
				newEvent(fmt.Sprintf("own-%d", i), "test.same", base, nil),
			})
			if err != nil {
				return result{err: err}
			}
			if ids[1] == 0 {
				return result{err: fmt.Errorf("own event taken for a duplicate")}
			}
			return result{id: ids[0]}
		})
		saved := 0
		for i, r := range results {
			if r.err != nil {
				t.Errorf("goroutine %d: SaveEvents: %v", i, r.err)
			}
			if r.id != 0 {
				saved++
			}
		}
		if saved != 1 {
			t.Errorf("the same message_id was saved %d times, want once", saved)
		}
		if n, err := s.CountEvents(ctx, db.FindEventsParams{}); err != nil || n != workers+1 {
			t.Errorf("CountEvents = %d, %v; want %d", n, err, workers+1)
		}
	})

	t.Run("IngestOneKey", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		dist := map[string]stream.Value{"instance_id": stream.String("i-race")}
		key := stream.Key(dist)
		// The trigger manager's path: look up the open stream, append or
		// create, in one transaction; redo on a lost race.
		ingest := func(ctx context.Context, mid string) error {
			for attempt := 0; attempt < 20; attempt++ {
				err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
					ids, err := tx.SaveEvents(ctx, []stream.Event{newEvent(mid, "test.race", base, nil)})
					if err != nil {
						return err
					}
					st, err := tx.OpenStream(ctx, "ingest", key)
					switch {
					case errors.Is(err, db.ErrNotFound):
						_, created, err := tx.CreateStream(ctx, db.NewStream{Name: "ingest", Key: key, DistinguishedBy: dist, FirstEvent: base, LastEvent: base, EventIDs: ids, Now: base})
						if err == nil && !created {
							return db.ErrConflict // a twin appeared: redo
						}
						return err
					case err != nil:
						return err
					}
					return tx.AppendToStream(ctx, db.AppendParams{StreamID: st.ID, EventIDs: ids, FirstEvent: base, LastEvent: base, ExpireTimestamp: st.ExpireTimestamp})
				})
				// A lost race or an aborted transaction (a deadlock
				// between ingesters): redo the whole transaction.
				if !errors.Is(err, db.ErrConflict) && !errors.Is(err, db.ErrAborted) {
					return err
				}
			}
			return fmt.Errorf("event %s: still conflicting after 20 attempts", mid)
		}
		errs := race(workers, func(i int) error { return ingest(ctx, fmt.Sprintf("ingest-%02d", i)) })
		for i, err := range errs {
			if err != nil {
				t.Errorf("goroutine %d: ingest: %v", i, err)
			}
		}
		found, err := s.FindStreams(ctx, db.FindStreamsParams{Name: "ingest", IncludeEvents: true})
		if err != nil {
			t.Fatalf("FindStreams: %v", err)
		}
		if len(found) != 1 {
			t.Fatalf("%d streams for one key, want 1", len(found))
		}
		var want []string
		for i := range workers {
			want = append(want, fmt.Sprintf("ingest-%02d", i))
		}
		got := messageIDs(found[0].Events) // equal timestamps: commit order
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events of the stream (-want +got):\n%s", diff)
		}
	})
}
