package handlers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// script writes an executable shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "handler.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExecSucceedsAndChangesEvents(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "phases.log")
	// The handle phase prints a new event list: the input's first event
	// and a new one carrying the idempotency key. Every phase logs itself.
	sh := script(t, `echo "$WINCHESTER_PHASE $WINCHESTER_STREAM_ID $WINCHESTER_TRIGGER $WINCHESTER_IDEMPOTENCY_KEY $EXTRA" >> "`+log+`"
input=$(cat)
case "$WINCHESTER_PHASE" in
handle)
  case "$input" in *'"message_id":"m1"'*) ;; *) echo "no m1 in $input" >&2; exit 3;; esac
  printf '[{"message_id":"m1","event_type":"a","timestamp":"2014-08-02T00:05:00"},{"message_id":"k-%s","event_type":"made","timestamp":"2014-08-02T00:05:00","n":7}]' "$WINCHESTER_IDEMPOTENCY_KEY"
  ;;
esac
`)
	h := build(t, NewExec, "exec", map[string]any{"command": []any{sh}, "env": map[string]any{"EXTRA": "x1"}})
	env := webhookEnv()
	in := []stream.Event{event(t, map[string]any{"message_id": "m1", "event_type": "a"}), event(t, map[string]any{"message_id": "m2", "event_type": "b"})}
	out, err := h.HandleEvents(t.Context(), in, env)
	if err != nil {
		t.Fatalf("HandleEvents: %v", err)
	}
	if len(out) != 2 || out[0].MessageID != "m1" || out[1].MessageID != "k-"+env.IdempotencyKey || out[1].Traits["n"] != stream.Int(7) {
		t.Fatalf("HandleEvents = %+v, want m1 and the script's new event", out)
	}
	if err := h.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "handle 42 instance_usage " + env.IdempotencyKey + " x1\ncommit 42 instance_usage " + env.IdempotencyKey + " x1\n"
	if string(data) != want {
		t.Errorf("phases:\n%s\nwant:\n%s", data, want)
	}
}

func TestExecFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		limit   time.Duration
		wantErr string
		wantIs  error
	}{
		{name: "non-zero exit carries stderr", body: "echo 'cannot reach the billing service' >&2\nexit 4\n",
			wantErr: "exit status 4: cannot reach the billing service"},
		{name: "bad output", body: "echo 'not json'\n", wantErr: "output: want a JSON array of events"},
		{name: "hang is cut by the time limit", body: "sleep 600 &\nwait\n", limit: 200 * time.Millisecond,
			wantIs: context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := build(t, NewExec, "exec", map[string]any{"command": []any{script(t, tc.body)}, "phases": []any{"handle"}})
			ctx := t.Context()
			if tc.limit > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.limit)
				defer cancel()
			}
			start := time.Now()
			_, err := h.HandleEvents(ctx, []stream.Event{event(t, map[string]any{"message_id": "m1", "event_type": "a"})}, webhookEnv())
			if err == nil {
				t.Fatal("HandleEvents succeeded")
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v does not match %v", err, tc.wantIs)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("HandleEvents took %s", d)
			}
		})
	}
}

// Rollback runs the command only when the handle phase ran.
func TestExecRollback(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "phases.log")
	sh := script(t, `echo "$WINCHESTER_PHASE" >> "`+log+`"`)
	h := build(t, NewExec, "exec", map[string]any{"command": []any{sh}})
	if err := h.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rollback ran the command before the handle phase (%v)", err)
	}
	if _, err := h.HandleEvents(t.Context(), nil, webhookEnv()); err != nil {
		t.Fatal(err)
	}
	if err := h.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(log); string(data) != "handle\nrollback\n" {
		t.Errorf("phases %q, want handle then rollback", data)
	}
}

func TestExecParamErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params map[string]any
		field  string
		msg    string
	}{
		{name: "no command", params: map[string]any{}, field: "command", msg: "required"},
		{name: "missing program", params: map[string]any{"command": []any{"/nonexistent/prog"}}, field: "command", msg: "no such file"},
		{name: "unknown phase", params: map[string]any{"command": []any{"true"}, "phases": []any{"commit", "prepare"}}, field: "phases", msg: `unknown phase "prepare"`},
		{name: "empty phases", params: map[string]any{"command": []any{"true"}, "phases": []any{}}, field: "phases", msg: "never run"},
		{name: "command as a string", params: map[string]any{"command": "true"}, field: "command", msg: "must be a list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := pipeline.ParamsFromMap("exec", tc.params)
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewExec(p)
			var ce *pipeline.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("NewExec(%v) = %v, want a ConfigError about %q containing %q", tc.params, err, tc.field, tc.msg)
			}
		})
	}
}
