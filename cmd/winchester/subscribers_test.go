package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/subscriber"
)

func TestSubscribersCommands(t *testing.T) {
	dir := writeFiles(t, map[string]string{"winchester.yaml": `log_level: error
database: {url: 'sqlite:///w.db'}
subscribers:
  audit:
    handler: webhook
    params: {url: "https://example.com/in"}
  old:
    handler: gone
    enabled: false
`})
	cfgPath := filepath.Join(dir, "winchester.yaml")
	cfg, err := winchester.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := winchester.Open(t.Context(), cfg, winchester.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ss := eng.Store.(subscriber.Store)
	if _, err := ss.CreateSubscriber(t.Context(), "audit", time.Now()); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var evs []stream.Event
	for _, id := range []string{"m1", "m2", "m3"} {
		evs = append(evs, stream.Event{MessageID: id, Type: "x.y", Timestamp: ts, Traits: map[string]stream.Value{}})
	}
	if _, err := eng.Manager.AddEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	m2, _ := ss.EventByMessageID(t.Context(), "m2")
	if _, err := ss.UpdateSubscriber(t.Context(), db.UpdateSubscriberParams{Name: "audit", Now: time.Now(), Failures: 2, LastError: "503 from receiver",
		DeadLetters: []db.DeadLetter{{EventID: m2.ID, MessageID: "m2", EventType: "x.y", Attempts: 2, Error: "503 from receiver"}}}); err != nil {
		t.Fatal(err)
	}
	eng.Close()

	out, _, err := runRoot(t, "subscribers", "list", "-c", cfgPath)
	if err != nil {
		t.Fatalf("subscribers list: %v", err)
	}
	for _, want := range []string{"NAME", "audit", "webhook", "idle", "503 from receiver", "old", "disabled"} {
		if !strings.Contains(out, want) {
			t.Errorf("subscribers list lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runRoot(t, "subscribers", "list", "-c", cfgPath, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &row); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	if row["name"] != "audit" || row["lag"] != 3.0 || row["dead_letters"] != 1.0 || row["configured"] != true {
		t.Errorf("list -o json first row = %v", row)
	}
	out, _, err = runRoot(t, "subscribers", "show", "audit", "-c", cfgPath)
	if err != nil || !strings.Contains(out, "DEAD LETTER") || !strings.Contains(out, "m2") {
		t.Fatalf("subscribers show = %v\n%s", err, out)
	}
	if _, _, err := runRoot(t, "subscribers", "show", "nobody", "-c", cfgPath); err == nil || !strings.Contains(err.Error(), `no subscriber "nobody"`) {
		t.Errorf("show of an unknown subscriber: %v", err)
	}
	for _, bad := range [][]string{
		{"subscribers", "retry", "audit"},
		{"subscribers", "retry", "audit", "1", "--all"},
		{"subscribers", "retry", "audit", "x"},
		{"subscribers", "skip", "audit"},
		{"subscribers", "skip", "audit", "--to-end", "--to-start"},
	} {
		if _, _, err := runRoot(t, append(bad, "-c", cfgPath)...); err == nil {
			t.Errorf("%v succeeded", bad)
		}
	}
	out, _, err = runRoot(t, "subscribers", "retry", "audit", "--all", "-c", cfgPath)
	if err != nil || !strings.Contains(out, "1 dead letter(s) of audit marked for retry") {
		t.Errorf("retry --all = %v: %s", err, out)
	}
	out, _, err = runRoot(t, "subscribers", "skip", "audit", "--to", strconv.FormatInt(m2.ID, 10), "-c", cfgPath)
	if err != nil || !strings.Contains(out, "position moved to event "+strconv.FormatInt(m2.ID, 10)) {
		t.Errorf("skip --to = %v: %s", err, out)
	}
	out, _, err = runRoot(t, "subscribers", "show", "audit", "-c", cfgPath, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var shown map[string]any
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("show -o json: %v\n%s", err, out)
	}
	if shown["lag"] != 1.0 || len(shown["dead_letter_list"].([]any)) != 1 {
		t.Errorf("after skip: %v", shown)
	}
	if _, _, err := runRoot(t, "subscribers", "skip", "old", "--to-end", "-c", cfgPath); err == nil {
		t.Error("skip of a subscriber without state succeeded")
	}
}

// TestHorizonLine: while delivery waits for the snapshot horizon, list's
// state and show's line say so, since when and by which transaction.
func TestHorizonLine(t *testing.T) {
	now := time.Date(2026, 12, 3, 14, 5, 0, 0, time.UTC)
	since := now.Add(-3*time.Minute - 12*time.Second)
	row := subscriberRow{Report: subscriber.Report{Name: "audit", State: "delivering",
		HorizonWait: &subscriber.HorizonReport{HeldBack: 57, Since: &since, Holder: "pid 4242 (idle in transaction, application psql)"}},
		Configured: true, Enabled: true}
	if got, want := subscriberState(row), "delivering, waits for horizon"; got != want {
		t.Errorf("state = %q, want %q", got, want)
	}
	want := "delivery waits for the snapshot horizon since 2026-12-03 14:01:48 (3m12s): 57 committed event(s) are held back until the transaction of pid 4242 (idle in transaction, application psql) ends"
	if got := horizonLine(row, now); got != want {
		t.Errorf("horizonLine =\n%s\nwant\n%s", got, want)
	}
	row.HorizonWait.Since, row.HorizonWait.Holder = nil, ""
	want = "delivery waits for the snapshot horizon since an unknown time: 57 committed event(s) are held back until a transaction ends"
	if got := horizonLine(row, now); got != want {
		t.Errorf("horizonLine without a holder =\n%s\nwant\n%s", got, want)
	}
	row.HorizonWait = nil
	if got := horizonLine(row, now); got != "" || subscriberState(row) != "delivering" {
		t.Errorf("without a wait: line %q, state %q; want none, delivering", got, subscriberState(row))
	}
}
