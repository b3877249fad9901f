package explain

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/winchester-go/winchester/stream"
)

// WriteText writes the stream's explanation for people, as `winchester
// explain stream` prints it.
func (x Stream) WriteText(w io.Writer) error {
	s := x.Stream
	var b strings.Builder
	fmt.Fprintf(&b, "stream %d of trigger %s\n", s.ID, s.Trigger)
	state := s.State
	if s.Outcome != "" {
		state += " (" + s.Outcome + ")"
	}
	fmt.Fprintf(&b, "  state:            %s (serial %d), attempts %d\n", state, s.StateSerialNo, s.Attempts)
	if s.LastError != "" {
		fmt.Fprintf(&b, "  last error:       %s\n", s.LastError)
	}
	fmt.Fprintf(&b, "  distinguished by: %s\n", distText(s.DistinguishedBy))
	fmt.Fprintf(&b, "  events:           %d, from %s to %s\n", x.Events, s.FirstEvent, s.LastEvent)
	if !x.TriggerDefined {
		fmt.Fprintf(&b, "  trigger %s is not defined now\n", s.Trigger)
	}
	if len(x.FireCriteria) > 0 {
		b.WriteString("  fire criteria:\n")
		for _, fc := range x.FireCriteria {
			mark := "waiting"
			if fc.Met {
				mark = "met"
			}
			fmt.Fprintf(&b, "    [%d] %s: has %d of %d (%s)\n", fc.Index, fc.Criterion, fc.Has, fc.Needs, mark)
		}
	} else if x.TriggerDefined {
		b.WriteString("  fire criteria:    none (always met)\n")
	}
	if x.Fire != nil {
		fmt.Fprintf(&b, "  fires:            %s = %s%s\n", x.Fire.At, x.Fire.Expression, varsText(x.Fire.Variables))
	}
	if x.Expiry != nil {
		fmt.Fprintf(&b, "  expires:          %s = %s%s\n", x.Expiry.At, orDash(x.Expiry.Expression), varsText(x.Expiry.Variables))
	}
	fmt.Fprintf(&b, "  left:             %s\n", x.Left)
	for _, n := range x.Notes {
		fmt.Fprintf(&b, "  note:             %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText writes the event's explanation for people, as `winchester
// explain event` prints it.
func (x Event) WriteText(w io.Writer) error {
	var b strings.Builder
	ev := x.Event
	fmt.Fprintf(&b, "event %s: %s at %s\n", ev.MessageID, ev.Type, stream.FormatTime(ev.Timestamp))
	if x.Distilled {
		b.WriteString("  distilled from the notification given\n")
	}
	if x.Stored {
		b.WriteString("  stored (an event with this message_id is in the database; sending it again is a duplicate, ignored)\n")
	} else {
		b.WriteString("  not stored\n")
	}
	fmt.Fprintf(&b, "  matched %d of %d triggers\n", x.Matched, len(x.Triggers))
	for _, t := range x.Triggers {
		if t.Matched {
			fmt.Fprintf(&b, "  %s: matched by match criteria %d", t.Trigger, *t.CriteriaIndex)
			if t.CriteriaLine > 0 {
				fmt.Fprintf(&b, " (line %d)", t.CriteriaLine)
			}
			fmt.Fprintf(&b, "\n    distinguished by: %s\n", distText(t.DistinguishedBy))
			if len(t.CountsFor) > 0 {
				fmt.Fprintf(&b, "    counts for fire criteria: %s\n", intsText(t.CountsFor))
			}
			if t.Stream != nil {
				fmt.Fprintf(&b, "    stream: %s\n", t.Stream.Text)
			}
			continue
		}
		fmt.Fprintf(&b, "  %s: no: %s\n", t.Trigger, t.Reason)
		if len(t.Mismatches) > 1 {
			for _, m := range t.Mismatches {
				fmt.Fprintf(&b, "    %s\n", m.Detail)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func distText(d map[string]stream.Value) string {
	if len(d) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(d))
	for _, k := range slices.Sorted(maps.Keys(d)) {
		parts = append(parts, k+"="+d[k].String())
	}
	return strings.Join(parts, " ")
}

func varsText(vars map[string]string) string {
	if len(vars) == 0 {
		return ""
	}
	parts := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		parts = append(parts, "$"+k+" = "+vars[k])
	}
	return " with " + strings.Join(parts, ", ")
}

func intsText(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ", ")
}
