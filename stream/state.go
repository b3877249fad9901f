package stream

import (
	"cmp"
	"slices"
	"time"
)

// Action is what a worker does with a ready stream: fire it (its fire
// criteria are met) or expire it (its expiry time passed first).
type Action int

// Worker actions. The numbers are not stored.
const (
	Fire   Action = 1
	Expire Action = 2
)

// String returns "fire" or "expire".
func (a Action) String() string {
	switch a {
	case Fire:
		return "fire"
	case Expire:
		return "expire"
	}
	return "action(?)"
}

// ClaimState is the state a worker moves a ready stream to while it runs
// the action's pipeline: firing or expiring.
func (a Action) ClaimState() State {
	if a == Expire {
		return StateExpiring
	}
	return StateFiring
}

// RetryState is the state a stream waits in after a failed attempt at the
// action, until its retry time: retry_fire or retry_expire.
func (a Action) RetryState() State {
	if a == Expire {
		return StateRetryExpire
	}
	return StateRetryFire
}

// ErrorState is the state of a stream whose action failed for good (its
// retries are used up): error or expire_error.
func (a Action) ErrorState() State {
	if a == Expire {
		return StateExpireError
	}
	return StateError
}

// ClaimedFor returns the action a worker runs on a stream in claim state
// s (firing: Fire, expiring: Expire); ok is false for any other state.
func (s State) ClaimedFor() (a Action, ok bool) {
	switch s {
	case StateFiring:
		return Fire, true
	case StateExpiring:
		return Expire, true
	}
	return 0, false
}

// Deadline is the time a stream waits for before it is ready for the
// action: its fire_timestamp (Fire) or its expire_timestamp (Expire).
func (a Action) Deadline(s Stream) time.Time {
	if a == Expire {
		return s.ExpireTimestamp
	}
	return s.FireTimestamp
}

// ReadyOrder compares two streams ready for the action in the order the
// workers take them: by deadline, then by id (for slices.SortFunc; the
// drivers' ready queries order their rows the same way).
func (a Action) ReadyOrder(x, y Stream) int {
	return cmp.Or(a.Deadline(x).Compare(a.Deadline(y)), cmp.Compare(x.ID, y.ID))
}

// ReadyStates are the states from which a stream can be ready for the
// action: active, and the action's retry state.
func (a Action) ReadyStates() []State {
	if a == Expire {
		return []State{StateActive, StateRetryExpire}
	}
	return []State{StateActive, StateRetryFire}
}

// ReadyTo reports whether s is ready for action a at now. It is the one
// definition of readiness; its SQL form is written once (db.ReadySQL), for
// the drivers' ready queries and the re-check of a claim, and the storage
// suite compares both with this function.
//
//   - Fire: state active or retry_fire, and fire_timestamp < now.
//   - Expire: state retry_expire and expire_timestamp < now; or state
//     active, expire_timestamp < now and no fire_timestamp. A stream whose
//     fire criteria are met is fired, never expired, however late the
//     workers are: it keeps waiting for its fire time even when its expiry
//     time comes first.
//
// Comparisons are strict: a stream is not ready at exactly its deadline.
func (s Stream) ReadyTo(a Action, now time.Time) bool {
	if !slices.Contains(a.ReadyStates(), s.State) {
		return false
	}
	switch a {
	case Fire:
		return !s.FireTimestamp.IsZero() && s.FireTimestamp.Before(now)
	case Expire:
		due := !s.ExpireTimestamp.IsZero() && s.ExpireTimestamp.Before(now)
		return due && (s.State == StateRetryExpire || s.FireTimestamp.IsZero())
	}
	return false
}

// transitions are the legal state changes (see the package doc). A
// claimed stream may "move" to its own state: that is the renewal of its
// lease, which increments the serial like any transition.
var transitions = map[State][]State{
	StateActive:      {StateFiring, StateExpiring},
	StateFiring:      {StateFiring, StateCompleted, StateRetryFire, StateError},
	StateExpiring:    {StateExpiring, StateCompleted, StateRetryExpire, StateExpireError},
	StateRetryFire:   {StateFiring},
	StateRetryExpire: {StateExpiring},
	StateError:       {StateRetryFire},
	StateExpireError: {StateRetryExpire},
	StateCompleted:   nil,
}

// CanBecome reports whether the state machine lets a stream in state s
// move to state t. Storage does not enforce it (operators and fixtures may
// set any state); the engine makes only these moves.
func (s State) CanBecome(t State) bool {
	return slices.Contains(transitions[s], t)
}

// States returns every state in the order of their stored numbers.
func States() []State {
	return []State{StateActive, StateFiring, StateExpiring, StateError, StateExpireError,
		StateCompleted, StateRetryFire, StateRetryExpire}
}
