package workload_test

import (
	"fmt"

	"github.com/winchester-go/winchester/internal/workload"
)

func ExampleGenerate() {
	counts := map[string]int{}
	err := workload.Generate(workload.Config{Instances: 100, Days: 3, Seed: 1}, func(n workload.Notification) error {
		counts[n.EventType]++
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("exists:", counts["compute.instance.exists"])
	fmt.Println("created:", counts["compute.instance.create.end"])
	fmt.Println("deleted:", counts["compute.instance.delete.end"])
	// Output:
	// exists: 225
	// created: 62
	// deleted: 20
}
