package explain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// StreamOf explains stream s with its events (in stream order) under
// definition d (nil: its trigger is not defined now) at time now. It is
// the pure part of Explainer.Stream: the counts are recounted from the
// events with the trigger's own fire-criteria matcher.
func StreamOf(s stream.Stream, events []stream.Event, d *trigger.Definition, now time.Time) Stream {
	out := Stream{Stream: s.JSON("", nil), TriggerDefined: d != nil, Events: len(events), FireCriteria: []FireCriterion{}}
	if !s.ExpireTimestamp.IsZero() {
		out.Expiry = &Deadline{At: stream.FormatTime(s.ExpireTimestamp), Variables: map[string]string{},
			Due: !s.ExpireTimestamp.After(now)}
	}
	if !s.FireTimestamp.IsZero() {
		out.Fire = &Deadline{At: stream.FormatTime(s.FireTimestamp), Expression: "criteria_met_at + fire_delay",
			Variables: map[string]string{}, Due: s.FireTimestamp.Before(now)}
	}
	if d == nil {
		out.Left = left(s, d, nil, now)
		return out
	}
	for i, c := range d.FireCriteria {
		fc := FireCriterion{Index: i, Line: c.Line, Criterion: c.String(), Needs: c.Number}
		for _, ev := range events {
			if c.Match(ev) {
				fc.Has++
			}
		}
		fc.Met = fc.Has >= fc.Needs
		out.FireCriteria = append(out.FireCriteria, fc)
	}
	if out.Expiry != nil && d.Expiration != nil {
		out.Expiry.Expression = d.Expiration.String()
		out.Expiry.Variables["first"] = stream.FormatTime(s.FirstEvent)
		out.Expiry.Variables["last"] = stream.FormatTime(s.LastEvent)
		if slices.Contains(d.Expiration.Vars(), "timestamp") {
			out.Expiry.Variables["timestamp"] = "the time the last event was added (not stored)"
		} else if exp, err := d.Expire(now, s.FirstEvent, s.LastEvent); err == nil && !exp.Equal(s.ExpireTimestamp) {
			out.Notes = append(out.Notes, fmt.Sprintf("the expiration now gives %s: the definition changed since the last event was added", stream.FormatTime(exp)))
		}
	}
	if out.Fire != nil {
		out.Fire.Variables["criteria_met_at"] = stream.FormatTime(s.FireTimestamp.Add(-d.FireDelay))
		out.Fire.Variables["fire_delay"] = d.FireDelay.String()
	}
	if len(s.FireCounts) > 0 && len(s.FireCounts) != len(d.FireCriteria) {
		out.Notes = append(out.Notes, fmt.Sprintf("the stream stored %d fire counts for %d fire criteria: the definition changed since it was created (the next event recounts them)", len(s.FireCounts), len(d.FireCriteria)))
	}
	out.Left = left(s, d, out.FireCriteria, now)
	return out
}

// left says what is left to happen to s.
func left(s stream.Stream, d *trigger.Definition, fcs []FireCriterion, now time.Time) string {
	fire, expire := "", ""
	if d != nil {
		fire, expire = pipelineText("fire", d.FirePipeline), pipelineText("expire", d.ExpirePipeline)
	}
	switch s.State {
	case stream.StateCompleted:
		if s.Outcome() == "fired" {
			return "nothing: it fired and completed"
		}
		return "nothing: it expired and completed"
	case stream.StateFiring, stream.StateExpiring:
		what := "firing"
		if s.State == stream.StateExpiring {
			what = "expiring"
		}
		return fmt.Sprintf("a worker (%s) is %s it, under a lease until %s; if the worker dies, the stream is rescued after the lease", orDash(s.ClaimedBy), what, timeText(s.LeaseUntil))
	case stream.StateError, stream.StateExpireError:
		what := "fire"
		if s.State == stream.StateExpireError {
			what = "expire"
		}
		return fmt.Sprintf("nothing until an operator resets it: its %s pipeline failed (%d attempts, last error: %s); `winchester streams reset %d` or POST /v1/streams/%d/reset retries it",
			what, s.Attempts, orDash(firstLine(s.LastError)), s.ID, s.ID)
	case stream.StateRetryFire, stream.StateRetryExpire:
		a, what, at := stream.Fire, "firing", s.FireTimestamp
		if s.State == stream.StateRetryExpire {
			a, what, at = stream.Expire, "expiring", s.ExpireTimestamp
		}
		if s.ReadyTo(a, now) {
			return fmt.Sprintf("a worker retries %s it (attempt %d): it is due and waits for a worker to claim it", what, s.Attempts+1)
		}
		return fmt.Sprintf("a worker retries %s it (attempt %d) at %s", what, s.Attempts+1, timeText(at))
	case stream.StateActive:
	default:
		return "nothing: state " + s.State.String() + " is not one the engine moves on from"
	}
	if d == nil {
		return fmt.Sprintf("trigger %q is not defined now: when the stream is due, a worker moves it to error", s.Name)
	}
	if !s.FireTimestamp.IsZero() {
		if s.ReadyTo(stream.Fire, now) {
			return fmt.Sprintf("its fire criteria are met and it is due to fire since %s: waiting for a worker to claim it and run %s", timeText(s.FireTimestamp), fire)
		}
		return fmt.Sprintf("its fire criteria are met: it fires at %s (fire_delay %s), then a worker runs %s", timeText(s.FireTimestamp), d.FireDelay, fire)
	}
	if s.ReadyTo(stream.Expire, now) {
		return fmt.Sprintf("it expired at %s without meeting its fire criteria: waiting for a worker to claim it and run %s", timeText(s.ExpireTimestamp), expire)
	}
	var missing []string
	for _, fc := range fcs {
		if !fc.Met {
			missing = append(missing, fmt.Sprintf("%d more %s", fc.Needs-fc.Has, fc.Criterion))
		}
	}
	var b strings.Builder
	if len(missing) == 0 {
		b.WriteString("its events meet the fire criteria of the current definition, which changed since: the next event it takes makes it ready to fire")
	} else {
		b.WriteString("waiting for " + strings.Join(missing, " and "))
	}
	if !s.ExpireTimestamp.IsZero() {
		b.WriteString(", or expiry at " + timeText(s.ExpireTimestamp) + " (then " + expire + ")")
	}
	return b.String()
}

func pipelineText(what, name string) string {
	if name == "" {
		return "no " + what + " pipeline (it completes at once)"
	}
	return what + " pipeline " + name
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return stream.FormatTime(t)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// stateText is the state, with how a completed stream ended.
func stateText(s stream.Stream) string {
	if o := s.Outcome(); o != "" {
		return s.State.String() + ", " + o
	}
	return s.State.String()
}
