package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/winchester-go/winchester/stream"
)

// RollbackTimeout bounds the rollbacks of a failed run. They run on a
// context detached from the run's (so a cancelled run is still rolled back)
// with this timeout.
const RollbackTimeout = 30 * time.Second

// ErrTimeout is matched (errors.Is) by the error of a handler or a phase
// that exceeded its time limit (the pipeline's or the entry's timeout).
var ErrTimeout = errors.New("time limit exceeded")

// Operations named by HandlerError.Op.
const (
	OpBuild    = "build"         // the handler's Builder failed
	OpHandle   = "handle_events" // HandleEvents failed (or the run was cancelled before it)
	OpCommit   = "commit"        // Commit failed
	OpRollback = "rollback"      // Rollback failed (joined to the cause)
)

// HandlerError reports the handler whose step failed a run.
type HandlerError struct {
	Handler  string // the entry's handler name
	Index    int    // position of the entry in the pipeline (0-based)
	StreamID int64
	Op       string // OpBuild, OpHandle, OpCommit or OpRollback
	Err      error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("pipeline handler %q (#%d) %s for stream %d: %v", e.Handler, e.Index+1, e.Op, e.StreamID, e.Err)
}

func (e *HandlerError) Unwrap() error { return e.Err }

// ErrCommit is matched (errors.Is) by the error of a run whose handlers all
// ran but at least one Commit failed.
var ErrCommit = errors.New("pipeline: commit failed")

// CommitError is returned by Run when every handler committed but some
// commits failed. The run's Result is still returned: its side effects may
// have partly happened, so the stream should go to its error state.
type CommitError struct {
	StreamID int64
	Failures []*HandlerError // in pipeline order
}

func (e *CommitError) Error() string {
	msgs := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		msgs[i] = f.Error()
	}
	return fmt.Sprintf("pipeline commit failed for stream %d: %s", e.StreamID, strings.Join(msgs, "; "))
}

// Unwrap returns ErrCommit and every failure.
func (e *CommitError) Unwrap() []error {
	out := []error{ErrCommit}
	for _, f := range e.Failures {
		out = append(out, f)
	}
	return out
}

// Result is what a run produced.
type Result struct {
	// Events is the final list returned by the last handler that ran.
	Events []stream.Event
	// NewEvents are the events of Events whose message_id was not among the
	// input events, in order: the events to store and feed back into the
	// triggers.
	NewEvents []stream.Event
	// HaltedBy names the handler that halted the chain with ErrHalt ("" if
	// none); Halted is its index (-1 when none).
	HaltedBy string
	Halted   int
	// Skipped are the handler failures an on_error: continue pipeline
	// logged and went past (HandleEvents or Commit), in order.
	Skipped []*HandlerError
}

// Run runs the pipeline over a stream's events:
//
//  1. A fresh handler is built for every entry. A Builder failure fails the
//     run (*HandlerError, Op OpBuild) before any handler ran; nothing is
//     rolled back.
//  2. Each handler's HandleEvents gets the previous one's output (the first
//     gets events). If one fails, or ctx is done before the next one starts,
//     Rollback is called on every handler in order, including those that
//     never ran, and the run fails with a *HandlerError (Op OpHandle) whose
//     Err joins the cause with any rollback errors. Rollbacks run on a
//     context detached from ctx, bounded by RollbackTimeout.
//  3. A handler returning ErrHalt ends the chain: its events are the final
//     list, the handlers after it are neither run nor committed.
//  4. Commit is called on every handler that ran, in order; a failing
//     commit does not stop the later ones. If any failed, Run returns the
//     Result together with a *CommitError (errors.Is(err, ErrCommit)).
//
// Time limits: the HandleEvents calls together get HandleTimeout, the
// Commit calls together CommitTimeout, and an entry's own timeouts bound
// its calls; a limit exceeded fails the call with an error matching
// ErrTimeout. Handlers must return when their ctx is done.
//
// Under OnErrorContinue a failing HandleEvents (its own time limit
// included) is rolled back alone and skipped: its input goes on to the next
// handler and it is not committed. A failing Commit is skipped too. Both
// are listed in Result.Skipped and the run succeeds. Cancellation of ctx
// and the pipeline's phase limits still fail the whole run.
//
// Commits run under ctx: cancelling it (a worker's shutdown grace running
// out) interrupts them, and the run fails with a *CommitError.
//
// env may be nil (a run without stream). The input slice is not modified.
func (p *Pipeline) Run(ctx context.Context, events []stream.Event, env *Env) (*Result, error) {
	if env == nil {
		env = NewEnv(0, "", nil)
	}
	if env.Pipeline == "" {
		env.Pipeline = p.Name
	}
	if env.IdempotencyKey == "" {
		env.IdempotencyKey = IdempotencyKey(env.StreamID, env.StreamName, events)
	}
	hs := make([]Handler, len(p.build))
	for i, b := range p.build {
		h, err := b()
		if err == nil && h == nil {
			err = errors.New("builder returned no handler")
		}
		if err != nil {
			return nil, &HandlerError{Handler: p.Entries[i].Name, Index: i, StreamID: env.StreamID, Op: OpBuild, Err: err}
		}
		hs[i] = h
	}

	input := make(map[string]bool, len(events))
	for _, e := range events {
		input[e.MessageID] = true
	}
	res := &Result{Halted: -1}
	skipped := make([]bool, len(hs))
	cur := slices.Clip(slices.Clone(events))
	ran := len(hs)
	hctx, hcancel := withLimit(ctx, p.handleTimeout(), "pipeline %q handle_events phase", p.Name)
	defer hcancel()
	for i, h := range hs {
		if err := hctx.Err(); err != nil {
			return nil, p.fail(ctx, hs, i, env.StreamID, context.Cause(hctx))
		}
		ectx, ecancel := withLimit(hctx, p.Entries[i].HandleTimeout, "handler %q handle_events", p.Entries[i].Name)
		began := time.Now()
		out, err := h.HandleEvents(ectx, cur, env)
		if err != nil && ectx.Err() != nil && !errors.Is(err, ErrHalt) {
			err = causeOf(ectx, err)
		}
		ecancel()
		env.step(p.Entries[i].Name, i, OpHandle, time.Since(began), err)
		if errors.Is(err, ErrHalt) {
			cur, ran = out, i+1
			res.HaltedBy, res.Halted = p.Entries[i].Name, i
			break
		}
		if err == nil {
			cur = out
			continue
		}
		if p.OnError != OnErrorContinue || hctx.Err() != nil {
			return nil, p.fail(ctx, hs, i, env.StreamID, err)
		}
		he := &HandlerError{Handler: p.Entries[i].Name, Index: i, StreamID: env.StreamID, Op: OpHandle, Err: err}
		if rerr := p.rollback(ctx, hs[i:i+1], i, env.StreamID); rerr != nil {
			he.Err = errors.Join(err, rerr)
		}
		env.Log().Warn("handler failed; skipped (on_error: continue)", "pipeline", p.Name, "handler", he.Handler, "error", he.Err)
		res.Skipped = append(res.Skipped, he)
		skipped[i] = true
	}
	if err := hctx.Err(); err != nil {
		return nil, p.fail(ctx, hs, ran, env.StreamID, context.Cause(hctx))
	}
	res.Events = cur
	for _, e := range cur {
		if !input[e.MessageID] {
			res.NewEvents = append(res.NewEvents, e)
		}
	}

	cctx, ccancel := withLimit(ctx, p.commitTimeout(), "pipeline %q commit phase", p.Name)
	defer ccancel()
	var failures []*HandlerError
	for i, h := range hs[:ran] {
		if skipped[i] {
			continue
		}
		ectx, ecancel := withLimit(cctx, p.Entries[i].CommitTimeout, "handler %q commit", p.Entries[i].Name)
		began := time.Now()
		err := h.Commit(ectx)
		if err != nil && ectx.Err() != nil {
			err = causeOf(ectx, err)
		}
		ecancel()
		env.step(p.Entries[i].Name, i, OpCommit, time.Since(began), err)
		if err == nil {
			continue
		}
		he := &HandlerError{Handler: p.Entries[i].Name, Index: i, StreamID: env.StreamID, Op: OpCommit, Err: err}
		if p.OnError == OnErrorContinue && ctx.Err() == nil {
			env.Log().Warn("handler commit failed; skipped (on_error: continue)", "pipeline", p.Name, "handler", he.Handler, "error", err)
			res.Skipped = append(res.Skipped, he)
			continue
		}
		failures = append(failures, he)
	}
	if len(failures) > 0 {
		return res, &CommitError{StreamID: env.StreamID, Failures: failures}
	}
	return res, nil
}

func (p *Pipeline) handleTimeout() time.Duration {
	if p.HandleTimeout > 0 {
		return p.HandleTimeout
	}
	return DefaultHandleTimeout
}

func (p *Pipeline) commitTimeout() time.Duration {
	if p.CommitTimeout > 0 {
		return p.CommitTimeout
	}
	return DefaultCommitTimeout
}

// withLimit returns ctx bounded by d (none when d is 0); when the limit
// passes, the context's cause matches ErrTimeout and names what timed out.
func withLimit(ctx context.Context, d time.Duration, format string, args ...any) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	what := fmt.Sprintf(format, args...)
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("%s: %w after %s", what, ErrTimeout, d))
}

// causeOf returns the error of a call whose ctx ended: the context's cause
// (a time limit, a shutdown) with the call's own error when it says more.
func causeOf(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(err, cause) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return cause
	}
	return fmt.Errorf("%w (%v)", cause, err)
}

// fail rolls back every handler and returns the run's error for a failure
// at handler index i (len(hs) when the run was cancelled after the last).
func (p *Pipeline) fail(ctx context.Context, hs []Handler, i int, streamID int64, cause error) error {
	err := cause
	if rerr := p.rollback(ctx, hs, 0, streamID); rerr != nil {
		err = errors.Join(cause, rerr)
	}
	name := ""
	if i < len(p.Entries) {
		name = p.Entries[i].Name
	} else if len(p.Entries) > 0 {
		i = len(p.Entries) - 1
		name = p.Entries[i].Name
	}
	return &HandlerError{Handler: name, Index: i, StreamID: streamID, Op: OpHandle, Err: err}
}

// rollback calls Rollback on hs (entries from index first on) on a context
// detached from ctx, and returns the failures joined.
func (p *Pipeline) rollback(ctx context.Context, hs []Handler, first int, streamID int64) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RollbackTimeout)
	defer cancel()
	var errs []error
	for j, h := range hs {
		if err := h.Rollback(rctx); err != nil {
			errs = append(errs, &HandlerError{Handler: p.Entries[first+j].Name, Index: first + j, StreamID: streamID, Op: OpRollback, Err: err})
		}
	}
	return errors.Join(errs...)
}
