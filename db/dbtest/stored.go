package dbtest

import (
	"fmt"
	"testing"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// StoredStateFunc returns the number stored in the state column of stream
// id, read with the driver's own SQL, not through db.Store.
type StoredStateFunc func(t *testing.T, id int64) int

// storedStates are the numbers of the states in the stream table: the
// original's StreamState codes, shared with its databases. They are
// written here literally, once, so a renumbering of stream.State fails
// the suite.
var storedStates = map[stream.State]int{
	stream.StateActive:      1,
	stream.StateFiring:      2,
	stream.StateExpiring:    3,
	stream.StateError:       4,
	stream.StateExpireError: 5,
	stream.StateCompleted:   6,
	stream.StateRetryFire:   7,
	stream.StateRetryExpire: 8,
}

// ExerciseStoredStates checks the numbers a driver stores for each stream
// state: open returns a fresh store and a reader of its raw state column.
// Each stream reaches its state through the legal transitions
// (stream.State.CanBecome), as the engine would move it.
func ExerciseStoredStates(t *testing.T, open func(t *testing.T) (db.Store, StoredStateFunc)) {
	t.Helper()
	s, stored := open(t)
	if len(storedStates) != len(stream.States()) {
		t.Fatalf("the suite pins %d stored states, the stream package has %d", len(storedStates), len(stream.States()))
	}
	paths := map[stream.State][]stream.State{
		stream.StateActive:      nil,
		stream.StateFiring:      {stream.StateFiring},
		stream.StateExpiring:    {stream.StateExpiring},
		stream.StateError:       {stream.StateFiring, stream.StateError},
		stream.StateExpireError: {stream.StateExpiring, stream.StateExpireError},
		stream.StateCompleted:   {stream.StateFiring, stream.StateCompleted},
		stream.StateRetryFire:   {stream.StateFiring, stream.StateError, stream.StateRetryFire},
		stream.StateRetryExpire: {stream.StateExpiring, stream.StateRetryExpire},
	}
	for _, state := range stream.States() {
		t.Run(state.String(), func(t *testing.T) {
			id := create(t, s, streamSpec{name: "stored", dist: instance(fmt.Sprint(int(state))), fire: at(1), expire: at(2)})
			cur := stream.StateActive
			for _, next := range paths[state] {
				if !cur.CanBecome(next) {
					t.Fatalf("path to %s: %s → %s is not a legal transition", state, cur, next)
				}
				setState(t, s, id, next)
				cur = next
			}
			if got := streamByID(t, s, id).State; got != state {
				t.Fatalf("stream state %s, want %s", got, state)
			}
			if got, want := stored(t, id), storedStates[state]; got != want {
				t.Errorf("state %s is stored as %d, want %d", state, got, want)
			}
			found, err := s.FindStreams(t.Context(), db.FindStreamsParams{State: state, Name: "stored"})
			if err != nil || len(found) != 1 || found[0].Stream.ID != id {
				t.Errorf("FindStreams(state %s) = %d streams, %v; want the one stream", state, len(found), err)
			}
		})
	}
}
