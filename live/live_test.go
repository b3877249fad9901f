package live_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/sqlite"
	"github.com/winchester-go/winchester/live"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/pipeline/handlers"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var now = time.Date(2014, 8, 1, 12, 0, 0, 0, time.UTC)

func triggersText(name, fireType, onChange string) string {
	return `
- name: ` + name + `
  distinguished_by: [k]
  expiration: "$last + 1h"
  fire_pipeline: fire_p
  on_change: ` + onChange + `
  match_criteria:
  - event_type: "*"
  fire_criteria:
  - event_type: ` + fireType + `
    number: 2
`
}

func texts(triggers, pipelines string) live.Texts {
	return live.Texts{TriggerFile: "triggers.yaml", Triggers: triggers, PipelineFile: "pipelines.yaml", Pipelines: pipelines}
}

const pipes = "fire_p: [logger]\n"

type bundle struct {
	store *sqlite.Store
	reg   *pipeline.Registry
}

func setup(t *testing.T) bundle {
	t.Helper()
	s, err := sqlite.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "w.db"), db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	reg := pipeline.NewRegistry()
	handlers.RegisterBuiltins(reg)
	return bundle{store: s, reg: reg}
}

// process is one process's keeper over the bundle's store, with its own
// manager.
func (b bundle) process(t *testing.T, start string) (*live.Keeper, *trigger.Manager) {
	t.Helper()
	var k *live.Keeper
	mgr, err := trigger.NewManager(b.store, nil, trigger.ManagerConfig{
		Clock: fixedClock{now},
		VersionFunc: func(ctx context.Context, tx db.Ops, v int64) (*trigger.Set, error) {
			return k.TriggerSet(ctx, tx, v)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	k = live.New(b.store, b.reg, mgr, live.Config{Start: start, Clock: fixedClock{now}, Logger: dbtest.Logger(t)})
	return k, mgr
}

func TestStart(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	v1 := texts(triggersText("t", "a", "keep"), pipes)
	k, mgr := b.process(t, live.StartFromFiles)
	if err := k.Start(ctx, v1); err != nil {
		t.Fatalf("Start with an empty database: %v", err)
	}
	if k.Number() != 1 || mgr.Version() != 1 || len(mgr.Definitions()) != 1 {
		t.Fatalf("after the first start: keeper %d, manager %d with %d triggers; want version 1, 1 trigger", k.Number(), mgr.Version(), len(mgr.Definitions()))
	}
	// A second process with the same files makes no new version.
	k2, _ := b.process(t, live.StartFromFiles)
	if err := k2.Start(ctx, v1); err != nil || k2.Number() != 1 {
		t.Fatalf("second start with the same files = %d, %v; want version 1", k2.Number(), err)
	}
	// Files win: changed files are a new version.
	v2 := texts(triggersText("t", "b", "keep"), pipes)
	k3, _ := b.process(t, live.StartFromFiles)
	if err := k3.Start(ctx, v2); err != nil || k3.Number() != 2 {
		t.Fatalf("start with changed files (source files) = %d, %v; want version 2", k3.Number(), err)
	}
	// The database wins: the newest version runs, whatever the files.
	k4, mgr4 := b.process(t, live.StartFromDatabase)
	if err := k4.Start(ctx, v1); err != nil || k4.Number() != 2 {
		t.Fatalf("start with source database = %d, %v; want version 2", k4.Number(), err)
	}
	if d, _ := mgr4.Definition("t"); d.FireCriteria[0].Include[0] != "b" {
		t.Errorf("source database runs the files' trigger, not version 2's")
	}
	// The first process picks version 2 up on its next poll.
	changed, err := k.Refresh(ctx)
	if err != nil || !changed || mgr.Version() != 2 {
		t.Fatalf("Refresh = %v, %v, manager at %d; want version 2", changed, err, mgr.Version())
	}
	if changed, err := k.Refresh(ctx); err != nil || changed {
		t.Errorf("Refresh without a new version = %v, %v; want no change", changed, err)
	}
}

func TestApplyInvalidChangesNothing(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	k, mgr := b.process(t, live.StartFromFiles)
	if err := k.Start(ctx, texts(triggersText("t", "a", "keep"), pipes)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		texts live.Texts
		want  []string
	}{
		{
			name:  "bad trigger",
			texts: texts(triggersText("t", "a", "keep")+"- name: broken\n  fire_pipeline: fire_p\n", pipes),
			want:  []string{`triggers.yaml:12: trigger "broken": expiration: required field`},
		},
		{
			name:  "unknown pipeline",
			texts: texts(strings.ReplaceAll(triggersText("t", "a", "keep"), "fire_pipeline: fire_p", "fire_pipeline: nowhere"), pipes),
			want:  []string{`triggers.yaml:2: trigger "t"`, `fire_pipeline`, `"nowhere"`},
		},
		{
			name:  "unknown handler",
			texts: texts(triggersText("t", "a", "keep"), "fire_p: [no_such_handler]\n"),
			want:  []string{`pipelines.yaml:1:`, `no_such_handler`},
		},
		{
			name:  "bad on_change",
			texts: texts(triggersText("t", "a", "later"), pipes),
			want:  []string{`triggers.yaml:6: trigger "t": on_change: must be keep, expire or fire`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := k.Apply(ctx, tc.texts, live.SourceAPI, false)
			var inv *live.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Apply = %v, want an *InvalidError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Apply error lacks %q:\n%v", w, err)
				}
			}
			if latest, _, _ := b.store.LatestDefinitionVersion(ctx); latest != 1 || k.Number() != 1 || mgr.Version() != 1 {
				t.Errorf("after an invalid apply: stored %d, keeper %d, manager %d; want 1", latest, k.Number(), mgr.Version())
			}
		})
	}
}

func TestApplyDiffDryRunAndRollback(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	k, _ := b.process(t, live.StartFromFiles)
	v1 := texts(triggersText("t", "a", "keep"), pipes)
	if err := k.Start(ctx, v1); err != nil {
		t.Fatal(err)
	}
	v2 := texts(triggersText("t", "b", "keep")+triggersText("u", "a", "keep"),
		pipes+"other_p: [logger]\n")
	dry, err := k.Apply(ctx, v2, live.SourceCLI, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []live.Change{
		{Kind: "trigger", Name: "t", Change: "changed", Fields: []string{"fire_criteria"}, OnChange: "keep"},
		{Kind: "trigger", Name: "u", Change: "added"},
		{Kind: "pipeline", Name: "other_p", Change: "added"},
	}
	if diff := cmp.Diff(want, dry.Changes); diff != "" {
		t.Errorf("dry run changes (-want +got):\n%s", diff)
	}
	if latest, _, _ := b.store.LatestDefinitionVersion(ctx); dry.Created || dry.Version != 1 || latest != 1 {
		t.Fatalf("dry run stored something: %+v, latest %d", dry, latest)
	}
	res, err := k.Apply(ctx, v2, live.SourceCLI, false)
	if err != nil || !res.Created || res.Version != 2 || res.Previous != 1 {
		t.Fatalf("Apply = %+v, %v; want version 2 created", res, err)
	}
	if again, err := k.Apply(ctx, v2, live.SourceCLI, false); err != nil || again.Created || again.Version != 2 || len(again.Changes) != 0 {
		t.Errorf("Apply of the running texts = %+v, %v; want no new version, no changes", again, err)
	}
	back, err := k.Rollback(ctx, 1, false)
	if err != nil || !back.Created || back.Version != 3 {
		t.Fatalf("Rollback(1) = %+v, %v; want version 3", back, err)
	}
	shown, err := k.Show(ctx, 0)
	if err != nil || shown.Version != 3 || shown.Triggers != v1.Triggers || shown.Source != "rollback to 1" {
		t.Errorf("Show(newest) = version %d, source %q, %v; want version 3 with version 1's texts", shown.Version, shown.Source, err)
	}
	if _, err := k.Rollback(ctx, 9, false); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("Rollback(9) = %v, want ErrNotFound", err)
	}
	list, err := k.Versions(ctx, 0)
	if err != nil || len(list) != 3 {
		t.Errorf("Versions = %d, %v; want 3", len(list), err)
	}
}

// TestOnChange: a changed trigger's policy decides what becomes of its
// open streams of earlier versions.
func TestOnChange(t *testing.T) {
	for _, tc := range []struct {
		policy string
		check  func(t *testing.T, s stream.Stream)
	}{
		{"keep", func(t *testing.T, s stream.Stream) {
			if !s.Open || !s.FireTimestamp.IsZero() || !s.ExpireTimestamp.After(now) {
				t.Errorf("keep: stream %+v changed", s)
			}
		}},
		{"fire", func(t *testing.T, s stream.Stream) {
			if s.Open || !s.FireTimestamp.Equal(now) {
				t.Errorf("fire: stream open %v, fire %v; want closed, ready to fire at %v", s.Open, s.FireTimestamp, now)
			}
		}},
		{"expire", func(t *testing.T, s stream.Stream) {
			if s.Open || !s.ExpireTimestamp.Equal(now) || !s.FireTimestamp.IsZero() {
				t.Errorf("expire: stream open %v, expire %v; want closed, expiring at %v", s.Open, s.ExpireTimestamp, now)
			}
		}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			b := setup(t)
			ctx := t.Context()
			k, mgr := b.process(t, live.StartFromFiles)
			if err := k.Start(ctx, texts(triggersText("t", "a", "keep"), pipes)); err != nil {
				t.Fatal(err)
			}
			k1 := map[string]stream.Value{"k": stream.String("1")}
			if _, err := mgr.AddEvents(ctx, []stream.Event{{MessageID: "m1", Type: "a", Timestamp: now.Add(-time.Minute), Traits: k1}}); err != nil {
				t.Fatal(err)
			}
			res, err := k.Apply(ctx, texts(triggersText("t", "b", tc.policy), pipes), live.SourceAPI, false)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]int64{"keep": 0, "fire": 1, "expire": 1}[tc.policy]; res.StreamsChanged != want {
				t.Errorf("streams changed = %d, want %d", res.StreamsChanged, want)
			}
			found, err := b.store.FindStreams(ctx, db.FindStreamsParams{Name: "t"})
			if err != nil || len(found) != 1 {
				t.Fatalf("FindStreams = %d, %v", len(found), err)
			}
			tc.check(t, found[0].Stream)
		})
	}
}

// TestResolve: a stream runs the pipelines of the version it was created
// under; a stream without a version runs the current one's.
func TestResolve(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	k, _ := b.process(t, live.StartFromFiles)
	if err := k.Start(ctx, texts(triggersText("t", "a", "keep"), pipes)); err != nil {
		t.Fatal(err)
	}
	v2 := strings.ReplaceAll(triggersText("t", "a", "keep"), "fire_pipeline: fire_p", "fire_pipeline: second_p")
	if _, err := k.Apply(ctx, texts(v2, pipes+"second_p: [logger]\n"), live.SourceAPI, false); err != nil {
		t.Fatal(err)
	}
	// A second process that never ran version 1 reads it from the store.
	other, _ := b.process(t, live.StartFromDatabase)
	if err := other.Start(ctx, live.Texts{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		version int64
		want    string
	}{{1, "fire_p"}, {2, "second_p"}, {0, "fire_p"}} {
		res, ok, err := other.Resolve(ctx, stream.Stream{ID: 1, Name: "t", DefinitionVersion: tc.version})
		if err != nil || !ok || res.Fire != tc.want {
			t.Errorf("Resolve(version %d) = %q, %v, %v; want %s", tc.version, res.Fire, ok, err, tc.want)
			continue
		}
		if _, ok := res.Pipelines.Pipeline(tc.want); !ok {
			t.Errorf("Resolve(version %d): pipelines lack %s", tc.version, tc.want)
		}
	}
	if _, ok, err := other.Resolve(ctx, stream.Stream{Name: "gone", DefinitionVersion: 2}); ok || err != nil {
		t.Errorf("Resolve(unknown trigger) = %v, %v; want not found", ok, err)
	}
}

// TestStartFromChangedFiles: a process starting with changed files
// compares them with the newest version: its diff, and the on_change
// policies of the changed triggers, apply.
func TestStartFromChangedFiles(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	k, mgr := b.process(t, live.StartFromFiles)
	if err := k.Start(ctx, texts(triggersText("t", "a", "keep"), pipes)); err != nil {
		t.Fatal(err)
	}
	k1 := map[string]stream.Value{"k": stream.String("1")}
	if _, err := mgr.AddEvents(ctx, []stream.Event{{MessageID: "m1", Type: "a", Timestamp: now.Add(-time.Minute), Traits: k1}}); err != nil {
		t.Fatal(err)
	}
	restarted, _ := b.process(t, live.StartFromFiles)
	if err := restarted.Start(ctx, texts(triggersText("t", "b", "fire"), pipes)); err != nil {
		t.Fatal(err)
	}
	found, err := b.store.FindStreams(ctx, db.FindStreamsParams{Name: "t"})
	if err != nil || len(found) != 1 {
		t.Fatalf("FindStreams = %d, %v", len(found), err)
	}
	if s := found[0].Stream; s.Open || !s.FireTimestamp.Equal(now) {
		t.Errorf("stream of version 1 after a start with on_change: fire: open %v, fire %v; want closed, ready at %v", s.Open, s.FireTimestamp, now)
	}
}
