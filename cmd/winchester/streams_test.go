package main

import (
	"bytes"
	"encoding/json"
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
	var js streamJSON
	if err != nil || json.Unmarshal([]byte(out), &js) != nil || js.DistinguishedBy["instance_id"].Text() != "i-2" {
		t.Fatalf("streams list --trait n:int=2 -o json: %v\n%s", err, out)
	}
	if out, _, _ := runRoot(t, append([]string{"streams", "list", "--trait", "n=2", "--count"}, common...)...); strings.TrimSpace(out) != "0" {
		t.Errorf("a string 2 matched an int 2: count %q", out)
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
