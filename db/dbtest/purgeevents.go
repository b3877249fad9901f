package dbtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// exercisePurgeEvents: PurgeEvents deletes events by id with their
// stream links, whatever the streams' states; the streams stay; unknown
// ids are ignored; inside a transaction that rolls back nothing changes.
func exercisePurgeEvents(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	ids := save(t, s,
		newEvent("pe-1", "test.purge", at(0), nil),
		newEvent("pe-2", "test.purge", at(time.Minute), nil),
		newEvent("pe-3", "test.purge", at(2*time.Minute), nil),
	)
	active := create(t, s, streamSpec{name: "purge", dist: instance("a"), expire: at(time.Hour), events: ids[:2]})
	done := create(t, s, streamSpec{name: "purge", dist: instance("b"), expire: at(time.Hour), events: ids[1:]})
	setState(t, s, done, stream.StateFiring)
	setState(t, s, done, stream.StateCompleted)

	if n, err := s.PurgeEvents(ctx, nil); err != nil || n != 0 {
		t.Fatalf("PurgeEvents(none) = %d, %v; want 0, nil", n, err)
	}
	rollback := errors.New("roll back")
	err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		if n, err := tx.PurgeEvents(ctx, ids); err != nil || n != 3 {
			t.Errorf("PurgeEvents in a transaction = %d, %v; want 3, nil", n, err)
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("InTx = %v, want the rollback error", err)
	}
	if n, err := s.CountEvents(ctx, db.FindEventsParams{}); err != nil || n != 3 {
		t.Fatalf("CountEvents after a rolled back purge = %d, %v; want 3", n, err)
	}

	n, err := s.PurgeEvents(ctx, []int64{ids[0], ids[1], 999_999})
	if err != nil || n != 2 {
		t.Fatalf("PurgeEvents(pe-1, pe-2, unknown) = %d, %v; want 2, nil", n, err)
	}
	for _, mid := range []string{"pe-1", "pe-2"} {
		_, err := s.EventByMessageID(ctx, mid)
		wantErr(t, "EventByMessageID(purged "+mid+")", err, db.ErrNotFound)
	}
	for _, tc := range []struct {
		id   int64
		want []string
	}{{active, []string{}}, {done, []string{"pe-3"}}} {
		streamByID(t, s, tc.id) // the stream stays
		evs, err := s.StreamEvents(ctx, tc.id)
		if err != nil {
			t.Fatalf("StreamEvents(%d): %v", tc.id, err)
		}
		if diff := cmp.Diff(tc.want, messageIDs(evs)); diff != "" {
			t.Errorf("StreamEvents(%d) after the purge (-want +got):\n%s", tc.id, diff)
		}
	}
}
