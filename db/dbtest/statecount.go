package dbtest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// exerciseStateCounts checks db.StateCounter, for stores that have it: on
// a small table every count is exact and agrees with CountStreams.
func exerciseStateCounts(t *testing.T, open OpenFunc) {
	s := open(t)
	sc, ok := s.(db.StateCounter)
	if !ok {
		t.Skip("the store has no StateCounter")
	}
	fl, ok := s.(db.FixtureLoader)
	if !ok {
		t.Skip("the store has no FixtureLoader")
	}
	states := []stream.State{
		stream.StateActive, stream.StateActive, stream.StateActive,
		stream.StateError, stream.StateError, stream.StateCompleted, stream.StateRetryExpire,
	}
	var f db.Fixture
	for i, st := range states {
		f.Streams = append(f.Streams, db.FixtureStream{Stream: stream.Stream{
			ID: int64(i + 1), Name: "count", State: st, FirstEvent: base, LastEvent: base,
			DistinguishedBy: map[string]stream.Value{"n": stream.Int(int64(i))},
		}})
	}
	ctx := t.Context()
	if err := fl.LoadFixture(ctx, f); err != nil {
		t.Fatalf("LoadFixture: %v", err)
	}
	got, estimated, err := sc.CountStreamsByState(ctx, 1000)
	if err != nil {
		t.Fatalf("CountStreamsByState: %v", err)
	}
	if len(estimated) != 0 {
		t.Errorf("CountStreamsByState(1000) estimated %v on a table of %d rows; want exact counts", estimated, len(states))
	}
	want := map[stream.State]int64{}
	for _, st := range stream.States() {
		n, err := s.CountStreams(ctx, db.FindStreamsParams{State: st})
		if err != nil {
			t.Fatalf("CountStreams(%s): %v", st, err)
		}
		if n > 0 {
			want[st] = n
		}
		if got[st] != n {
			t.Errorf("CountStreamsByState()[%s] = %d, CountStreams = %d", st, got[st], n)
		}
	}
	if diff := cmp.Diff(map[stream.State]int64{stream.StateActive: 3, stream.StateError: 2, stream.StateCompleted: 1, stream.StateRetryExpire: 1}, want); diff != "" {
		t.Errorf("CountStreams by state (-want +got):\n%s", diff)
	}
}
