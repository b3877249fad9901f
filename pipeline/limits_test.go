package pipeline_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/winchester-go/winchester/pipeline"
)

func TestParsePipelineOptions(t *testing.T) {
	t.Parallel()
	reg := builtinRegistry()
	t.Cleanup(func() { _ = reg.Close() })
	src := `plain: [logger]
tuned:
  timeout: {handle: 2s, commit: 1.5}
  on_error: continue
  handlers:
    - logger
    - name: logger
      timeout: 250ms
    - name: logger
      timeout: {commit: 3s}
both:
  timeout: 10
  handlers: [logger]
`
	defs, err := pipeline.Parse("pipelines.yaml", []byte(src), reg)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	plain, _ := defs.Pipeline("plain")
	if plain.HandleTimeout != pipeline.DefaultHandleTimeout || plain.CommitTimeout != pipeline.DefaultCommitTimeout || plain.OnError != pipeline.OnErrorRollback {
		t.Errorf("plain: handle %s commit %s on_error %s, want the defaults and rollback", plain.HandleTimeout, plain.CommitTimeout, plain.OnError)
	}
	tuned, _ := defs.Pipeline("tuned")
	if tuned.HandleTimeout != 2*time.Second || tuned.CommitTimeout != 1500*time.Millisecond || tuned.OnError != pipeline.OnErrorContinue {
		t.Errorf("tuned: handle %s commit %s on_error %s, want 2s, 1.5s, continue", tuned.HandleTimeout, tuned.CommitTimeout, tuned.OnError)
	}
	type limits struct{ Handle, Commit time.Duration }
	var got []limits
	for _, e := range tuned.Entries {
		got = append(got, limits{e.HandleTimeout, e.CommitTimeout})
	}
	want := []limits{{0, 0}, {250 * time.Millisecond, 250 * time.Millisecond}, {0, 3 * time.Second}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("entry limits mismatch (-want +got):\n%s", d)
	}
	both, _ := defs.Pipeline("both")
	if both.HandleTimeout != 10*time.Second || both.CommitTimeout != 10*time.Second {
		t.Errorf("both: handle %s commit %s, want 10s each", both.HandleTimeout, both.CommitTimeout)
	}
}

func TestParsePipelineOptionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		line    int
		handler string
		msg     string
	}{
		{name: "bad on_error", src: "p:\n  on_error: ignore\n  handlers: [logger]\n", line: 2, msg: "on_error: must be rollback or continue"},
		{name: "unknown pipeline key", src: "p:\n  handler: [logger]\n", line: 2, msg: "handler: unknown key (did you mean handlers?)"},
		{name: "no handlers", src: "p:\n  on_error: continue\n", line: 2, msg: "needs a handlers list"},
		{name: "bad duration", src: "p:\n  timeout: soon\n  handlers: [logger]\n", line: 2, msg: `invalid duration "soon"`},
		{name: "negative duration", src: "p:\n  timeout: -1\n  handlers: [logger]\n", line: 2, msg: "must be positive"},
		{name: "unknown phase", src: "p:\n  timeout: {handel: 1s}\n  handlers: [logger]\n", line: 2, msg: `unknown key "handel" (known: handle, commit)`},
		{name: "bad entry timeout", src: "p:\n  - name: logger\n    timeout: [1]\n", line: 3, handler: "logger", msg: "timeout: must be a duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := builtinRegistry()
			t.Cleanup(func() { _ = reg.Close() })
			_, err := pipeline.Parse("pipelines.yaml", []byte(tc.src), reg)
			var ce *pipeline.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Parse(%q) = %v, want a *ConfigError", tc.src, err)
			}
			if ce.Line != tc.line || ce.Pipeline != "p" || ce.Handler != tc.handler || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Parse(%q) = %q (line %d, handler %q), want line %d, handler %q, containing %q", tc.src, err, ce.Line, ce.Handler, tc.line, tc.handler, tc.msg)
			}
		})
	}
}

// pipelineFrom parses pipeline "p" of fake handlers from YAML.
func (b *testBundle) pipelineFrom(t *testing.T, src string) *pipeline.Pipeline {
	t.Helper()
	defs, err := pipeline.Parse("pipelines.yaml", []byte(src), b.reg)
	if err != nil {
		t.Fatalf("Parse:\n%s\n%v", src, err)
	}
	p, _ := defs.Pipeline("p")
	return p
}

func TestRunTimeLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		src       string
		wantCalls []string
		wantOp    string
		wantMsg   string
	}{
		{
			name: "handler handle timeout fails the run",
			src: `p:
  - {name: fake, params: {label: a}}
  - {name: fake, params: {label: b, mode: hang}, timeout: 50ms}
  - {name: fake, params: {label: c}}
`,
			wantCalls: []string{"a:handle(2)", "b:handle(2)", "a:rollback", "b:rollback", "c:rollback"},
			wantOp:    pipeline.OpHandle, wantMsg: `handler "fake" handle_events: time limit exceeded after 50ms`,
		},
		{
			name: "pipeline handle timeout fails the run",
			src: `p:
  timeout: {handle: 50ms}
  handlers:
    - {name: fake, params: {label: a, mode: hang}}
`,
			wantCalls: []string{"a:handle(2)", "a:rollback"},
			wantOp:    pipeline.OpHandle, wantMsg: `pipeline "p" handle_events phase: time limit exceeded after 50ms`,
		},
		{
			name: "commit timeout is a commit failure",
			src: `p:
  timeout: {commit: 50ms}
  handlers:
    - {name: fake, params: {label: a, mode: commit_hang}}
    - {name: fake, params: {label: b}}
`,
			wantCalls: []string{"a:handle(2)", "b:handle(2)", "a:commit", "b:commit"},
			wantOp:    pipeline.OpCommit, wantMsg: `pipeline "p" commit phase: time limit exceeded after 50ms`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.pipelineFrom(t, tc.src)
			start := time.Now()
			_, err := p.Run(t.Context(), testEvents("m1", "m2"), pipeline.NewEnv(7, "trig", nil))
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Run took %s, want about the 50ms limit", d)
			}
			if !errors.Is(err, pipeline.ErrTimeout) {
				t.Fatalf("Run error = %v, want one matching ErrTimeout", err)
			}
			var he *pipeline.HandlerError
			if !errors.As(err, &he) || he.Op != tc.wantOp {
				t.Errorf("Run error %v: want a *HandlerError with op %s", err, tc.wantOp)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Run error %q does not contain %q", err, tc.wantMsg)
			}
			if d := cmp.Diff(tc.wantCalls, b.calls.list(), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestRunOnErrorContinue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		src       string
		wantCalls []string
		wantIDs   []string
		wantSkip  []string // "index:op"
	}{
		{
			name: "a failing handler is skipped, the others run and commit",
			src: `p:
  on_error: continue
  handlers:
    - {name: fake, params: {label: a, mode: emit}}
    - {name: fake, params: {label: b, mode: fail}}
    - {name: fake, params: {label: c}}
`,
			wantCalls: []string{"a:handle(2)", "b:handle(3)", "b:rollback", "c:handle(3)", "a:commit", "c:commit"},
			wantIDs:   []string{"m1", "m2", "new-a"},
			wantSkip:  []string{"1:handle_events"},
		},
		{
			name: "a handler over its own time limit is skipped",
			src: `p:
  on_error: continue
  handlers:
    - {name: fake, params: {label: a, mode: hang}, timeout: 50ms}
    - {name: fake, params: {label: b}}
`,
			wantCalls: []string{"a:handle(2)", "a:rollback", "b:handle(2)", "b:commit"},
			wantIDs:   []string{"m1", "m2"},
			wantSkip:  []string{"0:handle_events"},
		},
		{
			name: "a failing commit is skipped and the run succeeds",
			src: `p:
  on_error: continue
  handlers:
    - {name: fake, params: {label: a, mode: commit_fail}}
    - {name: fake, params: {label: b}}
`,
			wantCalls: []string{"a:handle(2)", "b:handle(2)", "a:commit", "b:commit"},
			wantIDs:   []string{"m1", "m2"},
			wantSkip:  []string{"0:commit"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.pipelineFrom(t, tc.src)
			res, err := p.Run(t.Context(), testEvents("m1", "m2"), pipeline.NewEnv(7, "trig", nil))
			if err != nil {
				t.Fatalf("Run: %v, want success under on_error: continue", err)
			}
			if d := cmp.Diff(tc.wantCalls, b.calls.list(), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantIDs, ids(res.Events), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("final events mismatch (-want +got):\n%s", d)
			}
			var skipped []string
			for _, f := range res.Skipped {
				skipped = append(skipped, fmt.Sprintf("%d:%s", f.Index, f.Op))
			}
			if d := cmp.Diff(tc.wantSkip, skipped); d != "" {
				t.Errorf("skipped mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// Under on_error: continue the pipeline's own phase limit still fails the
// whole run: there is no time left for the handlers after it.
func TestRunOnErrorContinuePhaseLimitFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pipelineFrom(t, `p:
  on_error: continue
  timeout: {handle: 50ms}
  handlers:
    - {name: fake, params: {label: a, mode: hang}}
    - {name: fake, params: {label: b}}
`)
	_, err := p.Run(t.Context(), testEvents("m1"), nil)
	if !errors.Is(err, pipeline.ErrTimeout) {
		t.Fatalf("Run error = %v, want the phase time limit", err)
	}
	if d := cmp.Diff([]string{"a:handle(1)", "a:rollback", "b:rollback"}, b.calls.list()); d != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", d)
	}
}
