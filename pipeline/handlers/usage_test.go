package handlers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

const existsID = "6c3e1b34-2b7a-4c55-8b53-7c4b0a9e2f10"

func exists(t testing.TB, extra map[string]any) stream.Event {
	raw := map[string]any{
		"message_id": existsID, "event_type": UsageExistsType, "timestamp": "2014-08-02T00:05:00",
		"audit_period_beginning": dt("2014-08-01T00:00:00"), "audit_period_ending": dt("2014-08-02T00:00:00"),
		"instance_id": "inst-1", "launched_at": dt("2014-07-01T10:00:00"), "state": "active", "tenant_id": "t1",
	}
	for k, v := range extra {
		raw[k] = v
	}
	for k, v := range raw {
		if v == nil {
			delete(raw, k)
		}
	}
	return event(t, raw)
}

// verdict runs the usage handler and returns the last event (the verdict
// of the last exists).
func verdict(t *testing.T, events ...stream.Event) stream.Event {
	t.Helper()
	h := build(t, NewUsage, "usage", nil)
	out, err := h.HandleEvents(t.Context(), events, pipeline.NewEnv(42, "trig", testLogger(t)))
	if err != nil {
		t.Fatalf("HandleEvents: %v", err)
	}
	if len(out) <= len(events) {
		t.Fatalf("no verdict: %d events out", len(out))
	}
	return out[len(out)-1]
}

func TestUsageVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		block   []map[string]any
		exists  map[string]any
		code    string // "" = verified
		message string
	}{
		{
			name:    "field on one side only is a conflict",
			block:   []map[string]any{{"message_id": "e1", "event_type": "compute.instance.rescue.end", "launched_at": dt("2014-07-01T10:00:00"), "tenant_id": "t1", "os_distro": "ubuntu"}},
			code:    "U2",
			message: "Conflicting 'os_distro' values ('ubuntu' != 'None')",
		},
		{
			name:    "int and float compare by value",
			block:   []map[string]any{{"message_id": "e1", "event_type": "compute.instance.rebuild.end", "launched_at": dt("2014-07-01T10:00:00"), "tenant_id": "t1", "instance_flavor_id": 2}},
			exists:  map[string]any{"instance_flavor_id": 2.0},
			code:    "",
			message: "None",
		},
		{
			name:    "string and int differ",
			block:   []map[string]any{{"message_id": "e1", "event_type": "compute.instance.rebuild.end", "launched_at": dt("2014-07-01T10:00:00"), "tenant_id": "t1", "instance_flavor_id": 2}},
			exists:  map[string]any{"instance_flavor_id": "2"},
			code:    "U2",
			message: "Conflicting 'instance_flavor_id' values ('2' != '2')",
		},
		{
			name:    "empty launched_at is missing",
			exists:  map[string]any{"launched_at": ""},
			code:    "U1",
			message: ".exists has no launched_at value.",
		},
		{
			name:    "deleted before launched",
			exists:  map[string]any{"state": "deleted", "launched_at": dt("2014-07-01T10:00:00"), "deleted_at": dt("2014-06-01T10:00:00")},
			code:    "U4",
			message: ".exists deleted_at < .exists launched_at.",
		},
		{
			name:    "deleted without launched_at does not fail the run",
			exists:  map[string]any{"state": "deleted", "launched_at": nil, "deleted_at": dt("2014-06-01T10:00:00")},
			code:    "",
			message: "None",
		},
		{
			name: "microseconds are rendered",
			block: []map[string]any{{"message_id": "e1", "event_type": "compute.instance.delete.end",
				"launched_at": dt("2014-07-01T10:00:00"), "deleted_at": dt("2014-08-01T12:00:00.000250")}},
			exists:  map[string]any{"state": "deleted", "deleted_at": dt("2014-08-01T12:00:00")},
			code:    "U2",
			message: "Conflicting 'deleted_at' values ('2014-08-01 12:00:00' != '2014-08-01 12:00:00.000250')",
		},
		{
			name:    "stale error_code is removed from a verified event",
			exists:  map[string]any{"error_code": "U3"},
			block:   []map[string]any{{"message_id": "e1", "event_type": "compute.instance.update"}},
			code:    "",
			message: "None",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var in []stream.Event
			for _, b := range tc.block {
				b["timestamp"] = "2014-08-01T12:00:00"
				in = append(in, event(t, b))
			}
			in = append(in, exists(t, tc.exists))
			v := verdict(t, in...)
			wantType := UsageVerifiedType
			if tc.code != "" {
				wantType = UsageFailedType
			}
			got := map[string]stream.Value{"error": v.Traits["error"], "error_code": v.Traits["error_code"]}
			want := map[string]stream.Value{"error": stream.String(tc.message)}
			if tc.code != "" {
				want["error_code"] = stream.String(tc.code)
			} else {
				want["error_code"] = stream.Value{}
			}
			if v.Type != wantType {
				t.Errorf("verdict type = %s, want %s", v.Type, wantType)
			}
			if d := cmp.Diff(want, got, cmp.Comparer(func(a, b stream.Value) bool { return a.Equal(b) })); d != "" {
				t.Errorf("verdict mismatch (-want +got):\n%s", d)
			}
			if !v.Traits["stream_id"].Equal(stream.Int(42)) {
				t.Errorf("stream_id = %v, want int 42", v.Traits["stream_id"])
			}
		})
	}
}

// TestUsageNonUUIDIDIsDeterministic checks the fix for a non-UUID exists
// message_id: the verdict id is derived from it, the same on every run.
func TestUsageNonUUIDIDIsDeterministic(t *testing.T) {
	t.Parallel()
	e := exists(t, map[string]any{"message_id": "not-a-uuid"})
	a, b := verdict(t, e), verdict(t, e)
	if a.MessageID != b.MessageID {
		t.Errorf("verdict ids differ between runs: %s, %s", a.MessageID, b.MessageID)
	}
	other := verdict(t, exists(t, map[string]any{"message_id": "not-a-uuid-2"}))
	if other.MessageID == a.MessageID {
		t.Errorf("different exists ids gave the same verdict id %s", a.MessageID)
	}
	if !a.Traits["original_message_id"].Equal(stream.String("not-a-uuid")) {
		t.Errorf("original_message_id = %v", a.Traits["original_message_id"])
	}
}

// TestUsageSpecExample checks the uuid5 ids given in the specification.
func TestUsageSpecExample(t *testing.T) {
	t.Parallel()
	if got := verdict(t, exists(t, nil)).MessageID; got != "3c5e8dfb-1322-5323-8278-884f5a87cafa" {
		t.Errorf("verified id = %s", got)
	}
	if got := verdict(t, exists(t, map[string]any{"launched_at": nil})).MessageID; got != "fe2fd4c8-70db-5c30-99bc-a6218f94b98d" {
		t.Errorf("failed id = %s", got)
	}
}

// BenchmarkUsage measures a stream of 100 days of an instance: an update
// and an exists event per day.
func BenchmarkUsage(b *testing.B) {
	var in []stream.Event
	day := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		d := day.AddDate(0, 0, i)
		in = append(in, stream.Event{MessageID: uuid.NewString(), Type: "compute.instance.update", Timestamp: d.Add(time.Hour),
			Traits: map[string]stream.Value{"instance_id": stream.String("i-1")}})
		e := exists(b, map[string]any{
			"message_id": uuid.NewString(), "timestamp": stream.FormatTime(d.AddDate(0, 0, 1).Add(5 * time.Minute)),
			"audit_period_beginning": dt(stream.FormatTime(d)), "audit_period_ending": dt(stream.FormatTime(d.AddDate(0, 0, 1))),
		})
		in = append(in, e)
	}
	env := pipeline.NewEnv(1, "trig", nil)
	b.ReportAllocs()
	for b.Loop() {
		h := &Usage{}
		if _, err := h.HandleEvents(b.Context(), in, env); err != nil {
			b.Fatal(err)
		}
	}
}
