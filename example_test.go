package winchester_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// audit is a custom handler. HandleEvents only looks at the stream's events
// and remembers what to send; Commit, called once every handler of the
// chain succeeded, performs the side effect (here: printing).
type audit struct {
	prefix string
	line   string
}

func (a *audit) HandleEvents(_ context.Context, events []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.Type
	}
	order := events[0].Traits["order_id"].Text()
	a.line = fmt.Sprintf("%s %s order %s: %s", a.prefix, env.StreamName, order, strings.Join(types, ", "))
	return events, nil
}

func (a *audit) Commit(context.Context) error {
	fmt.Println(a.line)
	return nil
}

func (a *audit) Rollback(context.Context) error { return nil }

// newAudit is the handler's factory: it decodes and checks the params of a
// pipelines.yaml entry once, when the pipelines are loaded, and returns
// the builder of a fresh handler per run.
func newAudit(p pipeline.Params) (pipeline.Builder, error) {
	var params struct {
		Prefix string `yaml:"prefix"`
	}
	if err := p.Decode(&params); err != nil {
		return nil, err
	}
	return func() (pipeline.Handler, error) { return &audit{prefix: params.Prefix}, nil }, nil
}

// A program of its own registers a handler, loads a winchester.yaml, puts
// events into streams and runs a worker pass that fires them.
func Example() {
	dir, err := os.MkdirTemp("", "winchester-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		"winchester.yaml": "database:\n  url: sqlite:///example.db\n" +
			"trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n",
		"triggers.yaml": `
- name: order_trigger
  distinguished_by: [order_id]
  expiration: "$last + 1d"
  fire_pipeline: shipped
  match_criteria: [{event_type: "order.*"}]
  fire_criteria: [{event_type: order.shipped}]
`,
		"pipelines.yaml": "shipped:\n  - name: audit\n    params: {prefix: 'audit:'}\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			fmt.Println(err)
			return
		}
	}

	ctx := context.Background()
	cfg, err := winchester.Load(filepath.Join(dir, "winchester.yaml"))
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := winchester.NewRegistry()
	reg.RegisterHandler("audit", newAudit)
	eng, err := winchester.Open(ctx, cfg, winchester.Options{Registry: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Close()

	t0 := time.Now().UTC().Add(-time.Hour)
	event := func(id, typ string, at time.Duration) stream.Event {
		return stream.Event{MessageID: id, Type: typ, Timestamp: t0.Add(at),
			Traits: map[string]stream.Value{"order_id": stream.String("o-1")}}
	}
	if _, err := eng.Manager.AddEvents(ctx, []stream.Event{
		event("m1", "order.placed", 0),
		event("m2", "order.paid", time.Minute),
		event("m3", "order.shipped", time.Hour),
	}); err != nil {
		fmt.Println(err)
		return
	}
	w, err := eng.NewWorker(eng.WorkerConfig("example"))
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := w.Pass(ctx, ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("fired:", res.Stats.Fired)
	// Output:
	// audit: order_trigger order o-1: order.placed, order.paid, order.shipped
	// fired: 1
}
