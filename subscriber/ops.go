package subscriber

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
)

// LagCap bounds the lag Status counts: counting further would make every
// listing expensive.
const LagCap = 1_000_000

// Status is what an operator sees of a subscriber.
type Status struct {
	Name string
	// State is the stored state; zero (and HasState false) for a
	// subscriber that has none (disabled, or not yet run).
	State    db.SubscriberState
	HasState bool
	// Lag is the number of events after the position (up to LagCap),
	// whether or not they pass the filter.
	Lag int64
	// DeadLetters is the number of dead letters.
	DeadLetters int64
}

// ReadStatus returns the status of subscriber name.
func ReadStatus(ctx context.Context, s Store, name string) (Status, error) {
	st, err := s.SubscriberState(ctx, name)
	if errors.Is(err, db.ErrNotFound) {
		return Status{Name: name}, nil
	}
	if err != nil {
		return Status{}, err
	}
	return statusOf(ctx, s, st)
}

// ReadStatuses returns the status of every subscriber that has a state,
// by name.
func ReadStatuses(ctx context.Context, s Store) ([]Status, error) {
	states, err := s.SubscriberStates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(states))
	for _, st := range states {
		one, err := statusOf(ctx, s, st)
		if err != nil {
			return nil, err
		}
		out = append(out, one)
	}
	return out, nil
}

func statusOf(ctx context.Context, s Store, st db.SubscriberState) (Status, error) {
	lag, err := s.CountEventsAfter(ctx, st.Position, LagCap)
	if err != nil {
		return Status{}, err
	}
	n, err := s.CountDeadLetters(ctx, st.Name)
	if err != nil {
		return Status{}, err
	}
	return Status{Name: st.Name, State: st, HasState: true, Lag: lag, DeadLetters: n}, nil
}

// Target says where Skip moves a position.
type Target struct {
	// End moves the position to the head of the log: every stored event
	// is passed over.
	End bool
	// AfterEvent moves the position just after that event (0 with End
	// false: to the start of the log, so every stored event is delivered
	// again).
	AfterEvent int64
}

// Skip moves the position of subscriber name and returns its new state.
// The worker delivering it loses its claim (its position update fails)
// and the subscriber goes on from the new position.
func Skip(ctx context.Context, s Store, name string, to Target, now time.Time) (db.SubscriberState, error) {
	var pos db.Position
	var err error
	switch {
	case to.End:
		pos, err = s.HeadPosition(ctx)
	case to.AfterEvent > 0:
		pos, err = s.EventPosition(ctx, to.AfterEvent)
	}
	if err != nil {
		return db.SubscriberState{}, fmt.Errorf("subscriber %q: %w", name, err)
	}
	for {
		st, err := s.SubscriberState(ctx, name)
		if errors.Is(err, db.ErrNotFound) {
			return st, fmt.Errorf("%w %q (it has no position: it is disabled or has not run yet)", ErrUnknown, name)
		}
		if err != nil {
			return st, err
		}
		st, err = s.UpdateSubscriber(ctx, db.UpdateSubscriberParams{
			Name: name, SerialNo: st.SerialNo, Position: pos, Delivered: st.Delivered, Failures: st.Failures,
			LastError: st.LastError, Now: now,
		})
		if errors.Is(err, db.ErrConflict) {
			continue // a worker stored its progress meanwhile: move it again
		}
		return st, err
	}
}

// Retry marks dead letters of subscriber name for another delivery: the
// one with id, or all of them when id is 0. It returns how many it
// marked. The worker delivering the subscriber delivers them before new
// events.
func Retry(ctx context.Context, s Store, name string, id int64, now time.Time) (int, error) {
	if _, err := s.SubscriberState(ctx, name); errors.Is(err, db.ErrNotFound) {
		return 0, fmt.Errorf("%w %q", ErrUnknown, name)
	} else if err != nil {
		return 0, err
	}
	n, err := s.MarkDeadLetters(ctx, name, id, now)
	if errors.Is(err, db.ErrNotFound) {
		return 0, fmt.Errorf("subscriber %q has no dead letter %d: %w", name, id, err)
	}
	return n, err
}
