package conformance

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/pipeline/handlers"
	"github.com/winchester-go/winchester/stream"
)

func init() { registerArea("pipeline.yaml") }

// TestPipeline runs every case of pipeline.yaml.
func TestPipeline(t *testing.T) {
	runFile(t, "pipeline.yaml", func(t *testing.T, c *vectorCase) {
		switch k := c.kind(t); k {
		case "handler_config":
			runHandlerConfig(t, c)
		case "pipeline_run":
			runPipelineRun(t, c)
		case "usage_handler":
			runUsageHandler(t, c)
		case "atompub_match_type":
			runAtomPubMatchType(t, c)
		case "atompub_format":
			runAtomPubFormat(t, c)
		case "atompub_generate_atom":
			runAtomPubGenerateAtom(t, c)
		case "atompub_publish":
			runAtomPubPublish(t, c)
		case "notabene_params":
			runNotabeneParams(t, c)
		default:
			t.Fatalf("unknown case kind %q", k)
		}
	})
}

// eventCmp compares events by typed value.
var eventCmp = cmp.Options{
	cmp.Comparer(func(a, b stream.Value) bool { return a.Equal(b) }),
	cmpopts.EquateEmpty(),
}

// newEvent normalises a vector event; it must be valid.
func newEvent(t *testing.T, raw map[string]any) stream.Event {
	t.Helper()
	e, dropped, err := stream.NewEvent(raw)
	if err != nil {
		t.Fatalf("event %v: %v", raw, err)
	}
	if len(dropped) > 0 {
		t.Fatalf("event %v: dropped traits %v", raw, dropped)
	}
	return e
}

func newEvents(t *testing.T, raws []map[string]any) []stream.Event {
	t.Helper()
	out := make([]stream.Event, 0, len(raws))
	for _, r := range raws {
		out = append(out, newEvent(t, r))
	}
	return out
}

// parseOne parses a pipelines.yaml holding one pipeline "test" made of the
// given entries.
func parseOne(t *testing.T, reg *pipeline.Registry, entries ...*yaml.Node) (*pipeline.Pipeline, error) {
	t.Helper()
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: entries}
	doc := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "test"}, seq,
	}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatalf("marshal pipelines: %v", err)
	}
	defs, err := pipeline.Parse("pipelines.yaml", data, reg)
	if err != nil {
		return nil, err
	}
	p, ok := defs.Pipeline("test")
	if !ok {
		t.Fatalf("pipeline test missing after Parse of:\n%s", data)
	}
	return p, nil
}

func runHandlerConfig(t *testing.T, c *vectorCase) {
	var in struct {
		HandlerMap []string  `yaml:"handler_map"`
		Config     yaml.Node `yaml:"config"`
	}
	c.decode(t, &in)
	var want struct {
		Normalized *pipeline.Entry `yaml:"normalized"`
		Error      string          `yaml:"error"`
	}
	out, _ := c.outcome(t)
	if err := out.Decode(&want); err != nil {
		t.Fatal(err)
	}
	var j journal
	names := map[string]string{}
	for _, n := range in.HandlerMap {
		names[n] = n
	}
	reg, err := newTestRegistry(t, &j).Select(names)
	if err != nil {
		t.Fatalf("Select(%v): %v", names, err)
	}
	p, err := parseOne(t, reg, &in.Config)
	if want.Error != "" {
		var ce *pipeline.ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("Parse = %v, want a *pipeline.ConfigError", err)
		}
		t.Logf("config error: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := p.Entries[0]
	got.Line = 0
	if d := cmp.Diff(*want.Normalized, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("normalized entry mismatch (-want +got):\n%s", d)
	}
}

func runPipelineRun(t *testing.T, c *vectorCase) {
	var in struct {
		Handlers []yaml.Node      `yaml:"handlers"`
		Events   []map[string]any `yaml:"events"`
	}
	c.decode(t, &in)
	var want struct {
		OK        bool             `yaml:"ok"`
		Error     string           `yaml:"error"`
		NewEvents []map[string]any `yaml:"new_events"`
		Journal   []journalEntry   `yaml:"journal"`
	}
	out, _ := c.outcome(t)
	if err := out.Decode(&want); err != nil {
		t.Fatal(err)
	}
	var j journal
	reg := newTestRegistry(t, &j)
	entries := make([]*yaml.Node, len(in.Handlers))
	for i := range in.Handlers {
		entries[i] = &in.Handlers[i]
	}
	p, err := parseOne(t, reg, entries...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	res, err := p.Run(t.Context(), newEvents(t, in.Events), pipeline.NewEnv(1, "test_trigger", testLogger(t)))
	switch {
	case want.OK && err != nil:
		t.Fatalf("Run: %v, want success", err)
	case !want.OK && err == nil:
		t.Fatalf("Run succeeded, want error kind %s", want.Error)
	case !want.OK:
		if got := errorKind(err); got != want.Error {
			t.Errorf("Run error %v has kind %s, want %s", err, got, want.Error)
		}
	default:
		if d := cmp.Diff(newEvents(t, want.NewEvents), res.NewEvents, eventCmp); d != "" {
			t.Errorf("new events mismatch (-want +got):\n%s", d)
		}
	}
	if d := cmp.Diff(want.Journal, j.take(), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("journal mismatch (-want +got):\n%s", d)
	}
}

// errorKind maps a Run error to the vectors' error kinds.
func errorKind(err error) string {
	var he *pipeline.HandlerError
	switch {
	case errors.Is(err, pipeline.ErrCommit):
		return "commit"
	case errors.As(err, &he):
		return "pipeline_execution"
	}
	return fmt.Sprintf("unclassified(%T)", err)
}

func runUsageHandler(t *testing.T, c *vectorCase) {
	var in struct {
		Env    map[string]any   `yaml:"env"`
		Events []map[string]any `yaml:"events"`
	}
	c.decode(t, &in)
	out, noteOnly := c.outcome(t)
	var want struct {
		Events []map[string]any `yaml:"events"`
	}
	if err := out.Decode(&want); err != nil {
		t.Fatal(err)
	}
	streamID, ok := in.Env["stream_id"].(int)
	if !ok {
		t.Fatalf("env.stream_id %v is not an int", in.Env["stream_id"])
	}
	reg := newTestRegistry(t, &journal{})
	p, err := parseOne(t, reg, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "usage"})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	input := newEvents(t, in.Events)
	res, err := p.Run(t.Context(), input, pipeline.NewEnv(int64(streamID), "test_trigger", testLogger(t)))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if noteOnly {
		// The recommended outcome only says "do not fail": check the shape.
		if len(res.Events) <= len(input) {
			t.Errorf("usage returned %d events for %d inputs, want a verdict event", len(res.Events), len(input))
		}
		for _, e := range res.Events[len(input):] {
			if !strings.HasPrefix(e.Type, "compute.instance.exists.") {
				t.Errorf("unexpected event %s %s", e.Type, e.MessageID)
			}
			if _, err := uuid.Parse(e.MessageID); err != nil {
				t.Errorf("event %s: message_id %q is not a UUID", e.Type, e.MessageID)
			}
		}
		return
	}
	if len(res.Events) != len(want.Events) {
		t.Fatalf("usage returned %d events, want %d:\n%s", len(res.Events), len(want.Events), dumpEvents(res.Events))
	}
	for i, w := range want.Events {
		if w["message_id"] == "<uuid4>" {
			id, err := uuid.Parse(res.Events[i].MessageID)
			if err != nil || id.Version() != 4 || id.String() != res.Events[i].MessageID {
				t.Errorf("event %d: message_id %q is not a canonical UUID4", i, res.Events[i].MessageID)
			}
			w["message_id"] = res.Events[i].MessageID
		}
	}
	if d := cmp.Diff(newEvents(t, want.Events), res.Events, eventCmp); d != "" {
		t.Errorf("events mismatch (-want +got):\n%s", d)
	}
}

func dumpEvents(es []stream.Event) string {
	var b strings.Builder
	for _, e := range es {
		j, _ := json.Marshal(e)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// newAtomPub builds an atompub handler from a case's handler_params.
func newAtomPub(t *testing.T, params map[string]any) *handlers.AtomPub {
	t.Helper()
	reg := newTestRegistry(t, &journal{})
	f, err := reg.Lookup("atompub")
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.ParamsFromMap("atompub", params)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f(p)
	if err != nil {
		t.Fatalf("atompub params %v: %v", params, err)
	}
	h, err := b()
	if err != nil {
		t.Fatalf("build atompub: %v", err)
	}
	a, ok := h.(*handlers.AtomPub)
	if !ok {
		t.Fatalf("atompub handler is a %T", h)
	}
	return a
}

// atomEvent builds the event of an atompub case. The formatting cases use
// events without a timestamp (or other envelope keys), which only a handler
// test can build: a missing key stays empty (the zero time for the
// timestamp), and the handler leaves it out of JSON content.
func atomEvent(t *testing.T, raw map[string]any) stream.Event {
	t.Helper()
	e := stream.Event{Traits: map[string]stream.Value{}}
	for k, x := range raw {
		switch k {
		case "message_id":
			e.MessageID, _ = x.(string)
		case "event_type":
			e.Type, _ = x.(string)
		case "timestamp":
			s, _ := x.(string)
			ts, err := stream.ParseTime(s)
			if err != nil {
				t.Fatalf("event timestamp %v: %v", x, err)
			}
			e.Timestamp = ts
		default:
			v, err := stream.ValueOf(x)
			if errors.Is(err, stream.ErrNull) {
				continue
			}
			if err != nil {
				t.Fatalf("event trait %s=%v: %v", k, x, err)
			}
			e.Traits[k] = v
		}
	}
	return e
}

func runAtomPubMatchType(t *testing.T, c *vectorCase) {
	var in struct {
		HandlerParams map[string]any `yaml:"handler_params"`
		EventTypes    []string       `yaml:"event_types"`
	}
	c.decode(t, &in)
	var want struct {
		Matches map[string]bool `yaml:"matches"`
	}
	out, _ := c.outcome(t)
	if err := out.Decode(&want); err != nil {
		t.Fatal(err)
	}
	a := newAtomPub(t, in.HandlerParams)
	got := map[string]bool{}
	for _, et := range in.EventTypes {
		got[et] = a.Matches(et)
	}
	if d := cmp.Diff(want.Matches, got); d != "" {
		t.Errorf("matches mismatch (-want +got):\n%s", d)
	}
}

func runAtomPubFormat(t *testing.T, c *vectorCase) {
	var in struct {
		HandlerParams map[string]any `yaml:"handler_params"`
		Event         map[string]any `yaml:"event"`
	}
	c.decode(t, &in)
	out, noteOnly := c.outcome(t)
	var want struct {
		AtomEventType string `yaml:"atom_event_type"`
		Content       string `yaml:"content"`
		ContentType   string `yaml:"content_type"`
	}
	if err := out.Decode(&want); err != nil {
		t.Fatal(err)
	}
	a := newAtomPub(t, in.HandlerParams)
	content, contentType, atomType, err := a.Format(atomEvent(t, in.Event))
	if err != nil {
		t.Fatalf("Format: %v", err)
	}
	t.Logf("content: %s", content)
	if noteOnly {
		checkRecommendedFormat(t, c.Name, string(content))
		return
	}
	if atomType != want.AtomEventType || contentType != want.ContentType {
		t.Errorf("Format types = (%q, %q), want (%q, %q)", atomType, contentType, want.AtomEventType, want.ContentType)
	}
	if strings.HasSuffix(contentType, "json") {
		var got, exp any
		if err := json.Unmarshal(content, &got); err != nil {
			t.Fatalf("content %s: %v", content, err)
		}
		if err := json.Unmarshal([]byte(want.Content), &exp); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(exp, got); d != "" {
			t.Errorf("json content mismatch (-want +got):\n%s", d)
		}
		return
	}
	if string(content) != want.Content {
		t.Errorf("content =\n%s\nwant\n%s", content, want.Content)
	}
}

// checkRecommendedFormat checks the recommended fixes whose vectors give
// only a note: the known cases precisely, any other one for well-formed
// output.
func checkRecommendedFormat(t *testing.T, name, content string) {
	t.Helper()
	switch name {
	case "atompub_cuf_xml_no_launched_at":
		if !strings.Contains(content, `startTime="2015-08-10T00:00:00Z"`) {
			t.Errorf("content %s: want startTime of the audit period beginning", content)
		}
	case "atompub_json_format_with_datetime_fails":
		var m map[string]any
		if err := json.Unmarshal([]byte(content), &m); err != nil {
			t.Fatalf("content %s: %v", content, err)
		}
		if m["timestamp"] != "2015-08-11T00:05:00" {
			t.Errorf("json timestamp = %v, want the ISO 8601 string", m["timestamp"])
		}
	default:
		checkWellFormed(t, content)
	}
}

// checkWellFormed fails unless content is a JSON value or an XML document.
func checkWellFormed(t *testing.T, content string) {
	t.Helper()
	if content == "" {
		t.Fatal("empty content")
	}
	var v any
	if json.Unmarshal([]byte(content), &v) == nil {
		return
	}
	d := xml.NewDecoder(strings.NewReader(content))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("content is neither JSON nor well-formed XML (%v):\n%s", err, content)
		}
	}
}

// compareAtom compares an atom entry byte for byte, except JSON content,
// which is compared parsed (key order and spacing are free).
func compareAtom(t *testing.T, got, want string) {
	t.Helper()
	const open, end = `<atom:content type="application/json">`, `</atom:content>`
	gi, wi := strings.Index(got, open), strings.Index(want, open)
	if gi < 0 || wi < 0 {
		if got != want {
			t.Errorf("atom =\n%s\nwant\n%s", got, want)
		}
		return
	}
	gj, wj := strings.LastIndex(got, end), strings.LastIndex(want, end)
	if got[:gi] != want[:wi] || got[gj:] != want[wj:] {
		t.Errorf("atom =\n%s\nwant\n%s", got, want)
	}
	var gv, wv any
	if err := json.Unmarshal([]byte(html.UnescapeString(got[gi+len(open):gj])), &gv); err != nil {
		t.Fatalf("atom JSON content: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(want[wi+len(open):wj])), &wv); err != nil {
		t.Fatalf("expected JSON content: %v", err)
	}
	if d := cmp.Diff(wv, gv); d != "" {
		t.Errorf("atom JSON content mismatch (-want +got):\n%s", d)
	}
}

func runAtomPubGenerateAtom(t *testing.T, c *vectorCase) {
	var in struct {
		HandlerParams map[string]any `yaml:"handler_params"`
		Event         map[string]any `yaml:"event"`
		Args          struct {
			Categories  []string `yaml:"categories"`
			Content     string   `yaml:"content"`
			ContentType string   `yaml:"content_type"`
			EventType   string   `yaml:"event_type"`
			Title       string   `yaml:"title"`
		} `yaml:"args"`
	}
	c.decode(t, &in)
	var want struct {
		Atom string `yaml:"atom"`
	}
	out, _ := c.outcome(t)
	if err := out.Decode(&want); err != nil {
		t.Fatal(err)
	}
	a := newAtomPub(t, in.HandlerParams)
	got := a.GenerateAtom(atomEvent(t, in.Event), in.Args.EventType, []byte(in.Args.Content), in.Args.ContentType, in.Args.Categories, in.Args.Title)
	compareAtom(t, string(got), want.Atom)
}

func runAtomPubPublish(t *testing.T, c *vectorCase) {
	var in struct {
		HandlerParams map[string]any `yaml:"handler_params"`
		Event         map[string]any `yaml:"event"`
	}
	c.decode(t, &in)
	var want struct {
		Atom string `yaml:"atom"`
	}
	out, noteOnly := c.outcome(t)
	if err := out.Decode(&want); err != nil {
		t.Fatal(err)
	}
	a := newAtomPub(t, in.HandlerParams)
	got, err := a.Document(atomEvent(t, in.Event))
	if err != nil {
		t.Fatalf("Document: %v", err)
	}
	if noteOnly {
		checkWellFormed(t, string(got))
		return
	}
	compareAtom(t, string(got), want.Atom)
}

func runNotabeneParams(t *testing.T, c *vectorCase) {
	var in struct {
		Params map[string]any `yaml:"params"`
	}
	c.decode(t, &in)
	var want struct {
		Error      string `yaml:"error"`
		Connection *struct {
			Host     string `yaml:"host"`
			Library  string `yaml:"library"`
			Password string `yaml:"password"`
			Port     int    `yaml:"port"`
			User     string `yaml:"user"`
			Vhost    string `yaml:"vhost"`
		} `yaml:"connection"`
		Exchange *struct {
			Name string `yaml:"exchange_name"`
			Type string `yaml:"exchange_type"`
		} `yaml:"exchange"`
	}
	out, _ := c.outcome(t)
	if err := out.Decode(&want); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.ParamsFromMap("notabene", in.Params)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := handlers.DecodeNotabeneParams(p)
	if want.Error != "" {
		var ce *pipeline.ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("DecodeNotabeneParams = %v, want a *pipeline.ConfigError", err)
		}
		t.Logf("config error: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("DecodeNotabeneParams: %v", err)
	}
	type conn struct {
		Host, Library, Password, User, Vhost string
		Port                                 int
	}
	type exch struct{ Name, Type string }
	w := want.Connection
	if d := cmp.Diff(conn{w.Host, w.Library, w.Password, w.User, w.Vhost, w.Port},
		conn{cfg.Host, cfg.Library, cfg.Password, cfg.User, cfg.Vhost, cfg.Port}); d != "" {
		t.Errorf("connection params mismatch (-want +got):\n%s", d)
	}
	if d := cmp.Diff(exch{want.Exchange.Name, want.Exchange.Type}, exch{cfg.Exchange, cfg.ExchangeType}); d != "" {
		t.Errorf("exchange params mismatch (-want +got):\n%s", d)
	}
}
