package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// runRoot runs the winchester command with args and returns stdout,
// stderr and the error.
func runRoot(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func TestStreamsAndEventsCommands(t *testing.T) {
	dir := writeFiles(t, map[string]string{"winchester.yaml": "log_level: error\n"})
	cfg := filepath.Join(dir, "winchester.yaml")
	dbURL := "sqlite:///" + filepath.Join(dir, "w.db")

	// A failed stream and an active one, written through the store.
	s, err := db.Open(t.Context(), "sqlite://"+filepath.Join(dir, "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)
	ids, err := s.SaveEvents(t.Context(), []stream.Event{{MessageID: "m-1", Type: "compute.instance.exists", Timestamp: t0,
		Traits: map[string]stream.Value{"memory_mb": stream.Int(4096)}}})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(key string, n int64) int64 {
		dist := map[string]stream.Value{"instance_id": stream.String(key), "n": stream.Int(n)}
		id, _, err := s.CreateStream(t.Context(), db.NewStream{Name: "test_trigger", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), EventIDs: ids, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	failed := mk("i-1", 1)
	mk("i-2", 2)
	st, err := s.SetStreamState(t.Context(), db.SetStateParams{ID: failed, SerialNo: 0, State: stream.StateFiring})
	if err != nil {
		t.Fatal(err)
	}
	msg := "pipeline handler \"usage\" failed"
	if _, err := s.SetStreamState(t.Context(), db.SetStateParams{ID: failed, SerialNo: st.SerialNo, State: stream.StateError, LastError: &msg}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	common := []string{"-c", cfg, "--database-url", dbURL}
	out, _, err := runRoot(t, append([]string{"streams", "list", "--state", "error"}, common...)...)
	if err != nil || !strings.Contains(out, "instance_id=i-1") || strings.Contains(out, "i-2") || !strings.Contains(out, "usage") {
		t.Fatalf("streams list --state error: %v\n%s", err, out)
	}
	out, _, err = runRoot(t, append([]string{"streams", "list", "--trait", "n:int=2", "-o", "json"}, common...)...)
	var js stream.JSON
	if err != nil || json.Unmarshal([]byte(out), &js) != nil || js.DistinguishedBy["instance_id"].Text() != "i-2" {
		t.Fatalf("streams list --trait n:int=2 -o json: %v\n%s", err, out)
	}
	if out, _, _ := runRoot(t, append([]string{"streams", "list", "--trait", "n:string=2", "--count"}, common...)...); strings.TrimSpace(out) != "0" {
		t.Errorf("a string 2 matched an int 2: count %q", out)
	}
	// Without a type the value's type is inferred (n=2 used to be the
	// string "2", which silently matched nothing).
	if out, _, _ := runRoot(t, append([]string{"streams", "list", "--trait", "n=2", "--count"}, common...)...); strings.TrimSpace(out) != "1" {
		t.Errorf("--trait n=2 (inferred int) count %q, want 1", out)
	}
	out, _, err = runRoot(t, append([]string{"streams", "show", "1"}, common...)...)
	if err != nil || !strings.Contains(out, "m-1") || !strings.Contains(out, "last error") {
		t.Fatalf("streams show: %v\n%s", err, out)
	}
	if _, _, err := runRoot(t, append([]string{"streams", "show", "99"}, common...)...); err == nil || exitCode(err) != 1 {
		t.Errorf("streams show of a missing stream: %v, want exit 1", err)
	}
	out, _, err = runRoot(t, append([]string{"streams", "reset", "--all", "--trigger", "test_trigger"}, common...)...)
	if err != nil || !strings.Contains(out, "retry_fire") || strings.Contains(out, "stream 2") {
		t.Fatalf("streams reset --all: %v\n%s", err, out)
	}
	if _, _, err := runRoot(t, append([]string{"streams", "reset"}, common...)...); err == nil {
		t.Error("streams reset without ids or --all succeeded")
	}
	out, _, err = runRoot(t, append([]string{"events", "show", "m-1"}, common...)...)
	var ev stream.Event
	if err != nil || json.Unmarshal([]byte(out), &ev) != nil || !ev.Traits["memory_mb"].Equal(stream.Int(4096)) {
		t.Fatalf("events show: %v\n%s", err, out)
	}
	out, _, err = runRoot(t, append([]string{"events", "list", "--trait", "memory_mb:int=4096", "--count", "-o", "json"}, common...)...)
	if err != nil || strings.TrimSpace(out) != `{"count":1}` {
		t.Fatalf("events list --count -o json: %v %q", err, out)
	}
	if _, _, err := runRoot(t, append([]string{"events", "list", "--trait", "memory_mb:bool=1"}, common...)...); err == nil {
		t.Error("an unknown trait type was accepted")
	}
}

// One flag vocabulary across the commands: -c before or after the
// sub-command, --database-url everywhere (the old --database still
// works), --from/--to for time ranges in streams list as in events list
// (the old --older-than/--younger-than still work), -c for bench.
func TestFlagVocabulary(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"winchester.yaml": "log_level: error\ntrigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\npipeline_handlers: {logger: logger}\ndistiller_config: event_definitions.yaml\n",
		"pipelines.yaml":  "p: [logger]\n",
		"triggers.yaml": `
- name: t
  distinguished_by: [instance_id]
  expiration: "$last + 7d"
  fire_pipeline: p
  expire_pipeline: p
  match_criteria: [{event_type: "compute.*"}]
  fire_criteria: [{event_type: compute.instance.exists}]
`,
		"event_definitions.yaml": mustRead(t, filepath.Join("..", "..", "etc", "event_definitions.yaml")),
		"events.jsonl": `{"message_id":"m1","event_type":"compute.instance.update","timestamp":"2014-08-01T10:00:00","instance_id":"a"}
{"message_id":"m2","event_type":"compute.instance.update","timestamp":"2014-08-03T10:00:00","instance_id":"b"}
`,
	})
	cfg := filepath.Join(dir, "winchester.yaml")
	dbURL := "sqlite:///" + filepath.Join(dir, "w.db")

	// replay --database-url writes to that database (it used to be
	// ignored in favour of replay's own --database).
	if _, errOut, err := runRoot(t, "replay", "-c", cfg, "--database-url", dbURL, "--no-drain", filepath.Join(dir, "events.jsonl")); err != nil {
		t.Fatalf("replay --database-url: %v\n%s", err, errOut)
	}
	count := func(args ...string) string {
		t.Helper()
		out, errOut, err := runRoot(t, args...)
		if err != nil {
			t.Fatalf("winchester %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return strings.TrimSpace(out)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "-c before the sub-command", args: []string{"-c", cfg, "--database-url", dbURL, "streams", "list", "--count"}, want: "2"},
		{name: "old --database", args: []string{"streams", "list", "-c", cfg, "--database", dbURL, "--count"}, want: "2"},
		{name: "streams --from", args: []string{"streams", "list", "-c", cfg, "--database-url", dbURL, "--from", "2014-08-02T00:00:00", "--count"}, want: "1"},
		{name: "streams --to is inclusive", args: []string{"streams", "list", "-c", cfg, "--database-url", dbURL, "--to", "2014-08-01T10:00:00", "--count"}, want: "1"},
		{name: "streams --from --to", args: []string{"streams", "list", "-c", cfg, "--database-url", dbURL, "--from", "2014-08-01T11:00:00", "--to", "2014-08-02T00:00:00", "--count"}, want: "0"},
		{name: "old --younger-than", args: []string{"streams", "list", "-c", cfg, "--database-url", dbURL, "--younger-than", "2014-08-02T00:00:00", "--count"}, want: "1"},
		{name: "old --older-than is exclusive", args: []string{"streams", "list", "-c", cfg, "--database-url", dbURL, "--older-than", "2014-08-01T10:00:00", "--count"}, want: "0"},
		{name: "events --from --to", args: []string{"-c", cfg, "events", "list", "--database-url", dbURL, "--from", "2014-08-01T00:00:00", "--to", "2014-08-02T00:00:00", "--count"}, want: "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := count(tc.args...); got != tc.want {
				t.Errorf("winchester %s = %s, want %s", strings.Join(tc.args, " "), got, tc.want)
			}
		})
	}
	if _, _, err := runRoot(t, "streams", "list", "-c", cfg, "--database-url", dbURL, "--from", "2014-08-01T00:00:00", "--younger-than", "2014-08-01T00:00:00"); err == nil {
		t.Error("--from with the old --younger-than was accepted")
	}

	// bench takes -c: its event definitions come from distiller_config.
	out, _, err := runRoot(t, "bench", "generate", "-c", cfg, "--events", "--instances", "1", "--days", "1")
	if err != nil || !strings.Contains(out, `"event_type":"compute.instance.exists"`) {
		t.Fatalf("bench generate -c --events: %v\n%s", err, out)
	}
	bare := writeFiles(t, map[string]string{"winchester.yaml": "log_level: error\n"})
	if _, _, err := runRoot(t, "bench", "generate", "-c", filepath.Join(bare, "winchester.yaml"), "--events"); err == nil || !strings.Contains(err.Error(), "distiller_config is not set") {
		t.Errorf("bench generate -c without distiller_config: %v, want an error naming the key", err)
	}
}

// streams reset: --limit caps --all (oldest first), the message without
// ids or --all says what to give, and only failed states can be reset.
func TestStreamsReset(t *testing.T) {
	dir := writeFiles(t, map[string]string{"winchester.yaml": "log_level: error\n"})
	cfg := filepath.Join(dir, "winchester.yaml")
	dbURL := "sqlite:///" + filepath.Join(dir, "w.db")
	s, err := db.Open(t.Context(), "sqlite://"+filepath.Join(dir, "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)
	ids, err := s.SaveEvents(t.Context(), []stream.Event{{MessageID: "m-1", Type: "x", Timestamp: t0}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		dist := map[string]stream.Value{"n": stream.Int(int64(i))}
		id, _, err := s.CreateStream(t.Context(), db.NewStream{Name: "t", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), EventIDs: ids, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.SetStreamState(t.Context(), db.SetStateParams{ID: id, SerialNo: 0, State: stream.StateFiring})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetStreamState(t.Context(), db.SetStateParams{ID: id, SerialNo: st.SerialNo, State: stream.StateError}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	common := []string{"-c", cfg, "--database-url", dbURL}

	_, _, err = runRoot(t, append([]string{"streams", "reset"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "nothing to reset: give stream ids, or --all") {
		t.Errorf("streams reset with no argument: %v", err)
	}
	if _, _, err := runRoot(t, append([]string{"streams", "reset", "1", "--all"}, common...)...); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("streams reset 1 --all: %v", err)
	}
	if _, _, err := runRoot(t, append([]string{"streams", "reset", "1", "--trigger", "t"}, common...)...); err == nil || !strings.Contains(err.Error(), "leave them out") {
		t.Errorf("streams reset 1 --trigger t: %v", err)
	}
	if _, _, err := runRoot(t, append([]string{"streams", "reset", "--all", "--state", "active"}, common...)...); err == nil || !strings.Contains(err.Error(), "only streams in error or expire_error") {
		t.Errorf("streams reset --all --state active: %v", err)
	}
	out, _, err := runRoot(t, append([]string{"streams", "reset", "--all", "--limit", "2"}, common...)...)
	if err != nil || out != "stream 1: retry_fire\nstream 2: retry_fire\n" {
		t.Fatalf("streams reset --all --limit 2: %v\n%s", err, out)
	}
	out, _, err = runRoot(t, append([]string{"streams", "list", "--state", "error", "--count"}, common...)...)
	if err != nil || strings.TrimSpace(out) != "3" {
		t.Fatalf("streams still in error after reset --limit 2: %v %q, want 3", err, out)
	}
	// A storage error on one stream is reported with it, and the others
	// are still reset; the command fails.
	raw, err := sql.Open("sqlite", filepath.Join(dir, "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(t.Context(), `CREATE TRIGGER fail_reset BEFORE UPDATE ON stream WHEN old.id = 4
		BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	out, _, err = runRoot(t, append([]string{"streams", "reset", "--all"}, common...)...)
	if exitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "1 stream(s) could not be reset") {
		t.Errorf("streams reset --all with a failing stream: %v, want exit 1 naming one failure", err)
	}
	if !strings.Contains(out, "stream 3: retry_fire\nstream 4: ") || !strings.Contains(out, "disk on fire") ||
		!strings.HasSuffix(out, "stream 5: retry_fire\n") {
		t.Fatalf("streams reset --all with a failing stream:\n%s", out)
	}
}

// events list and streams list cut long cells instead of padding every row
// to the widest one, show the traits themselves, infer the type of an
// untyped --trait and explain an empty result; streams list shows the
// next deadline and how a completed stream ended.
func TestListingsText(t *testing.T) {
	dir := writeFiles(t, map[string]string{"winchester.yaml": "log_level: error\n"})
	cfg := filepath.Join(dir, "winchester.yaml")
	dbURL := "sqlite:///" + filepath.Join(dir, "w.db")
	s, err := db.Open(t.Context(), "sqlite://"+filepath.Join(dir, "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)
	huge := strings.Repeat("x", stream.MaxIndexedBytes) // the longest message id a store keeps
	ids, err := s.SaveEvents(t.Context(), []stream.Event{
		{MessageID: huge, Type: "compute.instance.exists", Timestamp: t0, Traits: map[string]stream.Value{"memory_mb": stream.Int(1024), "host": stream.String("h1")}},
		{MessageID: "m-2", Type: "compute.instance.exists", Timestamp: t0.Add(time.Second), Traits: map[string]stream.Value{"memory_mb": stream.String("1024")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(key string, fire bool) int64 {
		dist := map[string]stream.Value{"instance_id": stream.String(key)}
		ns := db.NewStream{Name: "t", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), EventIDs: ids[:1], Now: t0}
		if fire {
			ns.FireTimestamp = t0.Add(time.Minute)
		}
		id, _, err := s.CreateStream(t.Context(), ns)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	complete := func(id int64, action stream.State) {
		st, err := s.SetStreamState(t.Context(), db.SetStateParams{ID: id, SerialNo: 0, State: action})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetStreamState(t.Context(), db.SetStateParams{ID: id, SerialNo: st.SerialNo, State: stream.StateCompleted}); err != nil {
			t.Fatal(err)
		}
	}
	mk("waiting", false)
	mk("ready", true)
	complete(mk("fired", true), stream.StateFiring)
	complete(mk("expired", false), stream.StateExpiring)
	s.Close()
	common := []string{"-c", cfg, "--database-url", dbURL}

	out, _, err := runRoot(t, append([]string{"events", "list"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("events list: %d lines, want 3:\n%.500s", len(lines), out)
	}
	for _, l := range lines {
		if len(l) > 300 {
			t.Errorf("events list line of %d bytes, want long cells cut:\n%.300s", len(l), l)
		}
	}
	if !strings.Contains(lines[2], "host=h1 memory_mb=1024") || !strings.Contains(lines[2], "xxx…") {
		t.Errorf("events list row %q, want the traits and the cut message id", lines[2])
	}
	out, _, err = runRoot(t, append([]string{"events", "list", "--wide"}, common...)...)
	if err != nil || !strings.Contains(out, huge) {
		t.Errorf("events list --wide cut the message id (%v)", err)
	}

	// memory_mb=1024 is read as an int: one event (the other has the
	// string "1024").
	out, _, err = runRoot(t, append([]string{"events", "list", "--trait", "memory_mb=1024", "--count"}, common...)...)
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("events list --trait memory_mb=1024 --count = %q (%v), want 1", out, err)
	}
	out, errOut, err := runRoot(t, append([]string{"events", "list", "--trait", "host=1024"}, common...)...)
	if err != nil || !strings.Contains(errOut, "--trait host=1024 was read as an int (write host:string=1024 to match text)") {
		t.Errorf("events list --trait host=1024: %v, stderr %q, want an explanation of the empty result\n%s", err, errOut, out)
	}
	if _, errOut, _ := runRoot(t, append([]string{"events", "list", "--trait", "host=h2"}, common...)...); errOut != "" {
		t.Errorf("a string filter that matched nothing explained %q", errOut)
	}

	out, _, err = runRoot(t, append([]string{"streams", "list", "--mark", "+"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"active              expire 2014-08-01T11:00:00",
		"active              fire 2014-08-01T10:01:00",
		"completed (fired)   -",
		"completed (expired)  -",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("streams list lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runRoot(t, append([]string{"streams", "list", "--mark", "+", "-o", "json"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var js stream.JSON
		if err := json.Unmarshal([]byte(l), &js); err != nil {
			t.Fatal(err)
		}
		at := ""
		if js.NextAt != nil {
			at = *js.NextAt
		}
		got = append(got, js.State+"/"+js.Outcome+"/"+js.Next+"/"+at)
	}
	want := []string{"active//expire/2014-08-01T11:00:00", "active//fire/2014-08-01T10:01:00", "completed/fired//", "completed/expired//"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("streams list -o json: %v, want %v", got, want)
	}
}

// streams list and streams show -o json print the stream's one JSON form,
// stream.JSON, exactly as the HTTP API does.
func TestStreamsJSONIsTheOneForm(t *testing.T) {
	dir := writeFiles(t, map[string]string{"winchester.yaml": "log_level: error\n"})
	common := []string{"-c", filepath.Join(dir, "winchester.yaml"), "--database-url", "sqlite:///" + filepath.Join(dir, "w.db")}
	s, err := db.Open(t.Context(), "sqlite://"+filepath.Join(dir, "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)
	ev := stream.Event{MessageID: "m-1", Type: "compute.instance.exists", Timestamp: t0}
	ids, err := s.SaveEvents(t.Context(), []stream.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	dist := map[string]stream.Value{"instance_id": stream.String("i-1")}
	id, _, err := s.CreateStream(t.Context(), db.NewStream{Name: "usage", Key: stream.Key(dist), DistinguishedBy: dist,
		FirstEvent: t0, LastEvent: t0, ExpireTimestamp: t0.Add(time.Hour), FireTimestamp: t0, EventIDs: ids, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.StreamByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.StreamEvents(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	found, err := s.FindStreams(t.Context(), db.FindStreamsParams{Limit: 100})
	if err != nil || len(found) != 1 {
		t.Fatalf("FindStreams = %v, %v", found, err)
	}
	s.Close()
	for _, tc := range []struct {
		name string
		args []string
		want stream.JSON
	}{
		{"show", []string{"streams", "show", "1", "-o", "json"}, st.JSON("", events)},
		{"list", []string{"streams", "list", "-o", "json"}, found[0].Stream.JSON(found[0].Mark, nil)},
	} {
		out, _, err := runRoot(t, append(tc.args, common...)...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		want, err := json.Marshal(tc.want)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out); got != string(want) {
			t.Errorf("streams %s -o json =\n%s\nwant stream.JSON\n%s", tc.name, got, want)
		}
		if !strings.Contains(out, `"next":"fire","next_at":"2014-08-01T10:00:00"`) {
			t.Errorf("streams %s -o json lacks next and next_at: %s", tc.name, out)
		}
	}
}
