package postgres_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// TestCountStreamsByStateEstimates: once the table is analysed, a state
// with at least exactBelow streams keeps the planner's estimate and is
// listed as estimated; a state rarer than that is counted exactly, even
// one the statistics do not know.
func TestCountStreamsByStateEstimates(t *testing.T) {
	t.Parallel()
	url := databases.URL(t)
	s := openURL(t, url)
	ctx := t.Context()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var f db.Fixture
	for i, st := range []stream.State{stream.StateActive, stream.StateActive, stream.StateActive, stream.StateActive, stream.StateError} {
		f.Streams = append(f.Streams, db.FixtureStream{Stream: stream.Stream{
			ID: int64(i + 1), Name: "t", State: st, FirstEvent: t0, LastEvent: t0,
			DistinguishedBy: map[string]stream.Value{"n": stream.Int(int64(i))},
		}})
	}
	if err := s.LoadFixture(ctx, f); err != nil {
		t.Fatalf("LoadFixture: %v", err)
	}
	counts, estimated, err := s.CountStreamsByState(ctx, 2)
	if err != nil {
		t.Fatalf("CountStreamsByState before ANALYZE: %v", err)
	}
	if len(estimated) != 0 || counts[stream.StateActive] != 4 || counts[stream.StateError] != 1 {
		t.Errorf("before ANALYZE: counts %v, estimated %v; want exact 4 active, 1 error", counts, estimated)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ANALYZE stream"); err != nil {
		t.Fatalf("ANALYZE: %v", err)
	}
	counts, estimated, err = s.CountStreamsByState(ctx, 2)
	if err != nil {
		t.Fatalf("CountStreamsByState: %v", err)
	}
	if diff := cmp.Diff([]stream.State{stream.StateActive}, estimated); diff != "" {
		t.Errorf("estimated states (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[stream.State]int64{stream.StateActive: 4, stream.StateError: 1}, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}
