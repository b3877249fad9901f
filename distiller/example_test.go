package distiller_test

import (
	"errors"
	"fmt"

	"github.com/winchester-go/winchester/distiller"
)

func Example() {
	defs, err := distiller.ParseDefinitions("event_definitions.yaml", []byte(`
- event_type: compute.instance.*
  traits:
    instance_id:
      fields: payload.instance_id
    memory_mb:
      type: int
      fields: payload.memory_mb
    host:
      fields: publisher_id
      plugin: {name: split, parameters: {segment: 1, max_split: 1}}
`), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	d := distiller.New(defs, distiller.Config{})

	ev, _, err := d.Distill([]byte(`{
	  "message_id": "f0a1b2c3-0002",
	  "event_type": "compute.instance.create.end",
	  "timestamp": "2014-08-11 21:32:10.018275",
	  "publisher_id": "compute.compute-01.example.com",
	  "payload": {"instance_id": "a8e2f3c1", "memory_mb": 2048, "tenant_id": "7d2a"}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := ev.MarshalJSON()
	fmt.Println(string(out))

	_, _, err = d.Distill([]byte(`{"message_id": "m-2", "event_type": "image.upload"}`))
	var drop *distiller.DropError
	if errors.As(err, &drop) {
		fmt.Println(drop.Reason)
	}
	// Output:
	// {"message_id":"f0a1b2c3-0002","event_type":"compute.instance.create.end","timestamp":"2014-08-11T21:32:10.018275","host":"compute-01.example.com","instance_id":"a8e2f3c1","memory_mb":2048,"service":"compute.compute-01.example.com","tenant_id":"7d2a"}
	// no_definition
}

func ExamplePluginRegistry_Register() {
	plugins := distiller.NewPluginRegistry()
	// count: how many non-null values the trait's paths matched.
	plugins.Register("count", func(params map[string]any) (distiller.Plugin, error) {
		return func(matches []distiller.Match) any { return len(matches) }, nil
	})
	defs, err := distiller.ParseDefinitions("event_definitions.yaml", []byte(`
- event_type: port.*
  traits:
    ips:
      type: int
      fields: payload.port.fixed_ips[*].ip_address
      plugin: count
`), plugins)
	if err != nil {
		fmt.Println(err)
		return
	}
	ev, _, err := distiller.New(defs, distiller.Config{}).Distill([]byte(`{
	  "message_id": "m-1", "event_type": "port.create.end", "timestamp": "2014-08-11T21:45:03",
	  "payload": {"port": {"fixed_ips": [{"ip_address": "10.0.0.5"}, {"ip_address": "fd00::5"}]}}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Traits["ips"])
	// Output:
	// 2
}
