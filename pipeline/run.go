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

// CommitTimeout bounds the commits of a run. Commits run on a context
// detached from the run's: a run whose handlers all succeeded commits even
// if it is cancelled meanwhile (a shutdown waits for it).
const CommitTimeout = 5 * time.Minute

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
//  4. Commit is called on every handler that ran, in order, on a context
//     detached from ctx (bounded by CommitTimeout); a failing commit does
//     not stop the later ones. If any failed, Run returns the
//     Result together with a *CommitError (errors.Is(err, ErrCommit)).
//
// env may be nil (a run without stream). The input slice is not modified.
func (p *Pipeline) Run(ctx context.Context, events []stream.Event, env *Env) (*Result, error) {
	if env == nil {
		env = NewEnv(0, "", nil)
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
	cur := slices.Clip(slices.Clone(events))
	ran := len(hs)
	for i, h := range hs {
		if err := ctx.Err(); err != nil {
			return nil, p.fail(ctx, hs, i, env.StreamID, context.Cause(ctx))
		}
		out, err := h.HandleEvents(ctx, cur, env)
		if errors.Is(err, ErrHalt) {
			cur, ran = out, i+1
			res.HaltedBy, res.Halted = p.Entries[i].Name, i
			break
		}
		if err != nil {
			return nil, p.fail(ctx, hs, i, env.StreamID, err)
		}
		cur = out
	}
	if err := ctx.Err(); err != nil {
		return nil, p.fail(ctx, hs, ran, env.StreamID, context.Cause(ctx))
	}
	res.Events = cur
	for _, e := range cur {
		if !input[e.MessageID] {
			res.NewEvents = append(res.NewEvents, e)
		}
	}

	// Once committing has begun it is not cut short by cancellation: a
	// half-done commit would leave side effects that a retry repeats.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommitTimeout)
	defer cancel()
	var failures []*HandlerError
	for i, h := range hs[:ran] {
		if err := h.Commit(cctx); err != nil {
			failures = append(failures, &HandlerError{Handler: p.Entries[i].Name, Index: i, StreamID: env.StreamID, Op: OpCommit, Err: err})
		}
	}
	if len(failures) > 0 {
		return res, &CommitError{StreamID: env.StreamID, Failures: failures}
	}
	return res, nil
}

// fail rolls back every handler and returns the run's error for a failure
// at handler index i (len(hs) when the run was cancelled after the last).
func (p *Pipeline) fail(ctx context.Context, hs []Handler, i int, streamID int64, cause error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RollbackTimeout)
	defer cancel()
	errs := []error{cause}
	for j, h := range hs {
		if err := h.Rollback(rctx); err != nil {
			errs = append(errs, &HandlerError{Handler: p.Entries[j].Name, Index: j, StreamID: streamID, Op: OpRollback, Err: err})
		}
	}
	err := cause
	if len(errs) > 1 {
		err = errors.Join(errs...)
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
