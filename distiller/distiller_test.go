package distiller

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/stream"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden.json files")

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testDistiller loads testdata/definitions.yaml with the built-in plugins
// and count_matches, a plugin returning how many matches it saw.
func testDistiller(t testing.TB) *Distiller {
	t.Helper()
	reg := NewPluginRegistry()
	reg.Register("count_matches", func(map[string]any) (Plugin, error) {
		return func(m []Match) any { return len(m) }, nil
	})
	d, err := Load(filepath.Join("testdata", "definitions.yaml"), Config{Plugins: reg, Clock: fixedClock(testNow)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return d
}

// goldenOutput is what a golden file holds for one notification.
type goldenOutput struct {
	Event   *stream.Event `json:"event,omitempty"`
	Failed  []string      `json:"failed,omitempty"`
	Dropped string        `json:"dropped,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// TestGolden distills every testdata/<case>.json and compares the result
// with testdata/<case>.golden.json (go test ./distiller -update rewrites
// them).
func TestGolden(t *testing.T) {
	d := testDistiller(t)
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range files {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			ev, res, err := d.Distill(body)
			var out goldenOutput
			for _, f := range res.Failed {
				out.Failed = append(out.Failed, f.Error())
			}
			var de *DropError
			switch {
			case errors.As(err, &de):
				out.Dropped, out.Error = de.Reason.String(), de.Error()
			case err != nil:
				t.Fatalf("Distill returned %T %v, want only *DropError", err, err)
			default:
				out.Event = &ev
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./distiller -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Distill(%s) mismatch (-want +got):\n%s", in, diff)
			}
		})
	}
}

func TestDistillReasons(t *testing.T) {
	d := testDistiller(t)
	tests := []struct {
		name string
		body string
		want Reason
	}{
		{name: "invalid JSON", body: `{"message_id": `, want: ReasonNotObject},
		{name: "trailing data", body: `{"message_id": "m"} {}`, want: ReasonNotObject},
		{name: "array", body: `[]`, want: ReasonNotObject},
		{name: "string", body: `"x"`, want: ReasonNotObject},
		{name: "null", body: `null`, want: ReasonNotObject},
		{name: "empty", body: ``, want: ReasonNotObject},
		// encoding/json would turn these into U+FFFD without a word.
		{name: "lone surrogate", body: `{"event_type": "test.x", "message_id": "m\ud800", "publisher_id": "a"}`, want: ReasonNotObject},
		{name: "invalid UTF-8", body: "{\"event_type\": \"test.x\", \"message_id\": \"m\xff\", \"publisher_id\": \"a\"}", want: ReasonNotObject},
		{name: "no event_type", body: `{"message_id": "m"}`, want: ReasonMissingEnvelope},
		{name: "null event_type", body: `{"message_id": "m", "event_type": null}`, want: ReasonMissingEnvelope},
		{name: "no message_id", body: `{"event_type": "test.x"}`, want: ReasonMissingEnvelope},
		{name: "numeric message_id", body: `{"event_type": "test.x", "message_id": 5}`, want: ReasonBadEnvelope},
		{name: "empty event_type", body: `{"event_type": "", "message_id": "m"}`, want: ReasonBadEnvelope},
		{name: "unknown type", body: `{"event_type": "other", "message_id": "m", "publisher_id": "a"}`, want: ReasonNoDefinition},
		{name: "bad timestamp", body: `{"event_type": "test.x", "message_id": "m", "timestamp": "soon", "publisher_id": "a"}`, want: ReasonBadEnvelope},
		{name: "numeric timestamp", body: `{"event_type": "test.x", "message_id": "m", "timestamp": 12, "publisher_id": "a"}`, want: ReasonBadEnvelope},
		{name: "no traits", body: `{"event_type": "test.x", "message_id": "m"}`, want: ReasonInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := d.Distill([]byte(tc.body))
			var de *DropError
			if !errors.As(err, &de) || de.Reason != tc.want {
				t.Errorf("Distill(%s) error = %v, want reason %s", tc.body, err, tc.want)
			}
		})
	}
}

func TestCatchAll(t *testing.T) {
	defs, err := ParseDefinitions("d.yaml", []byte("- event_type: compute.*\n  traits: {}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"message_id": "m", "event_type": "image.upload", "timestamp": "2014-08-11T21:31:52", "publisher_id": "image.glance-01", "_context_request_id": "req-1"}`)
	if _, _, err := New(defs, Config{}).Distill(body); err == nil {
		t.Fatalf("without catch-all: distilled, want dropped")
	}
	ev, res, err := New(defs, Config{CatchAll: true}).Distill(body)
	if err != nil {
		t.Fatalf("with catch-all: %v", err)
	}
	want := map[string]any{
		"message_id": "m", "event_type": "image.upload", "timestamp": "2014-08-11T21:31:52",
		"service": "image.glance-01", "request_id": "req-1",
	}
	if diff := cmp.Diff(want, ev.Map()); diff != "" {
		t.Errorf("catch-all event mismatch (-want +got):\n%s", diff)
	}
	if res.Definition == nil || res.Definition.Line != 0 || res.Definition.EventTypes[0] != "*" {
		t.Errorf("Result.Definition = %+v, want the added catch-all", res.Definition)
	}
}

// DistillMap leaves its input alone and shares nothing with it.
func TestDistillMapDoesNotModifyInput(t *testing.T) {
	d := testDistiller(t)
	body, err := os.ReadFile(filepath.Join("testdata", "nova_exists.json"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := decodeObject(body)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(n)
	if _, _, err := d.DistillMap(n); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(n)
	if !bytes.Equal(before, after) {
		t.Errorf("DistillMap modified its input")
	}
}

// The same distiller serves concurrent callers (run with -race).
func TestDistillConcurrent(t *testing.T) {
	d := testDistiller(t)
	body, err := os.ReadFile(filepath.Join("testdata", "neutron_port_create_end.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := d.Distill(body)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				ev, _, err := d.Distill(body)
				if err == nil && !cmp.Equal(want.Map(), ev.Map()) {
					err = errors.New("different event")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Definitions not built by ParseDefinitions are ignored, not a panic.
func TestNewIgnoresUncompiledDefinitions(t *testing.T) {
	defs, err := ParseDefinitions("d.yaml", []byte("- event_type: x\n  traits: {}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defs[0].Traits = append(defs[0].Traits, &TraitDefinition{Name: "raw", Fields: []string{"payload.raw"}})
	defs = append(defs, nil, &Definition{EventTypes: []string{"*"}})
	d := New(defs, Config{})
	ev, _, err := d.Distill([]byte(`{"message_id": "m", "event_type": "x", "publisher_id": "p", "payload": {"raw": "r"}}`))
	if err != nil {
		t.Fatalf("Distill: %v", err)
	}
	if _, ok := ev.Traits["raw"]; ok || ev.Traits["service"].Text() != "p" {
		t.Errorf("traits = %v, want only service", ev.Traits)
	}
	if _, _, err := d.Distill([]byte(`{"message_id": "m", "event_type": "y", "publisher_id": "p"}`)); err == nil {
		t.Errorf("Distill of type y succeeded through an uncompiled catch-all")
	}
}

func TestEnvelopeTime(t *testing.T) {
	d := testDistiller(t)
	now := stream.FormatTime(testNow)
	tests := []struct {
		name   string
		fields string // JSON members added to the notification
		want   string
	}{
		{name: "timestamp", fields: `"timestamp": "2014-08-11 21:31:52.653102"`, want: "2014-08-11T21:31:52.653102"},
		{name: "timestamp with offset", fields: `"timestamp": "2014-08-11T23:31:52+02:00"`, want: "2014-08-11T21:31:52"},
		{name: "context timestamp when timestamp is absent", fields: `"_context_timestamp": "2014-08-11T21:31:52.345678"`, want: "2014-08-11T21:31:52.345678"},
		{name: "timestamp wins over context", fields: `"timestamp": "2014-08-12", "_context_timestamp": "2014-08-11T21:31:52"`, want: "2014-08-12T00:00:00"},
		{name: "empty timestamp is now, not context", fields: `"timestamp": "", "_context_timestamp": "2014-08-11T21:31:52"`, want: now},
		{name: "null timestamp is now, not context", fields: `"timestamp": null, "_context_timestamp": "2014-08-11T21:31:52"`, want: now},
		{name: "zero timestamp is now", fields: `"timestamp": 0`, want: now},
		{name: "nothing is now", fields: `"x": 1`, want: now},
		{name: "empty context timestamp is now", fields: `"_context_timestamp": ""`, want: now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"message_id": "m", "event_type": "test.x", "publisher_id": "p", ` + tc.fields + `}`
			ev, _, err := d.Distill([]byte(body))
			if err != nil {
				t.Fatalf("Distill(%s): %v", body, err)
			}
			if got := stream.FormatTime(ev.Timestamp); got != tc.want {
				t.Errorf("Distill(%s) timestamp = %s, want %s", body, got, tc.want)
			}
		})
	}
}

// Notifications decoded without UseNumber work too; their numbers are
// floats.
func TestDistillMapFloatNumbers(t *testing.T) {
	d := testDistiller(t)
	ev, _, err := d.DistillMap(map[string]any{
		"message_id": "m", "event_type": "test.x", "timestamp": "2014-08-11T21:31:52",
		"payload": map[string]any{"n": 2048.0, "f": 3, "t": 1.5},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]stream.Value{"n": stream.Int(2048), "f": stream.Float(3), "t": stream.String("1.5")}
	for name, v := range want {
		if got := ev.Traits[name]; !got.Equal(v) {
			t.Errorf("trait %s = %v (%s), want %v (%s)", name, got, got.Kind(), v, v.Kind())
		}
	}
}

// Event is Distill for the trigger manager: it logs each omitted trait.
func TestEventLogsOmittedTraits(t *testing.T) {
	defs, err := ParseDefinitions("d.yaml", []byte("- event_type: compute.*\n  traits:\n    n: {type: int, fields: payload.n}\n    m: {type: int, fields: payload.m}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d := New(defs, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	body := []byte(`{"message_id": "m1", "event_type": "compute.x", "timestamp": "2014-08-11T21:31:52", "payload": {"n": "many", "m": 3}}`)
	ev, err := d.Event(body)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	if _, ok := ev.Traits["n"]; ok || ev.Traits["m"] != stream.Int(3) {
		t.Errorf("traits = %v, want m only", ev.Traits)
	}
	var rec struct {
		Level, Msg, Trait string
		MessageID         string `json:"message_id"`
	}
	if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if rec.Level != "WARN" || rec.Trait != "n" || rec.MessageID != "m1" || !strings.Contains(rec.Msg, "omitted") {
		t.Errorf("log = %+v, want one warning about trait n of m1", rec)
	}
	if _, err := d.Event([]byte("[]")); err == nil {
		t.Error("Event of a non-object succeeded")
	}
}
