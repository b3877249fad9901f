package trigger

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Counter names kept by the Manager. The per-trigger ones follow the
// original's debug counters.
const (
	statReceived    = "received_notifications"
	statSaved       = "saved_events"
	statDuplicates  = "duplicate_events"
	statRejected    = "rejected"
	statMatched     = "matches"
	statNewStreams  = "new_streams"
	statAddedEvents = "added_events"
	statReadyToFire = "ready_to_fire"
	// Debug statistics of triggers with debug_level 1 or 2.
	statMatchPassed    = "match_passed"
	statMatchFailed    = "match_failed"
	statBadDistinguish = "distinguish_failed"
	statExpireFailed   = "expiration_failed"
	mismatchPrefix     = "mismatch: "
)

// Stats holds the manager's counters: totals and per trigger. Snapshot
// and Reset are safe for concurrent use with the manager.
type Stats struct {
	totals   *counters
	mu       sync.Mutex
	triggers map[string]*counters
}

func newStats() *Stats {
	return &Stats{totals: newCounters(), triggers: map[string]*counters{}}
}

func (s *Stats) add(name string, n int64) { s.totals.add(name, n) }

// merge adds o's counters to s.
func (s *Stats) merge(o *Stats) {
	totals, per := o.Snapshot(false)
	for k, n := range totals {
		s.totals.add(k, n)
	}
	for name, c := range per {
		t := s.trigger(name)
		for k, n := range c {
			t.add(k, n)
		}
	}
}

func (s *Stats) trigger(name string) *counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.triggers[name]
	if c == nil {
		c = newCounters()
		s.triggers[name] = c
	}
	return c
}

// Snapshot returns the totals and the per-trigger counters (only non-zero
// values), and resets them when reset is true.
func (s *Stats) Snapshot(reset bool) (totals map[string]int64, perTrigger map[string]map[string]int64) {
	totals = s.totals.snapshot(reset)
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.triggers))
	cs := make([]*counters, len(names))
	for i, n := range names {
		cs[i] = s.triggers[n]
	}
	s.mu.Unlock()
	perTrigger = map[string]map[string]int64{}
	for i, n := range names {
		if snap := cs[i].snapshot(reset); len(snap) > 0 {
			perTrigger[n] = snap
		}
	}
	return totals, perTrigger
}

// Totals returns the totals and the per-trigger counters (only non-zero
// values) accumulated since the manager was made: Snapshot's reset does
// not affect them. Metrics read these.
func (s *Stats) Totals() (totals map[string]int64, perTrigger map[string]map[string]int64) {
	totals = s.totals.cumulative()
	s.mu.Lock()
	defer s.mu.Unlock()
	perTrigger = map[string]map[string]int64{}
	for n, c := range s.triggers {
		if all := c.cumulative(); len(all) > 0 {
			perTrigger[n] = all
		}
	}
	return totals, perTrigger
}

type counters struct {
	mu sync.Mutex
	m  map[string]*counter
}

// counter is one count since the last reset (cur) and since the start
// (all).
type counter struct{ cur, all atomic.Int64 }

func newCounters() *counters { return &counters{m: map[string]*counter{}} }

func (c *counters) add(name string, n int64) {
	c.mu.Lock()
	v := c.m[name]
	if v == nil {
		v = new(counter)
		c.m[name] = v
	}
	c.mu.Unlock()
	v.cur.Add(n)
	v.all.Add(n)
}

func (c *counters) snapshot(reset bool) map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int64{}
	for k, v := range c.m {
		var n int64
		if reset {
			n = v.cur.Swap(0)
		} else {
			n = v.cur.Load()
		}
		if n != 0 {
			out[k] = n
		}
	}
	return out
}

func (c *counters) cumulative() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int64{}
	for k, v := range c.m {
		if n := v.all.Load(); n != 0 {
			out[k] = n
		}
	}
	return out
}

// LogStats logs the counters since the last call and resets them: the
// totals ("received N notifications, saved M events"), then, for every
// trigger with counters, one line of its counters; a trigger's mismatch
// reasons are kept only at debug_level 2.
func (m *Manager) LogStats(log interface {
	Info(msg string, args ...any)
}) {
	totals, per := m.stats.Snapshot(true)
	if len(totals) > 0 {
		args := make([]any, 0, 2*len(totals))
		for _, k := range slices.Sorted(maps.Keys(totals)) {
			args = append(args, k, totals[k])
		}
		log.Info("trigger manager statistics", args...)
	}
	for _, name := range slices.Sorted(maps.Keys(per)) {
		c := per[name]
		args := []any{"trigger", name}
		for _, k := range slices.Sorted(maps.Keys(c)) {
			args = append(args, k, c[k])
		}
		log.Info("trigger statistics", args...)
	}
}
