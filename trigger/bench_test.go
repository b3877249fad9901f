package trigger

import (
	"fmt"
	"strings"
	"testing"

	"github.com/winchester-go/winchester/stream"
)

// benchTriggers returns n triggers, each for its own service's events,
// with distinguishing traits and trait criteria like real ones.
func benchTriggers(b *testing.B, n int) *Set {
	b.Helper()
	var src strings.Builder
	for i := range n {
		fmt.Fprintf(&src, `- name: trigger_%d
  distinguished_by: [instance_id, {timestamp: day}]
  expiration: $last + 1h
  fire_pipeline: p
  match_criteria:
  - event_type: [service%d.instance.*, "!service%d.instance.exists"]
    traits: {memory_mb: {int: "> 1024"}, state: active}
  - event_type: service%d.instance.exists
    map_distinguished_by: {timestamp: audit_period_beginning}
  fire_criteria:
  - event_type: service%d.instance.exists
`, i, i, i, i, i)
	}
	defs := mustParse(b, src.String())
	s, err := NewSet(defs)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// matchAll runs one event through the candidates of a set, as the trigger
// manager does.
func matchAll(s *Set, ev stream.Event) int {
	matched := 0
	for _, d := range s.Candidates(ev.Type) {
		if i, ok := d.Match(ev); ok {
			if _, ok := d.Distinguish(ev, i); ok {
				matched++
			}
		}
	}
	return matched
}

func BenchmarkMatch(b *testing.B) {
	ev := testEvent(b, "service0.instance.update", "2014-08-01T10:20:30", map[string]any{
		"instance_id": "i-1", "memory_mb": 4096, "state": "active", "tenant_id": "t-1",
	})
	for _, n := range []int{1, 100} {
		s := benchTriggers(b, n)
		b.Run(fmt.Sprintf("triggers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if matchAll(s, ev) != 1 {
					b.Fatal("no match")
				}
			}
		})
		b.Run(fmt.Sprintf("triggers=%d/no_candidates_filter", n), func(b *testing.B) {
			defs := s.Definitions()
			b.ReportAllocs()
			for b.Loop() {
				matched := 0
				for _, d := range defs {
					if i, ok := d.Match(ev); ok {
						if _, ok := d.Distinguish(ev, i); ok {
							matched++
						}
					}
				}
				if matched != 1 {
					b.Fatal("no match")
				}
			}
		})
	}
}

func BenchmarkFireCounts(b *testing.B) {
	d := benchTriggers(b, 1).Definitions()[0]
	ev := testEvent(b, "service0.instance.exists", "2014-08-01T10:20:30", nil)
	counts := make([]int, len(d.FireCriteria))
	b.ReportAllocs()
	for b.Loop() {
		counts[0] = 0
		counts = d.FireCounts(ev, counts)
		if !d.Satisfied(counts) {
			b.Fatal("not satisfied")
		}
	}
}
