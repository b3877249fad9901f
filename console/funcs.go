package console

import (
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/winchester-go/winchester/stream"
)

// funcs are the template functions.
var funcs = template.FuncMap{
	"time":       formatAnyTime,
	"since":      since,
	"duration":   formatDuration,
	"seconds":    seconds,
	"traits":     sortedTraits,
	"first":      firstLine,
	"pct":        pct,
	"resetable":  resetable,
	"stateclass": func(s fmt.Stringer) string { return "state-" + s.String() },
	"hour":       func(t time.Time) string { return t.UTC().Format("15:04") },
	"minus":      func(a, b int) int { return a - b },
}

// formatAnyTime is formatTime for a time.Time or a *time.Time (nil: none).
func formatAnyTime(v any) string {
	switch t := v.(type) {
	case time.Time:
		return formatTime(t)
	case *time.Time:
		if t != nil {
			return formatTime(*t)
		}
	}
	return "—"
}

// formatTime writes a time in the API's form, or "—" for none.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return stream.FormatTime(t)
}

func since(from, to time.Time) string {
	if from.IsZero() || to.IsZero() {
		return ""
	}
	d := to.Sub(from)
	if d < 0 {
		return "in " + formatDuration(-d)
	}
	return formatDuration(d) + " ago"
}

// formatDuration rounds to a readable precision.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Second:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

func seconds(s float64) string {
	if s > 1e300 {
		return "> 1 h"
	}
	return formatDuration(time.Duration(s * float64(time.Second)))
}

type trait struct {
	Name  string
	Kind  string
	Value string
}

func sortedTraits(m map[string]stream.Value) []trait {
	out := make([]trait, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, trait{Name: k, Kind: m[k].Kind().String(), Value: m[k].String()})
	}
	return out
}

func firstLine(s string) string {
	line, _, more := strings.Cut(s, "\n")
	if more {
		line += " …"
	}
	return line
}

// pct is n of total as a percentage for bar heights (0-100).
func pct(n, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return float64(n) / float64(total) * 100
}
