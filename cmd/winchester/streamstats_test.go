package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// streams stats counts from the database: per trigger and in all, by
// state, the ready backlog with its oldest deadline, and the streams in
// error; -o json gives the same figures.
func TestStreamsStats(t *testing.T) {
	dir := writeFiles(t, map[string]string{"winchester.yaml": "log_level: error\n"})
	common := []string{"-c", filepath.Join(dir, "winchester.yaml"), "--database-url", "sqlite:///" + filepath.Join(dir, "w.db")}

	out, errOut, err := runRoot(t, append([]string{"streams", "stats"}, common...)...)
	if err != nil || out != "" || !strings.Contains(errOut, "no streams") {
		t.Fatalf("streams stats of an empty database: %v\nstdout %q\nstderr %q", err, out, errOut)
	}

	s, err := db.Open(t.Context(), "sqlite://"+filepath.Join(dir, "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2014, 8, 1, 10, 0, 0, 0, time.UTC)
	future := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	mk := func(name string, fire, expire time.Time, states ...stream.State) {
		t.Helper()
		n++
		dist := map[string]stream.Value{"n": stream.Int(int64(n))}
		id, _, err := s.CreateStream(t.Context(), db.NewStream{Name: name, Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: t0, LastEvent: t0, FireTimestamp: fire, ExpireTimestamp: expire, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		var serial int64
		for _, st := range states {
			got, err := s.SetStreamState(t.Context(), db.SetStateParams{ID: id, SerialNo: serial, State: st})
			if err != nil {
				t.Fatalf("stream %d to %s: %v", id, st, err)
			}
			serial = got.SerialNo
		}
	}
	mk("usage", t0.Add(2*time.Hour), future)                                                   // ready to fire
	mk("usage", t0.Add(time.Hour), future)                                                     // ready to fire, the oldest
	mk("usage", time.Time{}, future)                                                           // waits
	mk("usage", t0, future, stream.StateFiring, stream.StateError)                             // in error
	mk("usage", t0, future, stream.StateFiring, stream.StateCompleted)                         // done
	mk("expiry", time.Time{}, t0.Add(3*time.Hour))                                             // ready to expire
	mk("expiry", time.Time{}, t0, stream.StateExpiring, stream.StateExpireError)               // in error
	mk("expiry", time.Time{}, t0, stream.StateExpiring, stream.StateExpireError)               // in error
	mk("expiry", time.Time{}, t0.Add(-time.Hour), stream.StateExpiring, stream.StateCompleted) // done
	s.Close()

	out, _, err = runRoot(t, append([]string{"streams", "stats"}, common...)...)
	if err != nil {
		t.Fatalf("streams stats: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("streams stats printed %d lines, want a header, expiry, usage and (all):\n%s", len(lines), out)
	}
	for i, want := range [][]string{
		{"TRIGGER", "STREAMS", "READY TO FIRE", "READY TO EXPIRE", "OLDEST READY", "IN ERROR", "BY STATE"},
		{"expiry  ", " 4 ", " 0 ", " 1 ", " 2 ", "active 1, expire_error 2, completed 1"},
		{"usage  ", " 5 ", " 2 ", " 0 ", " 1 ", "active 3, error 1, completed 1"},
		{"(all)  ", " 9 ", " 2 ", " 1 ", " 3 ", "active 4, error 1, expire_error 2, completed 2"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i+1, lines[i], w)
			}
		}
	}

	out, _, err = runRoot(t, append([]string{"streams", "stats", "-o", "json", "--trigger", "usage"}, common...)...)
	if err != nil {
		t.Fatalf("streams stats -o json: %v", err)
	}
	var report struct {
		Now      string
		Total    map[string]any
		Triggers []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("streams stats -o json: %v\n%s", err, out)
	}
	if len(report.Triggers) != 1 {
		t.Fatalf("--trigger usage gave %d triggers, want 1:\n%s", len(report.Triggers), out)
	}
	now, err := stream.ParseTime(report.Now)
	if err != nil {
		t.Fatalf("now %q: %v", report.Now, err)
	}
	wantAge := now.Sub(t0.Add(time.Hour)).Seconds()
	want := map[string]any{
		"trigger": "usage", "streams": 5.0, "states": map[string]any{"active": 3.0, "error": 1.0, "completed": 1.0},
		"ready_to_fire": 2.0, "ready_to_expire": 0.0, "in_error": 1.0,
		"oldest_ready_to_fire": stream.FormatTime(t0.Add(time.Hour)), "oldest_ready_seconds": wantAge,
	}
	if diff := cmp.Diff(want, report.Triggers[0]); diff != "" {
		t.Errorf("streams stats -o json, usage (-want +got):\n%s", diff)
	}
	delete(want, "trigger")
	if diff := cmp.Diff(want, report.Total); diff != "" {
		t.Errorf("streams stats -o json --trigger usage, total (-want +got):\n%s", diff)
	}
	if _, _, err := runRoot(t, append([]string{"streams", "stats", "-o", "yaml"}, common...)...); err == nil || !strings.Contains(fmt.Sprint(err), "text or json") {
		t.Errorf("streams stats -o yaml: %v, want an error naming text and json", err)
	}
}
