package conformance

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

func init() { registerArea("trigger_manager.yaml") }

// tmCase is one trigger_manager.yaml scenario.
type tmCase struct {
	Name   string `yaml:"name"`
	Config struct {
		Triggers  yaml.Node `yaml:"triggers"`
		Pipelines yaml.Node `yaml:"pipelines"`
		Purge     *bool     `yaml:"purge_completed_streams"`
	} `yaml:"config"`
	Steps       []tmStep `yaml:"steps"`
	Recommended struct {
		LoadError string `yaml:"load_error"`
	} `yaml:"recommended"`
}

type tmStep struct {
	Now       string         `yaml:"now"`
	AddEvent  map[string]any `yaml:"add_event"`
	RunWorker *struct {
		BatchSize int `yaml:"batch_size"`
	} `yaml:"run_worker"`
	ResetStream   int       `yaml:"reset_stream"`
	DeleteTrigger string    `yaml:"delete_trigger"`
	Expect        yaml.Node `yaml:"expect"`
	Recommended   yaml.Node `yaml:"recommended"`
}

// tmExpect is a step's expected outcome; nil fields are not asserted.
type tmExpect struct {
	Saved          *bool           `yaml:"saved"`
	LoadedFire     *int            `yaml:"loaded_fire"`
	LoadedExpire   *int            `yaml:"loaded_expire"`
	FireAttempts   *[]tmAttempt    `yaml:"fire_attempts"`
	ExpireAttempts *[]tmAttempt    `yaml:"expire_attempts"`
	Journal        *[]journalEntry `yaml:"journal"`
	Streams        *[]tmStreamYAML `yaml:"streams"`
	Error          map[string]any  `yaml:"error"`
}

type tmAttempt struct {
	Stream int  `yaml:"stream"`
	Result bool `yaml:"result"`
}

type tmStreamYAML struct {
	Stream          int            `yaml:"stream"`
	Name            string         `yaml:"name"`
	State           string         `yaml:"state"`
	StateSerialNo   int64          `yaml:"state_serial_no"`
	DistinguishedBy map[string]any `yaml:"distinguished_by"`
	FirstEvent      *string        `yaml:"first_event"`
	LastEvent       *string        `yaml:"last_event"`
	ExpireTimestamp *string        `yaml:"expire_timestamp"`
	FireTimestamp   *string        `yaml:"fire_timestamp"`
	Events          []*string      `yaml:"events"`
}

// tmStreamView is the comparable form of a stream row.
type tmStreamView struct {
	Stream                    int
	Name, State               string
	Serial                    int64
	Dist                      map[string]string // value keys (typed)
	First, Last, Expire, Fire string
	Events                    []string
}

// settableClock is the one clock of a scenario.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func TestTriggerManager(t *testing.T) {
	for _, so := range storeOpeners {
		open := so.open
		t.Run(so.name, func(t *testing.T) {
			runFile(t, "trigger_manager.yaml", func(t *testing.T, c *vectorCase) {
				t.Parallel()
				var tc tmCase
				c.decode(t, &tc)
				runScenario(t, &tc, open)
			})
		})
	}
}

func runScenario(t *testing.T, tc *tmCase, open func(t *testing.T) db.Store) {
	ctx := t.Context()
	j := &journal{}
	reg := newTestRegistry(t, j)

	defs, loadErr := loadScenarioConfig(tc, reg)
	if tc.Recommended.LoadError != "" {
		if loadErr.err == nil {
			t.Fatalf("configuration loaded, want load error of kind %s", tc.Recommended.LoadError)
		}
		if loadErr.kind != tc.Recommended.LoadError {
			t.Errorf("load error kind = %s (%v), want %s", loadErr.kind, loadErr.err, tc.Recommended.LoadError)
		}
		return
	}
	if loadErr.err != nil {
		t.Fatalf("load configuration: %v", loadErr.err)
	}

	store := open(t)
	clock := &settableClock{}
	mgr, err := trigger.NewManager(store, defs.triggers, trigger.ManagerConfig{Clock: clock, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	purge := tc.Config.Purge == nil || *tc.Config.Purge

	ordinals := map[int64]int{}
	ordinalOf := func(id int64) int {
		if o, ok := ordinals[id]; ok {
			return o
		}
		return -int(id)
	}
	j.Ordinal = ordinalOf
	idOf := func(ord int) int64 {
		for id, o := range ordinals {
			if o == ord {
				return id
			}
		}
		t.Fatalf("no stream with ordinal %d", ord)
		return 0
	}
	// register assigns ordinals to streams seen for the first time, in id
	// (creation) order.
	register := func() {
		all, err := store.FindStreams(ctx, db.FindStreamsParams{Mark: "+"})
		if err != nil {
			t.Fatalf("FindStreams: %v", err)
		}
		for _, fs := range all {
			if _, ok := ordinals[fs.Stream.ID]; !ok {
				ordinals[fs.Stream.ID] = len(ordinals) + 1
			}
		}
	}

	for i, step := range tc.Steps {
		now, err := stream.ParseTime(step.Now)
		if err != nil {
			t.Fatalf("step %d: now: %v", i+1, err)
		}
		clock.set(now)
		want := step.Expect
		if step.Recommended.Kind != 0 {
			want = step.Recommended
		}
		var exp tmExpect
		if err := want.Decode(&exp); err != nil {
			t.Fatalf("step %d: decode expect: %v", i+1, err)
		}
		if exp.Error != nil && step.Recommended.Kind == 0 {
			t.Fatalf("step %d: the vector expects a crash and gives no recommended outcome", i+1)
		}
		label := fmt.Sprintf("step %d", i+1)
		switch {
		case step.AddEvent != nil:
			res, err := mgr.AddEventMap(ctx, step.AddEvent)
			if err != nil {
				t.Fatalf("%s: AddEventMap: %v", label, err)
			}
			register()
			if exp.Saved != nil && (res.Outcome == trigger.Stored) != *exp.Saved {
				t.Errorf("%s: saved = %v (%s %s), want %v", label, res.Outcome == trigger.Stored, res.Outcome, res.Reason, *exp.Saved)
			}
		case step.RunWorker != nil:
			w, err := pipeline.NewWorker(store, defs.pipelines, lookupIn(mgr), feedInto(mgr), pipeline.WorkerConfig{
				BatchSize: step.RunWorker.BatchSize, Purge: purge, Clock: clock, Logger: testLogger(t),
			})
			if err != nil {
				t.Fatalf("%s: NewWorker: %v", label, err)
			}
			res, err := w.Pass(ctx, ctx)
			if err != nil {
				t.Fatalf("%s: worker pass: %v", label, err)
			}
			register()
			checkPass(t, label, exp, res, ordinalOf, j)
		case step.ResetStream != 0:
			if _, err := store.ResetStream(ctx, idOf(step.ResetStream)); err != nil {
				t.Fatalf("%s: ResetStream: %v", label, err)
			}
		case step.DeleteTrigger != "":
			if !mgr.DeleteDefinition(step.DeleteTrigger) {
				t.Fatalf("%s: DeleteDefinition(%q): not found", label, step.DeleteTrigger)
			}
		default:
			t.Fatalf("%s: unknown action", label)
		}
		if step.RunWorker == nil {
			j.take()
		}
		if exp.Streams != nil {
			checkStreams(t, label, ctx, store, *exp.Streams, ordinalOf)
		}
	}
}

type scenarioDefs struct {
	triggers  []*trigger.Definition
	pipelines *pipeline.Definitions
}

type loadError struct {
	kind string
	err  error
}

func loadScenarioConfig(tc *tmCase, reg *pipeline.Registry) (scenarioDefs, loadError) {
	var out scenarioDefs
	tdata, err := yaml.Marshal(&tc.Config.Triggers)
	if err != nil {
		return out, loadError{"internal", err}
	}
	defs, _, err := trigger.Parse("triggers.yaml", tdata)
	if err != nil {
		return out, loadError{"definition", err}
	}
	pdata, err := yaml.Marshal(&tc.Config.Pipelines)
	if err != nil {
		return out, loadError{"internal", err}
	}
	pdefs, err := pipeline.Parse("pipelines.yaml", pdata, reg)
	if err != nil {
		return out, loadError{"config", err}
	}
	if err := trigger.CheckPipelines(defs, func(name string) bool { _, ok := pdefs.Pipeline(name); return ok }); err != nil {
		return out, loadError{"config", err}
	}
	out.triggers, out.pipelines = defs, pdefs
	return out, loadError{}
}

func lookupIn(m *trigger.Manager) pipeline.LookupFunc {
	return func(name string) (string, string, bool) {
		d, ok := m.Definition(name)
		if !ok {
			return "", "", false
		}
		return d.FirePipeline, d.ExpirePipeline, true
	}
}

func feedInto(m *trigger.Manager) pipeline.FeedFunc {
	return func(ctx context.Context, tx db.Ops, events []stream.Event) error {
		_, err := m.AddEventsTx(ctx, tx, events)
		return err
	}
}

func checkPass(t *testing.T, label string, exp tmExpect, res pipeline.PassResult, ordinalOf func(int64) int, j *journal) {
	t.Helper()
	if exp.LoadedFire != nil && *exp.LoadedFire != res.LoadedFire {
		t.Errorf("%s: loaded_fire = %d, want %d", label, res.LoadedFire, *exp.LoadedFire)
	}
	if exp.LoadedExpire != nil && *exp.LoadedExpire != res.LoadedExpire {
		t.Errorf("%s: loaded_expire = %d, want %d", label, res.LoadedExpire, *exp.LoadedExpire)
	}
	var fire, expire []tmAttempt
	for _, a := range res.Attempts {
		at := tmAttempt{Stream: ordinalOf(a.StreamID), Result: a.OK}
		if a.Action == db.Fire {
			fire = append(fire, at)
		} else {
			expire = append(expire, at)
		}
	}
	byStream := func(as []tmAttempt) []tmAttempt {
		as = slices.Clone(as)
		sort.SliceStable(as, func(i, k int) bool { return as[i].Stream < as[k].Stream })
		return as
	}
	if exp.FireAttempts != nil {
		if d := cmp.Diff(byStream(*exp.FireAttempts), byStream(fire), cmpEmpty); d != "" {
			t.Errorf("%s: fire_attempts (-want +got):\n%s", label, d)
		}
	}
	if exp.ExpireAttempts != nil {
		if d := cmp.Diff(byStream(*exp.ExpireAttempts), byStream(expire), cmpEmpty); d != "" {
			t.Errorf("%s: expire_attempts (-want +got):\n%s", label, d)
		}
	}
	got := j.take()
	if exp.Journal != nil {
		if d := cmp.Diff(journalByStream(*exp.Journal), journalByStream(got), cmpEmpty); d != "" {
			t.Errorf("%s: journal (-want +got):\n%s", label, d)
		}
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.FilterValues(func(x, y any) bool {
	return isEmptySlice(x) && isEmptySlice(y)
}, cmp.Ignore())

func isEmptySlice(x any) bool {
	switch v := x.(type) {
	case []tmAttempt:
		return len(v) == 0
	case []journalEntry:
		return len(v) == 0
	case [][]journalEntry:
		return len(v) == 0
	case []string:
		return len(v) == 0
	}
	return false
}

// journalByStream cuts a journal into the runs of each stream (a run starts
// at a handle_events entry of another stream; commit and rollback entries
// belong to the run before them) and orders the runs by stream ordinal, so
// that passes processing several streams compare per stream.
func journalByStream(entries []journalEntry) [][]journalEntry {
	var runs [][]journalEntry
	cur := -1
	for _, e := range entries {
		if e.Op == "handle_events" && (e.Stream != cur || len(runs) == 0) {
			if e.Stream != cur || len(runs) == 0 {
				runs = append(runs, nil)
				cur = e.Stream
			}
		}
		if len(runs) == 0 {
			runs = append(runs, nil)
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], e)
	}
	sort.SliceStable(runs, func(i, k int) bool { return runStream(runs[i]) < runStream(runs[k]) })
	return runs
}

func runStream(run []journalEntry) int {
	for _, e := range run {
		if e.Stream != 0 {
			return e.Stream
		}
	}
	return 0
}

func checkStreams(t *testing.T, label string, ctx context.Context, store db.Store, want []tmStreamYAML, ordinalOf func(int64) int) {
	t.Helper()
	all, err := store.FindStreams(ctx, db.FindStreamsParams{Mark: "+", IncludeEvents: true})
	if err != nil {
		t.Fatalf("%s: FindStreams: %v", label, err)
	}
	got := make([]tmStreamView, 0, len(all))
	for _, fs := range all {
		s := fs.Stream
		v := tmStreamView{
			Stream: ordinalOf(s.ID), Name: s.Name, State: s.State.String(), Serial: s.SerialNo,
			Dist:  map[string]string{},
			First: timeText(s.FirstEvent), Last: timeText(s.LastEvent),
			Expire: timeText(s.ExpireTimestamp), Fire: timeText(s.FireTimestamp),
		}
		for k, val := range s.DistinguishedBy {
			v.Dist[k] = val.Key()
		}
		for _, ev := range fs.Events {
			v.Events = append(v.Events, ev.MessageID)
		}
		got = append(got, v)
	}
	sort.Slice(got, func(i, k int) bool { return got[i].Stream < got[k].Stream })

	exp := make([]tmStreamView, 0, len(want))
	for _, w := range want {
		v := tmStreamView{
			Stream: w.Stream, Name: w.Name, State: w.State, Serial: w.StateSerialNo,
			Dist:  map[string]string{},
			First: wantTime(t, w.FirstEvent), Last: wantTime(t, w.LastEvent),
			Expire: wantTime(t, w.ExpireTimestamp), Fire: wantTime(t, w.FireTimestamp),
		}
		for k, raw := range w.DistinguishedBy {
			val, err := stream.ValueOf(raw)
			if err != nil {
				v.Dist[k] = fmt.Sprintf("invalid(%v)", raw)
				continue
			}
			v.Dist[k] = val.Key()
		}
		for _, id := range w.Events {
			if id == nil {
				v.Events = append(v.Events, "<null>")
				continue
			}
			v.Events = append(v.Events, *id)
		}
		exp = append(exp, v)
	}
	sort.Slice(exp, func(i, k int) bool { return exp[i].Stream < exp[k].Stream })
	if d := cmp.Diff(exp, got, cmpEmpty); d != "" {
		t.Errorf("%s: streams (-want +got):\n%s", label, d)
	}
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "null"
	}
	return stream.FormatTime(t)
}

func wantTime(t *testing.T, s *string) string {
	t.Helper()
	if s == nil {
		return "null"
	}
	tm, err := stream.ParseTime(*s)
	if err != nil {
		t.Fatalf("vector time %q: %v", *s, err)
	}
	return stream.FormatTime(tm)
}
