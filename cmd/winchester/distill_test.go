package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDistill(t *testing.T) {
	nova := mustRead(t, "../../distiller/testdata/nova_exists.json")
	var golden struct{ Event json.RawMessage }
	if err := json.Unmarshal([]byte(mustRead(t, "../../distiller/testdata/nova_exists.golden.json")), &golden); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, golden.Event); err != nil {
		t.Fatal(err)
	}
	novaEvent := compact.String() + "\n"
	update := func(id, host string) string {
		return `{"message_id":"` + id + `","event_type":"compute.instance.update","timestamp":"2014-01-01T00:00:00","publisher_id":"compute.` + host + `"}`
	}
	updateEvent := func(id, host string) string {
		return `{"message_id":"` + id + `","event_type":"compute.instance.update","timestamp":"2014-01-01T00:00:00","host":"` + host + `","service":"compute"}` + "\n"
	}
	samples := map[string]string{
		"etc/winchester.yaml":        mustRead(t, "../../etc/winchester.yaml"),
		"etc/event_definitions.yaml": mustRead(t, "../../etc/event_definitions.yaml"),
	}
	withSamples := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range samples {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name       string
		files      map[string]string
		args       []string // file names are relative to the temporary directory
		stdin      string
		wantOut    string
		wantErrOut []string // parts of standard error, in order
		wantFail   string
	}{
		{
			name:       "nova exists with the shipped configuration",
			files:      withSamples(map[string]string{"exists.json": nova}),
			args:       []string{"-c", "etc/winchester.yaml", "exists.json"},
			wantOut:    novaEvent,
			wantErrOut: []string{"Notifications: 1, events: 1, dropped: 0"},
		},
		{
			name:  "JSON lines on standard input, one bad line",
			files: withSamples(nil),
			args:  []string{"-c", "etc/winchester.yaml"},
			stdin: update("a", "h1") + "\n{bad\n" + update("b", "h2") + "\n",
			wantOut: updateEvent("a", "h1") +
				updateEvent("b", "h2"),
			wantErrOut: []string{"<stdin>:2: drop notification: not_object", "Notifications: 3, events: 2, dropped: 1"},
		},
		{
			name:       "an array, definitions without a configuration",
			files:      map[string]string{"defs.yaml": samples["etc/event_definitions.yaml"], "in.json": "[" + update("a", "h1") + ", {\"message_id\": \"x\", \"event_type\": \"image.upload\"}, 5]"},
			args:       []string{"--definitions", "defs.yaml", "in.json"},
			wantOut:    updateEvent("a", "h1"),
			wantErrOut: []string{"in.json[1]: drop notification x (image.upload): no_definition", "in.json[2]: drop notification: not_object", "Notifications: 3, events: 1, dropped: 2"},
		},
		{
			name:       "catch-all flag",
			files:      withSamples(map[string]string{"in.json": `{"message_id": "x", "event_type": "image.upload", "timestamp": "2014-01-01", "publisher_id": "image.g1"}`}),
			args:       []string{"-c", "etc/winchester.yaml", "--catch-all", "in.json"},
			wantOut:    `{"message_id":"x","event_type":"image.upload","timestamp":"2014-01-01T00:00:00","service":"image.g1"}` + "\n",
			wantErrOut: []string{"Notifications: 1, events: 1, dropped: 0"},
		},
		{
			name:       "omitted trait",
			files:      withSamples(map[string]string{"in.json": `{"message_id": "x", "event_type": "compute.instance.update", "timestamp": "2014-01-01", "publisher_id": "compute.h1", "payload": {"memory_mb": "lots"}}`}),
			args:       []string{"-c", "etc/winchester.yaml", "in.json"},
			wantOut:    updateEvent("x", "h1"),
			wantErrOut: []string{`in.json:1: x: trait memory_mb omitted: cannot convert "lots" to int`, "Notifications: 1, events: 1, dropped: 0"},
		},
		{
			name:     "configuration without distiller_config",
			files:    map[string]string{"w.yaml": "catch_all_notifications: true\n"},
			args:     []string{"-c", "w.yaml"},
			wantFail: "distiller_config is not set",
		},
		{
			name:     "bad definitions",
			files:    map[string]string{"defs.yaml": "- event_type: x\n  traits:\n    a:\n      type: bogus\n      fields: a\n"},
			args:     []string{"--definitions", "defs.yaml"},
			wantFail: "defs.yaml:4: definition 1 (x): trait a: type",
		},
		{
			name:     "missing input",
			files:    withSamples(nil),
			args:     []string{"-c", "etc/winchester.yaml", "nope.json"},
			wantFail: "nope.json",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			t.Chdir(dir)
			var stdout, stderr bytes.Buffer
			cmd := newRootCmd()
			cmd.SetArgs(append([]string{"distill"}, tc.args...))
			cmd.SetIn(strings.NewReader(tc.stdin))
			cmd.SetOut(&stdout)
			cmd.SetErr(&stderr)
			cmd.SilenceUsage = true
			err := cmd.Execute()
			if tc.wantFail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantFail) {
					t.Fatalf("distill %v error = %v, want one containing %q", tc.args, err, tc.wantFail)
				}
				return
			}
			if err != nil {
				t.Fatalf("distill %v: %v\nstderr:\n%s", tc.args, err, stderr.String())
			}
			if diff := cmp.Diff(tc.wantOut, stdout.String()); diff != "" {
				t.Errorf("standard output mismatch (-want +got):\n%s", diff)
			}
			rest := stderr.String()
			for _, part := range tc.wantErrOut {
				i := strings.Index(rest, part)
				if i < 0 {
					t.Fatalf("standard error lacks %q (in order):\n%s", part, stderr.String())
				}
				rest = rest[i+len(part):]
			}
		})
	}
}
