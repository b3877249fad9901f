package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// record is a handler that remembers the events it saw and whether it
// committed.
type record struct {
	seen      *[]string
	committed *bool
}

func (r record) HandleEvents(_ context.Context, evs []stream.Event, _ *pipeline.Env) ([]stream.Event, error) {
	for _, e := range evs {
		*r.seen = append(*r.seen, e.MessageID)
	}
	return evs, nil
}
func (r record) Commit(context.Context) error   { *r.committed = true; return nil }
func (r record) Rollback(context.Context) error { return nil }

func TestFilterAndHaltInAPipeline(t *testing.T) {
	t.Parallel()
	events := []stream.Event{
		event(t, map[string]any{"message_id": "m1", "event_type": "compute.instance.create.start", "state": "building"}),
		event(t, map[string]any{"message_id": "m2", "event_type": "compute.instance.exists", "memory_mb": 512}),
		event(t, map[string]any{"message_id": "m3", "event_type": "compute.instance.exists", "memory_mb": 4096}),
		event(t, map[string]any{"message_id": "m4", "event_type": "compute.instance.delete.end"}),
	}
	tests := []struct {
		name      string
		pipeline  string
		wantSeen  []string
		wantFinal []string
		wantHalt  bool
		committed bool
	}{
		{
			name: "filter drops and keeps by criteria",
			pipeline: `p:
  - name: filter
    params:
      keep: {event_type: "compute.instance.*"}
      drop:
        - event_type: "*.start"
        - traits: {memory_mb: {int: "> 1024"}}
  - record
`,
			wantSeen: []string{"m2", "m4"}, wantFinal: []string{"m2", "m4"}, committed: true,
		},
		{
			name: "halt on a match stops the chain and completes",
			pipeline: `p:
  - name: halt
    params: {match: {event_type: compute.instance.delete.end}}
  - record
`,
			wantFinal: []string{"m1", "m2", "m3", "m4"}, wantHalt: true,
		},
		{
			name: "halt without a match lets the chain go on",
			pipeline: `p:
  - name: halt
    params: {match: {traits: {state: deleted}}}
  - record
`,
			wantSeen: []string{"m1", "m2", "m3", "m4"}, wantFinal: []string{"m1", "m2", "m3", "m4"}, committed: true,
		},
		{
			name: "halt unless an event matches",
			pipeline: `p:
  - name: halt
    params: {unless: [{event_type: "image.*"}]}
  - record
`,
			wantFinal: []string{"m1", "m2", "m3", "m4"}, wantHalt: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen []string
			committed := false
			reg := pipeline.NewRegistry()
			RegisterBuiltins(reg)
			t.Cleanup(func() { _ = reg.Close() })
			reg.Register("record", func(pipeline.Params) (pipeline.Builder, error) {
				return func() (pipeline.Handler, error) { return record{&seen, &committed}, nil }, nil
			})
			defs, err := pipeline.Parse("pipelines.yaml", []byte(tc.pipeline), reg)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			p, _ := defs.Pipeline("p")
			res, err := p.Run(t.Context(), events, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			var final []string
			for _, e := range res.Events {
				final = append(final, e.MessageID)
			}
			if d := cmp.Diff(tc.wantFinal, final, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("final events (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantSeen, seen, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("events seen after the filter (-want +got):\n%s", d)
			}
			if (res.HaltedBy == "halt") != tc.wantHalt || committed != tc.committed {
				t.Errorf("halted by %q, later handler committed %v; want halt %v, committed %v", res.HaltedBy, committed, tc.wantHalt, tc.committed)
			}
		})
	}
}

func TestFilterAndHaltConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{name: "filter without criteria", src: "p:\n  - name: filter\n", line: 2, msg: "needs drop or keep"},
		{name: "bad criterion", src: "p:\n  - name: filter\n    params:\n      drop:\n        - traits: {memory_mb: {int: \"about 3\"}}\n", line: 5,
			field: "drop[0].traits.memory_mb", msg: "invalid numeric criterion"},
		{name: "unknown criteria key", src: "p:\n  - name: halt\n    params:\n      match: {event_typ: x}\n", line: 4,
			field: "match.event_typ", msg: "unknown key"},
		{name: "trigger-only key", src: "p:\n  - name: halt\n    params:\n      match: {event_type: x, number: 2}\n", line: 4,
			field: "match.number", msg: "only event_type, timestamp and traits"},
		{name: "halt with both", src: "p:\n  - name: halt\n    params: {match: {event_type: a}, unless: {event_type: b}}\n", line: 3,
			field: "unless", msg: "not both"},
		{name: "halt with neither", src: "p:\n  - halt\n", line: 2, msg: "needs match or unless"},
		{name: "empty list", src: "p:\n  - name: filter\n    params: {keep: []}\n", line: 3, field: "keep", msg: "empty criteria list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := pipeline.NewRegistry()
			RegisterBuiltins(reg)
			t.Cleanup(func() { _ = reg.Close() })
			_, err := pipeline.Parse("pipelines.yaml", []byte(tc.src), reg)
			var ce *pipeline.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, want a ConfigError", err)
			}
			if ce.File != "pipelines.yaml" || ce.Line != tc.line || ce.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Parse = %q (line %d field %q), want line %d field %q containing %q", err, ce.Line, ce.Field, tc.line, tc.field, tc.msg)
			}
		})
	}
}
