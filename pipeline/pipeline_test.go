package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// calls records the calls of fake handlers as "label:op".
type calls struct {
	mu  sync.Mutex
	ops []string
}

func (c *calls) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops = append(c.ops, s)
}

func (c *calls) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ops...)
}

var (
	errHandle   = errors.New("handle failed")
	errCommit   = errors.New("commit failed")
	errRollback = errors.New("rollback failed")
	errBuild    = errors.New("build failed")
)

type fakeParams struct {
	Label string `yaml:"label"`
	// Mode: "" (pass), fail, halt, commit_fail, rollback_fail, build_fail,
	// emit, cancel, drop_all, hang (until ctx ends), commit_hang.
	Mode string `yaml:"mode"`
}

// fake is a handler whose behaviour is set by its params.
type fake struct {
	fakeParams
	c      *calls
	cancel context.CancelFunc
}

func (f *fake) HandleEvents(ctx context.Context, events []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	f.c.add(fmt.Sprintf("%s:handle(%d)", f.Label, len(events)))
	switch f.Mode {
	case "fail":
		return nil, errHandle
	case "halt":
		return events[:1], fmt.Errorf("enough: %w", pipeline.ErrHalt)
	case "emit":
		e := stream.Event{MessageID: "new-" + f.Label, Type: "test.new", Timestamp: time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)}
		return append(events[:len(events):len(events)], e), nil
	case "cancel":
		f.cancel()
	case "hang":
		<-ctx.Done()
		return nil, ctx.Err()
	case "drop_all":
		events[0].MessageID = "mutated" // must not reach the caller's slice
		return nil, nil
	case "env":
		env.Set("seen", f.Label)
	case "env_read":
		v, _ := env.Get("seen")
		id, _ := env.Get("stream_id")
		f.c.add(fmt.Sprintf("%s:env(%v,%v)", f.Label, v, id))
	}
	return events, nil
}

func (f *fake) Commit(ctx context.Context) error {
	f.c.add(f.Label + ":commit")
	switch f.Mode {
	case "commit_fail":
		return errCommit
	case "commit_hang":
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fake) Rollback(ctx context.Context) error {
	if ctx.Err() != nil {
		f.c.add(f.Label + ":rollback(cancelled ctx)")
	} else {
		f.c.add(f.Label + ":rollback")
	}
	if f.Mode == "rollback_fail" {
		return errRollback
	}
	return nil
}

// testBundle is a registry with the fake handler and its call log.
type testBundle struct {
	reg    *pipeline.Registry
	calls  *calls
	cancel context.CancelFunc
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{reg: pipeline.NewRegistry(), calls: &calls{}}
	t.Cleanup(func() { _ = b.reg.Close() })
	b.reg.Register("fake", func(p pipeline.Params) (pipeline.Builder, error) {
		var cfg fakeParams
		if err := p.Decode(&cfg); err != nil {
			return nil, err
		}
		return func() (pipeline.Handler, error) {
			if cfg.Mode == "build_fail" {
				return nil, errBuild
			}
			return &fake{fakeParams: cfg, c: b.calls, cancel: func() { b.cancel() }}, nil
		}, nil
	})
	return b
}

// pipelineOf parses a pipeline of fake handlers given as "label" or
// "label/mode".
func (b *testBundle) pipelineOf(t *testing.T, specs ...string) *pipeline.Pipeline {
	t.Helper()
	var y strings.Builder
	y.WriteString("p:\n")
	for _, s := range specs {
		label, mode, _ := strings.Cut(s, "/")
		fmt.Fprintf(&y, "  - name: fake\n    params: {label: %s, mode: %q}\n", label, mode)
	}
	if len(specs) == 0 {
		y.WriteString("  []\n")
	}
	defs, err := pipeline.Parse("pipelines.yaml", []byte(y.String()), b.reg)
	if err != nil {
		t.Fatalf("Parse:\n%s\n%v", y.String(), err)
	}
	p, ok := defs.Pipeline("p")
	if !ok {
		t.Fatal("pipeline p missing")
	}
	return p
}

func testEvents(ids ...string) []stream.Event {
	out := make([]stream.Event, len(ids))
	for i, id := range ids {
		out[i] = stream.Event{MessageID: id, Type: "test.a", Timestamp: time.Date(2014, 8, 1, 10, 0, i, 0, time.UTC)}
	}
	return out
}

func ids(es []stream.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.MessageID
	}
	return out
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		handlers  []string
		wantCalls []string
		wantIDs   []string // final events
		wantNew   []string
		wantHalt  string
		wantErr   error  // errors.Is target; nil = success
		wantOp    string // HandlerError.Op of a failed run
		wantIndex int
		noResult  bool
	}{
		{
			name:      "chain passes and commits in order",
			handlers:  []string{"a", "b/emit", "c"},
			wantCalls: []string{"a:handle(2)", "b:handle(2)", "c:handle(3)", "a:commit", "b:commit", "c:commit"},
			wantIDs:   []string{"m1", "m2", "new-b"},
			wantNew:   []string{"new-b"},
		},
		{
			name:      "empty pipeline returns the input",
			wantIDs:   []string{"m1", "m2"},
			wantCalls: nil,
		},
		{
			name:      "handle failure rolls back every handler",
			handlers:  []string{"a", "b/fail", "c"},
			wantCalls: []string{"a:handle(2)", "b:handle(2)", "a:rollback", "b:rollback", "c:rollback"},
			wantErr:   errHandle, wantOp: pipeline.OpHandle, wantIndex: 1, noResult: true,
		},
		{
			name:      "rollback error is joined to the cause",
			handlers:  []string{"a/rollback_fail", "b/fail", "c"},
			wantCalls: []string{"a:handle(2)", "b:handle(2)", "a:rollback", "b:rollback", "c:rollback"},
			wantErr:   errRollback, wantOp: pipeline.OpHandle, wantIndex: 1, noResult: true,
		},
		{
			name:      "halt skips the rest and commits the handlers that ran",
			handlers:  []string{"a", "b/halt", "c"},
			wantCalls: []string{"a:handle(2)", "b:handle(2)", "a:commit", "b:commit"},
			wantIDs:   []string{"m1"},
			wantHalt:  "fake",
		},
		{
			name:      "commit failure does not stop later commits",
			handlers:  []string{"a/commit_fail", "b/emit", "c/commit_fail"},
			wantCalls: []string{"a:handle(2)", "b:handle(2)", "c:handle(3)", "a:commit", "b:commit", "c:commit"},
			wantIDs:   []string{"m1", "m2", "new-b"},
			wantNew:   []string{"new-b"},
			wantErr:   pipeline.ErrCommit,
		},
		{
			name:      "build failure runs nothing",
			handlers:  []string{"a", "b/build_fail"},
			wantCalls: nil,
			wantErr:   errBuild, wantOp: pipeline.OpBuild, wantIndex: 1, noResult: true,
		},
		{
			name:      "cancellation between handlers rolls back on a live context",
			handlers:  []string{"a/cancel", "b"},
			wantCalls: []string{"a:handle(2)", "a:rollback", "b:rollback"},
			wantErr:   context.Canceled, wantOp: pipeline.OpHandle, wantIndex: 1, noResult: true,
		},
		{
			name:      "handlers cannot modify the caller's events",
			handlers:  []string{"a/drop_all"},
			wantCalls: []string{"a:handle(2)", "a:commit"},
			wantIDs:   nil,
		},
		{
			name:      "env is shared by the handlers of a run",
			handlers:  []string{"a/env", "b/env_read"},
			wantCalls: []string{"a:handle(2)", "b:handle(2)", "b:env(a,7)", "a:commit", "b:commit"},
			wantIDs:   []string{"m1", "m2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			b.cancel = cancel
			p := b.pipelineOf(t, tc.handlers...)
			in := testEvents("m1", "m2")
			res, err := p.Run(ctx, in, pipeline.NewEnv(7, "trig", nil))
			if d := cmp.Diff(tc.wantCalls, b.calls.list(), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", d)
			}
			if got := ids(in); !cmp.Equal(got, []string{"m1", "m2"}) {
				t.Errorf("input events changed to %v", got)
			}
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run error = %v, want one matching %v", err, tc.wantErr)
			}
			if tc.wantOp != "" {
				var he *pipeline.HandlerError
				if !errors.As(err, &he) {
					t.Fatalf("Run error %v is not a *HandlerError", err)
				}
				if he.Op != tc.wantOp || he.Index != tc.wantIndex || he.StreamID != 7 || he.Handler != "fake" {
					t.Errorf("HandlerError = %+v, want op %s index %d stream 7 handler fake", he, tc.wantOp, tc.wantIndex)
				}
			}
			if tc.noResult {
				if res != nil {
					t.Errorf("Run result = %+v, want nil", res)
				}
				return
			}
			if res == nil {
				t.Fatal("Run returned no result")
			}
			if d := cmp.Diff(tc.wantIDs, ids(res.Events), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("final events mismatch (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantNew, ids(res.NewEvents), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("new events mismatch (-want +got):\n%s", d)
			}
			if res.HaltedBy != tc.wantHalt {
				t.Errorf("HaltedBy = %q, want %q", res.HaltedBy, tc.wantHalt)
			}
		})
	}
}

func TestRunCommitError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pipelineOf(t, "a/commit_fail", "b", "c/commit_fail")
	_, err := p.Run(t.Context(), testEvents("m1"), pipeline.NewEnv(3, "trig", nil))
	var ce *pipeline.CommitError
	if !errors.As(err, &ce) {
		t.Fatalf("Run error = %v, want a *CommitError", err)
	}
	var got []int
	for _, f := range ce.Failures {
		if f.Op != pipeline.OpCommit || !errors.Is(f, errCommit) {
			t.Errorf("failure %+v, want op commit wrapping errCommit", f)
		}
		got = append(got, f.Index)
	}
	if d := cmp.Diff([]int{0, 2}, got); d != "" {
		t.Errorf("failed handler indexes mismatch (-want +got):\n%s", d)
	}
	if ce.StreamID != 3 {
		t.Errorf("StreamID = %d, want 3", ce.StreamID)
	}
}

// TestRunFreshHandlers checks that every run builds new handlers, so
// concurrent runs of one pipeline share nothing.
func TestRunFreshHandlers(t *testing.T) {
	t.Parallel()
	reg := pipeline.NewRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	var mu sync.Mutex
	built := 0
	reg.Register("count", func(p pipeline.Params) (pipeline.Builder, error) {
		return func() (pipeline.Handler, error) {
			mu.Lock()
			defer mu.Unlock()
			built++
			return &fake{fakeParams: fakeParams{Label: "x"}, c: &calls{}}, nil
		}, nil
	})
	defs, err := pipeline.Parse("p.yaml", []byte("p: [count, count]\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := defs.Pipeline("p")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := p.Run(t.Context(), testEvents("m1"), nil); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	wg.Wait()
	if built != 16 {
		t.Errorf("built %d handlers for 8 runs of 2 entries, want 16", built)
	}
}

// Env.StepFunc hears every HandleEvents and Commit call with the handler,
// its position, the op and the error.
func TestRunReportsSteps(t *testing.T) {
	t.Parallel()
	type step struct {
		Handler, Op string
		Index       int
		Err         error
	}
	tests := []struct {
		name     string
		handlers []string
		want     []step
	}{
		{
			name:     "halted chain",
			handlers: []string{"a", "b/halt", "c"},
			want: []step{
				{Handler: "fake", Op: pipeline.OpHandle, Index: 0},
				{Handler: "fake", Op: pipeline.OpHandle, Index: 1, Err: pipeline.ErrHalt},
				{Handler: "fake", Op: pipeline.OpCommit, Index: 0},
				{Handler: "fake", Op: pipeline.OpCommit, Index: 1},
			},
		},
		{
			name:     "failed handler, nothing committed",
			handlers: []string{"a", "b/fail", "c"},
			want: []step{
				{Handler: "fake", Op: pipeline.OpHandle, Index: 0},
				{Handler: "fake", Op: pipeline.OpHandle, Index: 1, Err: errHandle},
			},
		},
		{
			name:     "failed commit",
			handlers: []string{"a/commit_fail"},
			want: []step{
				{Handler: "fake", Op: pipeline.OpHandle, Index: 0},
				{Handler: "fake", Op: pipeline.OpCommit, Index: 0, Err: errCommit},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.pipelineOf(t, tc.handlers...)
			env := pipeline.NewEnv(7, "trig", nil)
			env.Action = "fire"
			var got []step
			env.StepFunc = func(s pipeline.Step) {
				if s.Trigger != "trig" || s.Pipeline != "p" || s.Action != "fire" || s.Duration < 0 {
					t.Errorf("step %+v: want trigger trig, pipeline p, action fire and a duration", s)
				}
				got = append(got, step{Handler: s.Handler, Op: s.Op, Index: s.Index, Err: s.Err})
			}
			_, _ = p.Run(t.Context(), testEvents("m1", "m2"), env)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}
