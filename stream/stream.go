package stream

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// State is the processing state of a stream. The numbers are persisted (the
// original's StreamState codes) and are never renumbered.
type State int

// Stream states; see doc.go for the transitions.
const (
	StateActive      State = 1
	StateFiring      State = 2
	StateExpiring    State = 3
	StateError       State = 4
	StateExpireError State = 5
	StateCompleted   State = 6
	StateRetryFire   State = 7
	StateRetryExpire State = 8
)

var stateNames = map[State]string{
	StateActive:      "active",
	StateFiring:      "firing",
	StateExpiring:    "expiring",
	StateError:       "error",
	StateExpireError: "expire_error",
	StateCompleted:   "completed",
	StateRetryFire:   "retry_fire",
	StateRetryExpire: "retry_expire",
}

// String returns the state's name ("active", "retry_fire", ...).
func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Valid reports whether s is a defined state.
func (s State) Valid() bool { _, ok := stateNames[s]; return ok }

// ParseState returns the state with the given name.
func ParseState(name string) (State, error) {
	for s, n := range stateNames {
		if n == name {
			return s, nil
		}
	}
	names := slices.Sorted(maps.Values(stateNames))
	return 0, fmt.Errorf("unknown stream state %q (known: %s)", name, strings.Join(names, ", "))
}

// Stream is one stream row: the events a trigger collected for one set of
// distinguishing values, and where it is in its life cycle.
type Stream struct {
	ID              int64
	Name            string // the trigger's name
	State           State
	SerialNo        int64 // state_serial_no: +1 on every state change
	FirstEvent      time.Time
	LastEvent       time.Time
	ExpireTimestamp time.Time // zero: none
	FireTimestamp   time.Time // zero: not ready to fire
	DistinguishedBy map[string]Value

	// Key is the canonical key of DistinguishedBy (see Key).
	Key string
	// Open is true while the stream accepts new events: it is active and
	// its expiry had not passed when an ingester last looked. At most one
	// open stream exists per trigger name and key.
	Open bool
	// FireCounts holds, per fire criterion, how many events matched so far
	// (capped at the criterion's number); nil once the stream is ready.
	FireCounts []int
	// Claim and retry bookkeeping kept by workers.
	ClaimedBy  string
	LeaseUntil time.Time
	Attempts   int
	LastError  string
	CreatedAt  time.Time
	// DefinitionVersion is the version of the definitions the stream was
	// created under (0: none recorded); its fire criteria, expiration and
	// pipelines are that version's until it completes.
	DefinitionVersion int64
}

// Key returns the canonical key of a set of distinguishing values: the
// sorted names with their type-tagged values. Two sets have the same key
// exactly when they have the same names and Equal values.
func Key(dist map[string]Value) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(dist)) {
		vk := dist[k].Key()
		// Length prefixes keep the encoding injective whatever the names
		// and strings contain.
		fmt.Fprintf(&b, "%d:%s%d:%s", len(k), k, len(vk), vk)
	}
	return b.String()
}

// Clock tells the current time. Every component takes one, so tests and
// replays control time; SystemClock is the wall clock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock in UTC.
type SystemClock struct{}

// Now returns the current UTC time truncated to microseconds.
func (SystemClock) Now() time.Time { return NormalizeTime(time.Now()) }
