package console

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/job"
	"github.com/winchester-go/winchester/trigger"
)

// mismatchPrefix starts the manager's counters of debug_level 2 reasons.
const mismatchPrefix = "mismatch: "

type counter struct {
	Name  string
	Count int64
}

type triggerView struct {
	Def         *trigger.Definition
	Distinguish []string
	Match, Fire []string
	Counters    []counter
	Mismatches  []counter
	FireDelay   string
	Expiration  string
}

type panelView struct {
	Title   string
	Header  []string
	Rows    [][]string
	Problem string
}

type triggersData struct {
	Triggers []triggerView
	Jobs     []job.Status
	JobStore bool
	Panels   []panelView
}

func (c *Console) triggers(rq *request) {
	_, per := c.mgr.Stats().Totals()
	var d triggersData
	for _, def := range c.mgr.Definitions() {
		v := triggerView{Def: def, FireDelay: def.FireDelay.String()}
		if def.Expiration != nil {
			v.Expiration = def.Expiration.String()
		}
		for _, dist := range def.DistinguishedBy {
			s := dist.Trait
			if dist.Expr != nil {
				s += " (" + dist.Expr.String() + ")"
			}
			v.Distinguish = append(v.Distinguish, s)
		}
		for _, cr := range def.MatchCriteria {
			v.Match = append(v.Match, describe(cr, false))
		}
		for _, cr := range def.FireCriteria {
			v.Fire = append(v.Fire, describe(cr, true))
		}
		counts := per[def.Name]
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			if reason, ok := strings.CutPrefix(k, mismatchPrefix); ok {
				v.Mismatches = append(v.Mismatches, counter{Name: reason, Count: counts[k]})
				continue
			}
			v.Counters = append(v.Counters, counter{Name: k, Count: counts[k]})
		}
		slices.SortStableFunc(v.Mismatches, func(a, b counter) int { return cmp.Compare(b.Count, a.Count) })
		d.Triggers = append(d.Triggers, v)
	}
	jobs, ok, err := c.jobs(rq)
	if err != nil {
		c.failed(rq, "read the jobs", err)
		return
	}
	d.Jobs, d.JobStore = jobs, ok
	for _, p := range c.opts.Panels {
		pv := panelView{Title: p.Title}
		header, rows, err := p.LoadFunc(rq.r.Context())
		if err != nil {
			pv.Problem = err.Error()
		}
		pv.Header, pv.Rows = header, rows
		d.Panels = append(d.Panels, pv)
	}
	c.render(rq, 200, "triggers", "Triggers", d, "")
}

// describe writes a criteria entry on one line (Criteria.String); fire
// criteria start with the number of events they need, match criteria end
// with their map_distinguished_by.
func describe(cr *trigger.Criteria, fire bool) string {
	text := cr.String()
	if fire {
		text = strconv.Itoa(cr.Number) + " × " + text
	}
	for _, k := range slices.Sorted(maps.Keys(cr.MapDistinguishedBy)) {
		text += ", " + k + " from " + cr.MapDistinguishedBy[k]
	}
	return text
}

// jobs joins the configured jobs with their stored progress, as
// winchester jobs list does; ok is false when the store keeps no job
// state.
func (c *Console) jobs(rq *request) ([]job.Status, bool, error) {
	byName := map[string]db.JobState{}
	js, ok := c.reads.(db.JobStore)
	if ok {
		states, err := js.JobStates(rq.r.Context())
		if err != nil {
			return nil, true, err
		}
		for _, st := range states {
			byName[st.Name] = st
		}
	}
	now := c.clock.Now()
	var out []job.Status
	for _, j := range c.opts.Jobs {
		v := job.Status{Name: j.Name, Schedule: j.Schedule, Handler: j.Handler, Enabled: !j.Disabled, Configured: true, State: "new"}
		if st, stored := byName[j.Name]; stored {
			sched, _ := job.ParseSchedule(j.Schedule) // zero when unknown: no next window
			v.SetState(st, sched, now)
		}
		if j.Disabled {
			v.State = "disabled"
		}
		out = append(out, v)
	}
	return out, ok, nil
}
