package dbtest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
)

// subscriberStore returns the store's db.SubscriberStore, failing the test
// when the driver does not implement it (both drivers do).
func subscriberStore(t *testing.T, s db.Store) db.SubscriberStore {
	t.Helper()
	ss, ok := s.(db.SubscriberStore)
	if !ok {
		t.Fatalf("%T does not implement db.SubscriberStore", s)
	}
	return ss
}

// saveN stores n events named prefix-0…prefix-(n-1) and returns their ids.
func saveN(t *testing.T, s db.Ops, prefix string, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := range n {
		ids = append(ids, save(t, s, newEvent(fmt.Sprintf("%s-%d", prefix, i), "test.event", at(time.Duration(i)*time.Second), nil))...)
	}
	return ids
}

// settled waits until the event with id last is the head of the log in
// delivery order. On PostgreSQL an event is readable by subscribers only
// once every transaction that began before it committed has ended, on the
// whole server (other tests' included): a test elsewhere that holds a
// transaction open holds this wait, hence the generous settleWait.
func settled(t *testing.T, ss db.SubscriberStore, last int64) db.Position {
	t.Helper()
	deadline := time.Now().Add(settleWait)
	for {
		h, err := ss.HeadPosition(t.Context())
		if err != nil {
			t.Fatalf("HeadPosition: %v", err)
		}
		if h.EventID == last {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %d did not become the head of the log in %s (head %v)", last, settleWait, h)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settleWait bounds the waits for PostgreSQL's transaction horizon.
const settleWait = 3 * time.Minute

// positionIDs returns the event ids of read events, in order.
func positionIDs(evs []db.PositionedEvent) []int64 {
	var out []int64
	for _, e := range evs {
		out = append(out, e.Position.EventID)
	}
	return out
}

func exerciseSubscribers(t *testing.T, open OpenFunc) {
	t.Run("CreateAtHeadAndReadOn", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ss := subscriberStore(t, s)
		ctx := t.Context()
		if _, err := ss.SubscriberState(ctx, "audit"); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("SubscriberState(unknown) = %v, want ErrNotFound", err)
		}
		if h, err := ss.HeadPosition(ctx); err != nil || h != (db.Position{}) {
			t.Fatalf("HeadPosition(empty log) = %v, %v; want zero", h, err)
		}
		before := saveN(t, s, "before", 3)
		settled(t, ss, before[2])
		created, err := ss.CreateSubscriber(ctx, "audit", base)
		if err != nil || !created {
			t.Fatalf("CreateSubscriber = %v, %v", created, err)
		}
		st, err := ss.SubscriberState(ctx, "audit")
		if err != nil {
			t.Fatalf("SubscriberState: %v", err)
		}
		if st.Position.EventID != before[2] || st.SerialNo != 0 || !st.UpdatedAt.Equal(base) {
			t.Fatalf("new subscriber = %+v; want positioned at event %d (the head), serial 0", st, before[2])
		}
		if again, err := ss.CreateSubscriber(ctx, "audit", at(time.Hour)); err != nil || again {
			t.Fatalf("CreateSubscriber(existing) = %v, %v; want false, nil", again, err)
		}
		after := saveN(t, s, "after", 5)
		settled(t, ss, after[4])
		got, err := ss.SubscriberEvents(ctx, st.Position, 3)
		if err != nil {
			t.Fatalf("SubscriberEvents: %v", err)
		}
		if diff := cmp.Diff(after[:3], positionIDs(got)); diff != "" {
			t.Fatalf("SubscriberEvents after the head, limit 3 (-want +got):\n%s", diff)
		}
		if got[0].Event.MessageID != "after-0" || got[0].Event.Type != "test.event" {
			t.Errorf("first event read = %+v", got[0].Event)
		}
		rest, err := ss.SubscriberEvents(ctx, got[2].Position, 10)
		if err != nil || cmp.Diff(after[3:], positionIDs(rest)) != "" {
			t.Fatalf("SubscriberEvents after the third = %v, %v; want %v", positionIDs(rest), err, after[3:])
		}
		if n, err := ss.CountEventsAfter(ctx, st.Position, 100); err != nil || n != 5 {
			t.Errorf("CountEventsAfter(head at creation) = %d, %v; want 5", n, err)
		}
		if n, err := ss.CountEventsAfter(ctx, db.Position{}, 4); err != nil || n != 4 {
			t.Errorf("CountEventsAfter(start, limit 4) = %d, %v; want 4", n, err)
		}
		// Every event is readable (settled): none waits for the horizon.
		if w, err := ss.HorizonWait(ctx, db.Position{}, 100); err != nil || w != (db.HorizonWait{}) {
			t.Errorf("HorizonWait(start) once settled = %+v, %v; want zero", w, err)
		}
		h, err := ss.HeadPosition(ctx)
		if err != nil || h != rest[1].Position {
			t.Errorf("HeadPosition = %v, %v; want %v", h, err, rest[1].Position)
		}
		p, err := ss.EventPosition(ctx, after[1])
		if err != nil || p != got[1].Position {
			t.Errorf("EventPosition(%d) = %v, %v; want %v", after[1], p, err, got[1].Position)
		}
		if _, err := ss.EventPosition(ctx, after[4]+100); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("EventPosition(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("UpdateIsACompareAndSet", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ss := subscriberStore(t, s)
		ctx := t.Context()
		ids := saveN(t, s, "e", 2)
		settled(t, ss, ids[1])
		if _, err := ss.CreateSubscriber(ctx, "audit", base); err != nil {
			t.Fatal(err)
		}
		st, _ := ss.SubscriberState(ctx, "audit")
		pos, _ := ss.EventPosition(ctx, ids[1])
		p := db.UpdateSubscriberParams{Name: "audit", SerialNo: st.SerialNo, Position: pos, ClaimedBy: "w1",
			LeaseUntil: at(time.Minute), Delivered: 7, Failures: 2, LastError: "boom", Now: at(time.Second),
			DeadLetters: []db.DeadLetter{{EventID: ids[0], MessageID: "e-0", EventType: "test.event", Attempts: 3, Error: "boom"}}}
		got, err := ss.UpdateSubscriber(ctx, p)
		if err != nil {
			t.Fatalf("UpdateSubscriber: %v", err)
		}
		want := db.SubscriberState{Name: "audit", SerialNo: 1, Position: pos, ClaimedBy: "w1", LeaseUntil: at(time.Minute),
			Delivered: 7, Failures: 2, LastError: "boom", UpdatedAt: at(time.Second)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UpdateSubscriber result (-want +got):\n%s", diff)
		}
		if _, err := ss.UpdateSubscriber(ctx, p); !errors.Is(err, db.ErrConflict) {
			t.Fatalf("UpdateSubscriber with a stale serial = %v, want ErrConflict", err)
		}
		if n, _ := ss.CountDeadLetters(ctx, "audit"); n != 1 {
			t.Errorf("dead letters after a lost compare-and-set: %d, want 1 (nothing written twice)", n)
		}
		p.Name = "nobody"
		if _, err := ss.UpdateSubscriber(ctx, p); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("UpdateSubscriber(unknown) = %v, want ErrNotFound", err)
		}
		if err := ss.RenewSubscriberLease(ctx, "audit", 1, "w1", at(2*time.Minute)); err != nil {
			t.Fatalf("RenewSubscriberLease: %v", err)
		}
		if st, _ := ss.SubscriberState(ctx, "audit"); !st.LeaseUntil.Equal(at(2*time.Minute)) || st.SerialNo != 1 {
			t.Errorf("after renewal: %+v; want lease at +2m, serial 1", st)
		}
		for _, c := range []struct {
			serial int64
			worker string
		}{{0, "w1"}, {1, "w2"}} {
			if err := ss.RenewSubscriberLease(ctx, "audit", c.serial, c.worker, at(time.Hour)); !errors.Is(err, db.ErrConflict) {
				t.Errorf("RenewSubscriberLease(serial %d, %s) = %v, want ErrConflict", c.serial, c.worker, err)
			}
		}
		all, err := ss.SubscriberStates(ctx)
		if err != nil || len(all) != 1 || all[0].Name != "audit" {
			t.Errorf("SubscriberStates = %+v, %v", all, err)
		}
	})

	t.Run("DeadLetters", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ss := subscriberStore(t, s)
		ctx := t.Context()
		ids := saveN(t, s, "e", 3)
		for _, name := range []string{"audit", "other"} {
			if _, err := ss.CreateSubscriber(ctx, name, base); err != nil {
				t.Fatal(err)
			}
			var dls []db.DeadLetter
			for i, id := range ids {
				dls = append(dls, db.DeadLetter{EventID: id, MessageID: fmt.Sprintf("e-%d", i), Attempts: 2, Error: "down"})
			}
			if _, err := ss.UpdateSubscriber(ctx, db.UpdateSubscriberParams{Name: name, Now: base, DeadLetters: dls}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := ss.DeadLetters(ctx, "audit", false, 10)
		if err != nil || len(all) != 3 || all[0].EventID != ids[0] || all[0].Subscriber != "audit" || all[0].Error != "down" || all[0].Retry {
			t.Fatalf("DeadLetters = %+v, %v", all, err)
		}
		if none, err := ss.DeadLetters(ctx, "audit", true, 10); err != nil || len(none) != 0 {
			t.Fatalf("DeadLetters(retry only) before marking = %+v, %v", none, err)
		}
		if n, err := ss.MarkDeadLetters(ctx, "audit", all[1].ID, at(time.Minute)); err != nil || n != 1 {
			t.Fatalf("MarkDeadLetters(one) = %d, %v", n, err)
		}
		if _, err := ss.MarkDeadLetters(ctx, "other", all[1].ID, at(time.Minute)); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("MarkDeadLetters(another subscriber's id) = %v, want ErrNotFound", err)
		}
		marked, _ := ss.DeadLetters(ctx, "audit", true, 10)
		if len(marked) != 1 || marked[0].ID != all[1].ID || !marked[0].Retry {
			t.Fatalf("marked = %+v, want only %d", marked, all[1].ID)
		}
		if err := ss.SettleDeadLetter(ctx, all[1].ID, 2, "still down", at(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		again, _ := ss.DeadLetters(ctx, "audit", false, 10)
		if len(again) != 3 || again[1].Retry || again[1].Attempts != 4 || again[1].Error != "still down" {
			t.Fatalf("after a failed retry: %+v", again[1])
		}
		if n, err := ss.MarkDeadLetters(ctx, "audit", 0, at(3*time.Minute)); err != nil || n != 3 {
			t.Fatalf("MarkDeadLetters(all) = %d, %v; want 3", n, err)
		}
		if err := ss.SettleDeadLetter(ctx, all[0].ID, 1, "", at(4*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, _ := ss.CountDeadLetters(ctx, "audit"); n != 2 {
			t.Errorf("dead letters after one was delivered: %d, want 2", n)
		}
		if n, _ := ss.CountDeadLetters(ctx, "other"); n != 3 {
			t.Errorf("other subscriber's dead letters: %d, want 3", n)
		}
		if err := ss.DeleteSubscriber(ctx, "audit"); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.SubscriberState(ctx, "audit"); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("deleted subscriber's state: %v, want ErrNotFound", err)
		}
		if n, _ := ss.CountDeadLetters(ctx, "audit"); n != 0 {
			t.Errorf("deleted subscriber keeps %d dead letters", n)
		}
		if err := ss.DeleteSubscriber(ctx, "audit"); err != nil {
			t.Errorf("DeleteSubscriber(none) = %v, want nil", err)
		}
	})
}
