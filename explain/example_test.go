package explain_test

import (
	"fmt"
	"time"

	"github.com/winchester-go/winchester/explain"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// MatchOf says whether a trigger takes an event and, when it does not,
// the first condition that failed with the value the event had.
func ExampleMatchOf() {
	defs, _, err := trigger.Parse("triggers.yaml", []byte(`
- name: big_active
  distinguished_by: [instance_id]
  expiration: $last + 1d
  fire_pipeline: p
  match_criteria:
  - event_type: compute.instance.*
    traits:
      state: active
      memory_mb: {int: "> 1024"}
  fire_criteria:
  - event_type: compute.instance.exists
`))
	if err != nil {
		panic(err)
	}
	at := time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)
	for _, memory := range []int64{512, 4096} {
		ev := stream.Event{MessageID: "m", Type: "compute.instance.exists", Timestamp: at, Traits: map[string]stream.Value{
			"instance_id": stream.String("i-1"), "state": stream.String("active"), "memory_mb": stream.Int(memory)}}
		tm := explain.MatchOf(defs[0], ev)
		if tm.Matched {
			fmt.Printf("matched by criteria %d, distinguished by %v\n", *tm.CriteriaIndex, tm.DistinguishedBy["instance_id"])
		} else {
			fmt.Println("no:", tm.Reason)
		}
	}
	// Output:
	// no: criteria 0: trait criterion memory_mb > 1024 (int) failed: the event has 512 (int)
	// matched by criteria 0, distinguished by i-1
}
