package stream

import (
	"slices"
	"testing"
	"time"
)

func TestReadyTo(t *testing.T) {
	t0 := time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	tests := []struct {
		name                string
		state               State
		fire, expire        time.Time
		now                 time.Time
		wantFire, wantExpir bool
	}{
		{"fire due", StateActive, h(1), h(5), h(2), true, false},
		{"fire not yet", StateActive, h(3), h(5), h(2), false, false},
		{"fire at exactly its time", StateActive, h(2), h(5), h(2), false, false},
		{"expire due, no fire time", StateActive, time.Time{}, h(1), h(2), false, true},
		{"both due: fired, never expired", StateActive, h(1), h(1), h(2), true, false},
		{"expiry first, fire later: waits to fire", StateActive, h(3), h(1), h(2), false, false},
		{"retry_fire", StateRetryFire, h(1), h(1), h(2), true, false},
		{"retry_expire ignores the fire time", StateRetryExpire, h(1), h(1), h(2), false, true},
		{"error is never ready", StateError, h(1), h(1), h(2), false, false},
		{"expire_error is never ready", StateExpireError, time.Time{}, h(1), h(2), false, false},
		{"claimed is never ready", StateFiring, h(1), h(1), h(2), false, false},
		{"completed is never ready", StateCompleted, time.Time{}, h(1), h(2), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Stream{State: tc.state, FireTimestamp: tc.fire, ExpireTimestamp: tc.expire}
			if got := s.ReadyTo(Fire, tc.now); got != tc.wantFire {
				t.Errorf("ReadyTo(fire) = %v, want %v", got, tc.wantFire)
			}
			if got := s.ReadyTo(Expire, tc.now); got != tc.wantExpir {
				t.Errorf("ReadyTo(expire) = %v, want %v", got, tc.wantExpir)
			}
		})
	}
}

func TestCanBecome(t *testing.T) {
	legal := [][2]State{
		{StateActive, StateFiring}, {StateActive, StateExpiring},
		{StateFiring, StateFiring}, {StateFiring, StateCompleted}, {StateFiring, StateRetryFire}, {StateFiring, StateError},
		{StateExpiring, StateCompleted}, {StateExpiring, StateRetryExpire}, {StateExpiring, StateExpireError},
		{StateRetryFire, StateFiring}, {StateRetryExpire, StateExpiring},
		{StateError, StateRetryFire}, {StateExpireError, StateRetryExpire},
	}
	illegal := [][2]State{
		{StateActive, StateCompleted}, {StateActive, StateError}, {StateRetryFire, StateExpiring},
		{StateError, StateRetryExpire}, {StateCompleted, StateActive}, {StateFiring, StateExpiring},
	}
	for _, p := range legal {
		if !p[0].CanBecome(p[1]) {
			t.Errorf("%s → %s is legal, CanBecome says no", p[0], p[1])
		}
	}
	for _, p := range illegal {
		if p[0].CanBecome(p[1]) {
			t.Errorf("%s → %s is not legal, CanBecome says yes", p[0], p[1])
		}
	}
	for _, s := range States() {
		if !s.Valid() {
			t.Errorf("States() lists invalid %d", int(s))
		}
	}
}

func TestActionClaimState(t *testing.T) {
	if Fire.ClaimState() != StateFiring || Expire.ClaimState() != StateExpiring {
		t.Errorf("ClaimState: fire %s, expire %s", Fire.ClaimState(), Expire.ClaimState())
	}
	if Fire.String() != "fire" || Expire.String() != "expire" {
		t.Errorf("String: %q %q", Fire, Expire)
	}
}

// TestActionStates checks each action's states against the transitions:
// a ready stream can be claimed, a claimed one can fail into the retry or
// error state, a retry can be claimed again and an error reset to the
// retry state; ClaimedFor inverts ClaimState.
func TestActionStates(t *testing.T) {
	tests := []struct {
		action                   Action
		claim, retry, errorState State
	}{
		{action: Fire, claim: StateFiring, retry: StateRetryFire, errorState: StateError},
		{action: Expire, claim: StateExpiring, retry: StateRetryExpire, errorState: StateExpireError},
	}
	for _, tc := range tests {
		t.Run(tc.action.String(), func(t *testing.T) {
			a := tc.action
			if a.ClaimState() != tc.claim || a.RetryState() != tc.retry || a.ErrorState() != tc.errorState {
				t.Errorf("ClaimState, RetryState, ErrorState = %s, %s, %s; want %s, %s, %s",
					a.ClaimState(), a.RetryState(), a.ErrorState(), tc.claim, tc.retry, tc.errorState)
			}
			for _, ready := range a.ReadyStates() {
				if !ready.CanBecome(a.ClaimState()) {
					t.Errorf("ready state %s cannot become the claim state %s", ready, a.ClaimState())
				}
			}
			for _, next := range []State{a.RetryState(), a.ErrorState(), StateCompleted} {
				if !a.ClaimState().CanBecome(next) {
					t.Errorf("claim state %s cannot become %s", a.ClaimState(), next)
				}
			}
			if !a.ErrorState().CanBecome(a.RetryState()) {
				t.Errorf("error state %s cannot be reset to %s", a.ErrorState(), a.RetryState())
			}
			if got, ok := a.ClaimState().ClaimedFor(); !ok || got != a {
				t.Errorf("%s.ClaimedFor() = %s, %v; want %s, true", a.ClaimState(), got, ok, a)
			}
		})
	}
	for _, s := range States() {
		if _, ok := s.ClaimedFor(); ok != (s == StateFiring || s == StateExpiring) {
			t.Errorf("%s.ClaimedFor() ok = %v", s, ok)
		}
	}
}

func TestActionReadyOrder(t *testing.T) {
	t0 := time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)
	streams := []Stream{
		{ID: 3, FireTimestamp: t0.Add(time.Minute), ExpireTimestamp: t0},
		{ID: 1, FireTimestamp: t0.Add(2 * time.Minute), ExpireTimestamp: t0.Add(time.Hour)},
		{ID: 2, FireTimestamp: t0.Add(time.Minute), ExpireTimestamp: t0.Add(time.Hour)},
	}
	tests := []struct {
		action Action
		want   []int64
	}{
		{action: Fire, want: []int64{2, 3, 1}},   // fire times, then ids
		{action: Expire, want: []int64{3, 1, 2}}, // expiry times, then ids
	}
	for _, tc := range tests {
		ss := slices.Clone(streams)
		slices.SortFunc(ss, tc.action.ReadyOrder)
		var got []int64
		for _, s := range ss {
			got = append(got, s.ID)
			if d := tc.action.Deadline(s); (tc.action == Fire && !d.Equal(s.FireTimestamp)) || (tc.action == Expire && !d.Equal(s.ExpireTimestamp)) {
				t.Errorf("%s.Deadline(stream %d) = %v", tc.action, s.ID, d)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: streams sorted by ReadyOrder = %v, want %v", tc.action, got, tc.want)
		}
	}
}
