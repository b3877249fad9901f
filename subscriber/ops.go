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
	// Horizon reports the committed events after the position that wait
	// for an older transaction still running on the database server
	// (PostgreSQL; counted up to LagCap), and that transaction.
	Horizon db.HorizonWait
}

// WaitsForHorizon reports whether delivery waits for the snapshot
// horizon: every event it may read is dealt with (no lag) while
// committed events after the position are held back by an older
// transaction still running.
func (s Status) WaitsForHorizon() bool { return s.HasState && s.Lag == 0 && s.Horizon.HeldBack > 0 }

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
	hw, err := s.HorizonWait(ctx, st.Position, LagCap)
	if err != nil {
		return Status{}, err
	}
	return Status{Name: st.Name, State: st, HasState: true, Lag: lag, DeadLetters: n, Horizon: hw}, nil
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

// Report is a Status as the command line (-o json) and the HTTP API show
// it.
type Report struct {
	Name string `json:"name"`
	// State: "delivering" (a worker holds it), "idle" (no worker holds
	// it now) or "none" (no stored state: disabled, or not run yet).
	State string `json:"state"`
	// Position is the id of the last event dealt with (0: before every
	// event); PositionXact its transaction on PostgreSQL.
	Position     int64      `json:"position"`
	PositionXact int64      `json:"position_xact,omitempty"`
	Lag          int64      `json:"lag"`
	Delivered    int64      `json:"delivered"`
	Failures     int64      `json:"failures"`
	DeadLetters  int64      `json:"dead_letters"`
	ClaimedBy    string     `json:"claimed_by,omitempty"`
	LeaseUntil   *time.Time `json:"lease_until,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
	UpdatedAt    *time.Time `json:"updated_at,omitempty"`
	// HorizonWait is set while delivery waits for the snapshot horizon
	// (Status.WaitsForHorizon).
	HorizonWait *HorizonReport `json:"horizon_wait,omitempty"`
}

// HorizonReport says why and since when delivery waits for the snapshot
// horizon: committed events are held back until an older transaction
// still running on the database server ends.
type HorizonReport struct {
	// HeldBack is the number of committed events after the position
	// that cannot be delivered yet (up to LagCap).
	HeldBack int64 `json:"held_back"`
	// Since is when the transaction holding the horizon began (absent
	// when the database does not tell).
	Since *time.Time `json:"since,omitempty"`
	// Holder describes that transaction (server process id, state,
	// application, database, user; or a prepared transaction's name).
	Holder string `json:"holder,omitempty"`
}

// Report returns the status as shown to operators at now.
func (s Status) Report(now time.Time) Report {
	r := Report{Name: s.Name, State: "none"}
	if !s.HasState {
		return r
	}
	st := s.State
	r.State = "idle"
	if st.ClaimedBy != "" && now.Before(st.LeaseUntil) {
		r.State = "delivering"
		r.ClaimedBy, r.LeaseUntil = st.ClaimedBy, &st.LeaseUntil
	}
	r.Position, r.PositionXact = st.Position.EventID, st.Position.Xact
	r.Lag, r.Delivered, r.Failures, r.DeadLetters = s.Lag, st.Delivered, st.Failures, s.DeadLetters
	r.LastError, r.UpdatedAt = st.LastError, &st.UpdatedAt
	if s.WaitsForHorizon() {
		h := &HorizonReport{HeldBack: s.Horizon.HeldBack, Holder: s.Horizon.Holder}
		if !s.Horizon.Since.IsZero() {
			h.Since = &s.Horizon.Since
		}
		r.HorizonWait = h
	}
	return r
}

// DeadLetterReport is a dead letter as operators see it.
type DeadLetterReport struct {
	ID        int64     `json:"id"`
	EventID   int64     `json:"event_id"`
	MessageID string    `json:"message_id"`
	EventType string    `json:"event_type"`
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error"`
	Retry     bool      `json:"retry"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ReportDeadLetters returns up to limit dead letters of name, oldest
// first, as operators see them.
func ReportDeadLetters(ctx context.Context, s Store, name string, limit int) ([]DeadLetterReport, error) {
	dls, err := s.DeadLetters(ctx, name, false, limit)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetterReport, len(dls))
	for i, d := range dls {
		out[i] = DeadLetterReport{ID: d.ID, EventID: d.EventID, MessageID: d.MessageID, EventType: d.EventType,
			Attempts: d.Attempts, Error: d.Error, Retry: d.Retry, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	}
	return out, nil
}
