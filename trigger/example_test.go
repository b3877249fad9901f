package trigger_test

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

func Example() {
	const triggersYAML = `
- name: instance_day
  distinguished_by: [instance_id, {timestamp: day}]
  expiration: $last + 1h
  fire_pipeline: usage
  match_criteria:
  - event_type: [compute.instance.*, "!compute.instance.exists"]
  - event_type: compute.instance.exists
    map_distinguished_by: {timestamp: audit_period_beginning}
  fire_criteria:
  - event_type: compute.instance.exists
`
	defs, warnings, err := trigger.Parse("triggers.yaml", []byte(triggersYAML))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range warnings {
		fmt.Println("warning:", w)
	}
	set, err := trigger.NewSet(defs)
	if err != nil {
		fmt.Println(err)
		return
	}

	ev, _, err := stream.NewEvent(map[string]any{
		"message_id":             "b5c4a7e0",
		"event_type":             "compute.instance.exists",
		"timestamp":              "2014-08-02T00:05:00",
		"instance_id":            "i-1",
		"audit_period_beginning": map[string]any{"$datetime": "2014-08-01T00:00:00"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range set.Candidates(ev.Type) {
		i, ok := d.Match(ev)
		if !ok {
			continue
		}
		dist, ok := d.Distinguish(ev, i)
		if !ok {
			continue
		}
		fmt.Printf("%s matched by criteria %d\n", d.Name, i)
		for _, k := range slices.Sorted(maps.Keys(dist)) {
			fmt.Printf("  %s = %v\n", k, dist[k])
		}
		counts := d.FireCounts(ev, nil)
		fmt.Println("  ready to fire:", d.Satisfied(counts))
		expire, _ := d.Expire(time.Date(2014, 8, 2, 0, 6, 0, 0, time.UTC), ev.Timestamp, ev.Timestamp)
		fmt.Println("  expires:", stream.FormatTime(expire))
	}
	// Output:
	// instance_day matched by criteria 1
	//   instance_id = i-1
	//   timestamp = [2014-08-01T00:00:00, 2014-08-02T00:00:00)
	//   ready to fire: true
	//   expires: 2014-08-02T01:05:00
}
