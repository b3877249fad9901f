package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// Phases of the exec handler, as passed in WINCHESTER_PHASE.
const (
	ExecHandle   = "handle"
	ExecCommit   = "commit"
	ExecRollback = "rollback"
)

// Environment variables the exec handler sets for its command.
const (
	EnvPhase          = "WINCHESTER_PHASE"
	EnvIdempotencyKey = "WINCHESTER_IDEMPOTENCY_KEY"
	EnvStreamID       = "WINCHESTER_STREAM_ID"
	EnvTrigger        = "WINCHESTER_TRIGGER"
	EnvAction         = "WINCHESTER_ACTION"
	EnvPipeline       = "WINCHESTER_PIPELINE"
)

// maxExecStderr is how much of a command's standard error an error keeps
// (its end).
const maxExecStderr = 4 << 10

// execWaitDelay is how long a cancelled command's output pipes may stay
// open (held by a process it started) before the handler stops waiting.
const execWaitDelay = 2 * time.Second

// execParams are the params of the "exec" handler.
type execParams struct {
	// Command is the program and its arguments (required); it is run
	// directly, not through a shell (use [sh, -c, "..."] for one).
	Command []string `yaml:"command"`
	// Phases lists the phases the command runs in: handle, commit,
	// rollback (default: all three).
	Phases []string `yaml:"phases"`
	// Env adds variables to the command's environment (which is the
	// worker's, plus the WINCHESTER_ variables).
	Env map[string]string `yaml:"env"`
	// Dir is the command's working directory (default: the worker's).
	Dir string `yaml:"dir"`
}

// NewExec is the factory of the "exec" handler.
func NewExec(p pipeline.Params) (pipeline.Builder, error) {
	var cfg execParams
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, p.Errorf("command", "required: the program and its arguments, as a list")
	}
	if _, err := exec.LookPath(cfg.Command[0]); err != nil {
		return nil, p.Errorf("command", "%v", err)
	}
	phases := cfg.Phases
	if !p.Has("phases") {
		phases = []string{ExecHandle, ExecCommit, ExecRollback}
	}
	if len(phases) == 0 {
		return nil, p.Errorf("phases", "empty: the command would never run")
	}
	for _, ph := range phases {
		if ph != ExecHandle && ph != ExecCommit && ph != ExecRollback {
			return nil, p.Errorf("phases", "unknown phase %q (known: handle, commit, rollback)", ph)
		}
	}
	for k := range cfg.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, p.Errorf("env", "invalid variable name %q", k)
		}
	}
	c := &execConfig{command: cfg.Command, phases: phases, env: cfg.Env, dir: cfg.Dir}
	return func() (pipeline.Handler, error) { return &Exec{cfg: c}, nil }, nil
}

type execConfig struct {
	command []string
	phases  []string
	env     map[string]string
	dir     string
}

// Exec is the "exec" handler: it runs a command with the stream document
// (pipeline.Document: trigger, distinguishing traits, events in the event
// JSON) on standard input, in each configured phase, with the phase, the
// idempotency key, the stream id, trigger, action and pipeline in the
// environment (WINCHESTER_PHASE, WINCHESTER_IDEMPOTENCY_KEY, ...).
//
//   - handle: the command gets the handler's input events. Its standard
//     output, when not empty, replaces the event list: a JSON array of
//     events, or a document with an "events" array. Empty output passes
//     the events on unchanged.
//   - commit: the command gets the events the handler passed on.
//   - rollback: the command gets the handler's input events; it runs only
//     when this handler's HandleEvents ran.
//
// A non-zero exit fails the phase, with the end of the command's standard
// error in the error. When the phase's time limit or the shutdown ends it,
// the command and the processes it started are killed.
type Exec struct {
	cfg     *execConfig
	env     *pipeline.Env
	in, out []stream.Event
	handled bool
}

// HandleEvents runs the handle phase.
func (x *Exec) HandleEvents(ctx context.Context, events []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	x.env, x.in, x.out, x.handled = env, events, events, true
	if !slices.Contains(x.cfg.phases, ExecHandle) {
		return events, nil
	}
	stdout, err := x.run(ctx, ExecHandle, events)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(stdout)) == 0 {
		return events, nil
	}
	out, err := decodeExecOutput(stdout)
	if err != nil {
		return nil, fmt.Errorf("exec %s (handle phase): output: %w", x.cfg.command[0], err)
	}
	x.out = out
	return out, nil
}

// decodeExecOutput reads the event list a command printed: an array of
// events or a document with an events array.
func decodeExecOutput(data []byte) ([]stream.Event, error) {
	data = bytes.TrimSpace(data)
	var events []stream.Event
	if data[0] == '{' {
		var doc struct {
			Events *[]stream.Event `json:"events"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, err
		}
		if doc.Events == nil {
			return nil, errors.New(`an object without an "events" array`)
		}
		events = *doc.Events
	} else if err := json.Unmarshal(data, &events); err != nil {
		return nil, fmt.Errorf("want a JSON array of events or a document with events: %w", err)
	}
	if events == nil {
		events = []stream.Event{}
	}
	return events, nil
}

// Commit runs the commit phase.
func (x *Exec) Commit(ctx context.Context) error {
	if !x.handled || !slices.Contains(x.cfg.phases, ExecCommit) {
		return nil
	}
	_, err := x.run(ctx, ExecCommit, x.out)
	return err
}

// Rollback runs the rollback phase when the handle phase ran.
func (x *Exec) Rollback(ctx context.Context) error {
	if !x.handled || !slices.Contains(x.cfg.phases, ExecRollback) {
		return nil
	}
	_, err := x.run(ctx, ExecRollback, x.in)
	return err
}

// run runs the command for one phase and returns its standard output.
func (x *Exec) run(ctx context.Context, phase string, events []stream.Event) ([]byte, error) {
	input, err := x.env.Document(events).Marshal()
	if err != nil {
		return nil, fmt.Errorf("exec: encode the stream: %w", err)
	}
	cmd := exec.CommandContext(ctx, x.cfg.command[0], x.cfg.command[1:]...)
	cmd.Dir = x.cfg.dir
	cmd.Env = append(cmd.Environ(),
		EnvPhase+"="+phase,
		EnvIdempotencyKey+"="+x.env.IdempotencyKey,
		EnvStreamID+"="+strconv.FormatInt(x.env.StreamID, 10),
		EnvTrigger+"="+x.env.StreamName,
		EnvAction+"="+x.env.Action,
		EnvPipeline+"="+x.env.Pipeline,
	)
	for k, v := range x.cfg.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	killGroup(cmd)
	cmd.WaitDelay = execWaitDelay
	cmd.Stdin = bytes.NewReader(input)
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: maxExecStderr}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	err = cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		return nil, fmt.Errorf("exec %s (%s phase): %w", x.cfg.command[0], phase, err)
	}
	return nil, fmt.Errorf("exec %s (%s phase): %w: %s", x.cfg.command[0], phase, err, msg)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max  int
	b    []byte
	lost bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
		t.lost = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if t.lost {
		return "…" + string(t.b)
	}
	return string(t.b)
}

var _ pipeline.Handler = (*Exec)(nil)
