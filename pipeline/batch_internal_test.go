package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	_ "github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/stream"
)

// groupBundle is a worker over a SQLite store with n streams claimed by
// it, and one completion per stream carrying one new event each.
type groupBundle struct {
	w     *Worker
	store db.Store
	group []*completion
	feeds int // feed calls
}

var groupT0 = time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)

type fixedTestClock time.Time

func (c fixedTestClock) Now() time.Time { return time.Time(c) }

func setupGroup(t *testing.T, n int, feed func(ctx context.Context, tx db.Ops, events []stream.Event) error) *groupBundle {
	t.Helper()
	ctx := t.Context()
	s, err := db.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "g.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	g := &groupBundle{store: s}
	for i := range n {
		dist := map[string]stream.Value{"i": stream.Int(int64(i))}
		if _, _, err := s.CreateStream(ctx, db.NewStream{Name: "t", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: groupT0, LastEvent: groupT0, ExpireTimestamp: groupT0.Add(time.Hour), FireTimestamp: groupT0, Now: groupT0}); err != nil {
			t.Fatal(err)
		}
	}
	now := groupT0.Add(time.Minute)
	g.w, err = NewWorker(s, &Definitions{}, nil, func(ctx context.Context, tx db.Ops, events []stream.Event) error {
		g.feeds++
		return feed(ctx, tx, events)
	}, WorkerConfig{Clock: fixedTestClock(now), SleepFunc: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimStreams(ctx, db.ClaimParams{Action: db.Fire, Now: now, Limit: n, Owner: "w", LeaseUntil: now.Add(time.Hour)})
	if err != nil || len(claimed) != n {
		t.Fatalf("ClaimStreams: %d %v", len(claimed), err)
	}
	for i, c := range claimed {
		g.group = append(g.group, &completion{claimed: c, log: g.w.log, done: make(chan error, 1),
			newEvents: []stream.Event{{MessageID: fmt.Sprintf("out-%d", i), Type: "x", Timestamp: groupT0}}})
	}
	return g
}

func saveFeed(ctx context.Context, tx db.Ops, events []stream.Event) error {
	_, err := tx.SaveEvents(ctx, events)
	return err
}

// outcomes runs completeGroup and returns each completion's error.
func (g *groupBundle) outcomes(t *testing.T) []error {
	t.Helper()
	g.w.completeGroup(t.Context(), g.group)
	out := make([]error, len(g.group))
	for i, r := range g.group {
		select {
		case out[i] = <-r.done:
		default:
			t.Fatalf("completion %d got no outcome", i)
		}
	}
	return out
}

// A group is one transaction: one feed of every stream's new events.
func TestCompleteGroupOneTransaction(t *testing.T) {
	g := setupGroup(t, 3, saveFeed)
	for i, err := range g.outcomes(t) {
		if err != nil {
			t.Errorf("completion %d: %v", i, err)
		}
	}
	if g.feeds != 1 {
		t.Errorf("feed called %d times, want once for the group", g.feeds)
	}
	for i, r := range g.group {
		if s, err := g.store.StreamByID(t.Context(), r.claimed.ID); err != nil || s.State != stream.StateCompleted {
			t.Errorf("stream %d: %v state %s, want completed", i, err, s.State)
		}
		if _, err := g.store.EventByMessageID(t.Context(), fmt.Sprintf("out-%d", i)); err != nil {
			t.Errorf("new event %d: %v", i, err)
		}
	}
}

// When the group's transaction fails for one stream's output (an event the
// store refuses), each stream is completed alone: only that stream fails.
func TestCompleteGroupFallsBackStreamByStream(t *testing.T) {
	errRefused := errors.New("event refused")
	g := setupGroup(t, 3, func(ctx context.Context, tx db.Ops, events []stream.Event) error {
		for _, e := range events {
			if e.MessageID == "out-1" {
				return errRefused
			}
		}
		return saveFeed(ctx, tx, events)
	})
	errs := g.outcomes(t)
	for i, err := range errs {
		if want := i == 1; errors.Is(err, errRefused) != want {
			t.Errorf("completion %d: %v, want refused %v", i, err, want)
		}
	}
	if g.feeds != 4 {
		t.Errorf("feed called %d times, want 4 (the group, then each stream)", g.feeds)
	}
	for _, i := range []int{0, 2} {
		if s, _ := g.store.StreamByID(t.Context(), g.group[i].claimed.ID); s.State != stream.StateCompleted {
			t.Errorf("stream %d: state %s, want completed", i, s.State)
		}
	}
}

// A database unavailable for longer than the leases last fails every
// stream of the group with db.ErrUnavailable (another worker recovers
// them); nothing is completed.
func TestCompleteGroupUnavailable(t *testing.T) {
	g := setupGroup(t, 2, func(context.Context, db.Ops, []stream.Event) error {
		return fmt.Errorf("store: %w", db.ErrUnavailable)
	})
	for i, err := range g.outcomes(t) {
		if !errors.Is(err, db.ErrUnavailable) {
			t.Errorf("completion %d: %v, want db.ErrUnavailable", i, err)
		}
	}
	if g.feeds < 2 {
		t.Errorf("feed called %d times, want retries while the leases last", g.feeds)
	}
	for i, r := range g.group {
		if s, _ := g.store.StreamByID(t.Context(), r.claimed.ID); s.State != stream.StateFiring {
			t.Errorf("stream %d: state %s, want still firing", i, s.State)
		}
	}
}

// Run's claims shrink with slow pipelines (as many as the slots start in
// claimHorizon, at least one per slot) and grow back with fast ones.
func TestClaimLimitFollowsRunTimes(t *testing.T) {
	w, err := NewWorker(nil, &Definitions{}, nil, nil, WorkerConfig{Concurrency: 2, BatchSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		run  time.Duration // observed (repeatedly) before the check; 0: none
		want int
	}{
		{name: "no run time yet", want: 1000},
		{name: "100ms pipelines", run: 100 * time.Millisecond, want: 2 * int(claimHorizon/(100*time.Millisecond))},
		{name: "pipelines slower than the horizon", run: 10 * claimHorizon, want: 2},
		{name: "fast pipelines", run: time.Microsecond, want: 1000},
	}
	for _, st := range steps {
		for range 200 { // the moving average converges
			if st.run > 0 {
				w.observeRun(st.run)
			}
		}
		if got := w.claimLimit(); got != st.want {
			t.Errorf("%s: claimLimit() = %d, want %d", st.name, got, st.want)
		}
	}
}
