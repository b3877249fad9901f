package pipeline_test

import (
	"context"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/pipeline/handlers"
	"github.com/winchester-go/winchester/stream"
)

// stamp is a user handler: it adds a trait to every event. It has no side
// effects, so Commit and Rollback do nothing.
type stamp struct{ trait, value string }

func (s *stamp) HandleEvents(_ context.Context, events []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	out := make([]stream.Event, len(events))
	for i, e := range events {
		e = e.Clone()
		e.Traits[s.trait] = stream.String(s.value)
		out[i] = e
	}
	return out, nil
}

func (s *stamp) Commit(context.Context) error   { return nil }
func (s *stamp) Rollback(context.Context) error { return nil }

// newStamp is the stamp handler's factory: it decodes and validates the
// params once, when the pipelines are loaded.
func newStamp(p pipeline.Params) (pipeline.Builder, error) {
	var cfg struct {
		Trait string `yaml:"trait"`
		Value string `yaml:"value"`
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Trait == "" {
		return nil, p.Errorf("trait", "required")
	}
	return func() (pipeline.Handler, error) { return &stamp{trait: cfg.Trait, value: cfg.Value}, nil }, nil
}

func ExampleRegistry_Register() {
	reg := pipeline.NewRegistry()
	defer reg.Close()
	handlers.RegisterBuiltins(reg) // logger, usage, notabene, atompub
	reg.Register("stamp", newStamp)

	defs, err := pipeline.Parse("pipelines.yaml", []byte(`
billing:
  - name: stamp
    params: {trait: billed_by, value: winchester}
  - logger
`), reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := defs.Pipeline("billing")
	events := []stream.Event{{MessageID: "m1", Type: "compute.instance.exists", Timestamp: time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)}}
	res, err := p.Run(context.Background(), events, pipeline.NewEnv(1, "billing_trigger", nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Events[0].Traits["billed_by"], len(res.NewEvents))

	_, err = pipeline.Parse("pipelines.yaml", []byte("billing:\n  - name: stamp\n    params: {value: x}\n"), reg)
	fmt.Println(err)
	// Output:
	// winchester 0
	// pipelines.yaml:2: pipeline "billing": handler "stamp": param "trait": required
}
