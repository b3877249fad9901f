package console

import (
	"cmp"
	"slices"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/stream"
)

// Bounds of the overview's queries, so that it stays cheap however many
// streams there are.
const (
	// ExactCountBelow: a state the database estimates at this many streams
	// or more shows the estimate (marked ≈) instead of an exact count
	// (db.StateCounter).
	ExactCountBelow = 100000
	// BacklogCap bounds the ready backlog counted per action.
	BacklogCap = 1000
	// RecentErrors is how many streams in error the overview lists.
	RecentErrors = 10
)

type stateCount struct {
	State     string
	Count     int64
	Estimated bool
}

type backlog struct {
	Action string
	Count  int
	Capped bool
}

type triggerOutcomes struct {
	Trigger                            string
	Fired, Expired, Errored, LostClaim int64
	Hours                              []metrics.HourCounts
	Max                                int64 // the largest hour, for the bars
}

type overviewData struct {
	States    []stateCount
	Total     int64
	Estimated bool
	Backlog   []backlog
	Lag       []metrics.Lag
	Metrics   bool
	Outcomes  []triggerOutcomes
	Errors    []stream.Stream
}

func (c *Console) overview(rq *request) {
	ctx := rq.r.Context()
	var d overviewData
	counts, estimated, err := c.stateCounts(rq)
	if err != nil {
		c.failed(rq, "count streams by state", err)
		return
	}
	for _, st := range stream.States() {
		sc := stateCount{State: st.String(), Count: counts[st], Estimated: slices.Contains(estimated, st)}
		d.States = append(d.States, sc)
		d.Total += sc.Count
		d.Estimated = d.Estimated || sc.Estimated
	}
	now := stream.NormalizeTime(c.clock.Now())
	for _, a := range []db.Action{db.Fire, db.Expire} {
		ready, err := c.reads.ReadyStreams(ctx, db.ReadyParams{Action: a, Now: now, Limit: BacklogCap})
		if err != nil {
			c.failed(rq, "read the ready backlog", err)
			return
		}
		d.Backlog = append(d.Backlog, backlog{Action: a.String(), Count: len(ready), Capped: len(ready) == BacklogCap})
	}
	for _, st := range []stream.State{stream.StateError, stream.StateExpireError} {
		if counts[st] == 0 {
			continue
		}
		found, err := c.reads.FindStreams(ctx, db.FindStreamsParams{State: st, Limit: RecentErrors})
		if err != nil {
			c.failed(rq, "list streams in error", err)
			return
		}
		for _, f := range found {
			d.Errors = append(d.Errors, f.Stream)
		}
	}
	slices.SortFunc(d.Errors, func(a, b stream.Stream) int { return cmp.Compare(b.ID, a.ID) })
	d.Errors = d.Errors[:min(len(d.Errors), RecentErrors)]

	if m := c.opts.Metrics; m != nil {
		d.Metrics = true
		d.Lag = m.FireLag()
		d.Outcomes = outcomes(m)
	}
	c.render(rq, 200, "overview", "Overview", d, "")
}

// stateCounts counts streams by state, cheaply when the store can.
func (c *Console) stateCounts(rq *request) (map[stream.State]int64, []stream.State, error) {
	if sc, ok := c.reads.(db.StateCounter); ok {
		return sc.CountStreamsByState(rq.r.Context(), ExactCountBelow)
	}
	counts := map[stream.State]int64{}
	for _, st := range stream.States() {
		n, err := c.reads.CountStreams(rq.r.Context(), db.FindStreamsParams{State: st})
		if err != nil {
			return nil, nil, err
		}
		counts[st] = n
	}
	return counts, nil, nil
}

// outcomes sums the workers' outcomes per trigger.
func outcomes(m *metrics.Metrics) []triggerOutcomes {
	by := map[string]*triggerOutcomes{}
	get := func(name string) *triggerOutcomes {
		t := by[name]
		if t == nil {
			t = &triggerOutcomes{Trigger: name}
			by[name] = t
		}
		return t
	}
	for _, p := range m.Processed() {
		t := get(p.Trigger)
		switch {
		case p.Result == "lost_claim":
			t.LostClaim += p.Count
		case p.Result != "ok":
			t.Errored += p.Count
		case p.Action == "expire":
			t.Expired += p.Count
		default:
			t.Fired += p.Count
		}
	}
	for name, hours := range m.ProcessedByHour() {
		t := get(name)
		t.Hours = hours
		for _, h := range hours {
			t.Max = max(t.Max, h.Fired+h.Expired+h.Errored)
		}
	}
	out := make([]triggerOutcomes, 0, len(by))
	for _, t := range by {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b triggerOutcomes) int { return cmp.Compare(a.Trigger, b.Trigger) })
	return out
}
