package trigger_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/internal/enginetest"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// versionTriggers is a trigger whose fire criterion is one event of type
// fireType, twice: only the criterion changes between versions, not
// their number.
func versionTriggers(fireType string) string {
	return fmt.Sprintf(`
- name: t
  distinguished_by: [k]
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria:
  - event_type: [a, b]
  fire_criteria:
  - event_type: %s
    number: 2
`, fireType)
}

func parseDefs(t *testing.T, text string) []*trigger.Definition {
	t.Helper()
	defs, _, err := trigger.Parse("triggers.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return defs
}

// TestManagerVersions: an open stream takes new events under the version
// it was created under, while new streams follow the new version; the
// criteria changed and their number did not. On both stores (PostgreSQL
// takes the batch path).
func TestManagerVersions(t *testing.T) {
	stores := map[string]func(t *testing.T) trigger.Store{
		"sqlite":   func(t *testing.T) trigger.Store { return enginetest.SQLite(t) },
		"postgres": func(t *testing.T) trigger.Store { return enginetest.Postgres(t) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open(t)
			ops := store.(db.Ops)
			v1 := parseDefs(t, versionTriggers("a"))
			v1set, err := trigger.NewSet(v1)
			if err != nil {
				t.Fatal(err)
			}
			var asked []int64
			m, err := trigger.NewManager(store, v1, trigger.ManagerConfig{
				Clock: fixedClock{now}, Version: 1,
				VersionFunc: func(_ context.Context, _ db.Ops, v int64) (*trigger.Set, error) {
					asked = append(asked, v)
					if v != 1 {
						return nil, fmt.Errorf("no version %d", v)
					}
					return v1set, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			k := func(v string) map[string]stream.Value { return map[string]stream.Value{"k": stream.String(v)} }
			add := func(id, typ, key string) {
				t.Helper()
				if _, err := m.AddEvents(ctx, []stream.Event{ev(id, typ, k(key))}); err != nil {
					t.Fatalf("AddEvents(%s): %v", id, err)
				}
			}
			open1 := func(key string) stream.Stream {
				t.Helper()
				s, err := ops.OpenStream(ctx, "t", stream.Key(k(key)))
				if err != nil {
					t.Fatalf("OpenStream(%s): %v", key, err)
				}
				return s
			}
			add("1", "a", "old")
			if s := open1("old"); s.DefinitionVersion != 1 || !cmp.Equal(s.FireCounts, []int{1}) {
				t.Fatalf("stream of version 1: version %d, counts %v; want 1, [1]", s.DefinitionVersion, s.FireCounts)
			}

			if err := m.SetDefinitions(2, parseDefs(t, versionTriggers("b"))); err != nil {
				t.Fatal(err)
			}
			if m.Version() != 2 {
				t.Fatalf("Version() = %d, want 2", m.Version())
			}
			// The old stream counts "a" under version 1 and is ready.
			add("2", "a", "old")
			old, err := ops.OpenStream(ctx, "t", stream.Key(k("old")))
			if err != nil {
				t.Fatal(err)
			}
			if old.FireTimestamp.IsZero() || old.DefinitionVersion != 1 {
				t.Errorf("stream of version 1 after a second a: fire %v, version %d; want ready to fire under version 1", old.FireTimestamp, old.DefinitionVersion)
			}
			if !cmp.Equal(asked, []int64{1}) {
				t.Errorf("VersionFunc asked for %v, want [1]", asked)
			}
			// A new stream follows version 2: "a" does not count, "b" does.
			add("3", "a", "new")
			add("4", "a", "new")
			s := open1("new")
			if s.DefinitionVersion != 2 || !s.FireTimestamp.IsZero() || !cmp.Equal(s.FireCounts, []int{0}) {
				t.Errorf("stream of version 2 after two a: version %d, fire %v, counts %v; want 2, not ready, [0]", s.DefinitionVersion, s.FireTimestamp, s.FireCounts)
			}
			add("5", "b", "new")
			add("6", "b", "new")
			if s := open1("new"); s.FireTimestamp.IsZero() {
				t.Errorf("stream of version 2 after two b: not ready to fire (counts %v)", s.FireCounts)
			}
		})
	}
}

// TestManagerVersionsWithoutVersionFunc: without the old version's
// definition, an open stream of another version is recounted under the
// current one, even when the number of criteria is the same: counts built
// under other criteria are never reused.
func TestManagerVersionsWithoutVersionFunc(t *testing.T) {
	m, store := newManager(t)
	if err := m.SetDefinitions(1, parseDefs(t, versionTriggers("a"))); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	k := map[string]stream.Value{"k": stream.String("x")}
	if _, err := m.AddEvents(ctx, []stream.Event{ev("1", "a", k)}); err != nil {
		t.Fatal(err)
	}
	if err := m.SetDefinitions(2, parseDefs(t, versionTriggers("b"))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddEvents(ctx, []stream.Event{ev("2", "b", k)}); err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenStream(ctx, "t", stream.Key(k))
	if err != nil {
		t.Fatal(err)
	}
	// Recounted under "b": one b. Reusing the count of "a" would make it 2
	// and the stream ready.
	if !s.FireTimestamp.IsZero() || !cmp.Equal(s.FireCounts, []int{1}) {
		t.Errorf("stream after the change: fire %v, counts %v; want not ready, [1]", s.FireTimestamp, s.FireCounts)
	}
}

func TestDiff(t *testing.T) {
	base := `
- name: same
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria: [{event_type: a}]
  fire_criteria: [{event_type: a}]
- name: changed
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria: [{event_type: a}]
  fire_criteria: [{event_type: a, number: 2}]
- name: removed
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria: [{event_type: a}]
  fire_criteria: [{event_type: a}]
`
	next := `
- name: added
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria: [{event_type: a}]
  fire_criteria: [{event_type: a}]
- &c
  name: changed
  expiration: "$last + 2h"   # changed
  fire_pipeline: p
  on_change: expire
  match_criteria: [{event_type: a}]
  fire_criteria: [{event_type: b, number: 2}]
- name: same            # written differently, same values
  fire_pipeline: p
  expiration: "$last + 1h"
  match_criteria:
  - event_type: a
  fire_criteria:
  - {event_type: a}
`
	got := trigger.Diff(parseDefs(t, base), parseDefs(t, next))
	want := []trigger.Change{
		{Trigger: "added", Kind: trigger.Added},
		{Trigger: "changed", Kind: trigger.Changed, Fields: []string{"expiration", "fire_criteria", "on_change"}, OnChange: trigger.Expire},
		{Trigger: "removed", Kind: trigger.Removed},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
	if s := got[1].String(); s != "changed changed: expiration, fire_criteria, on_change (on_change: expire)" {
		t.Errorf("Change.String() = %q", s)
	}
	if d := trigger.Diff(parseDefs(t, base), parseDefs(t, base)); len(d) != 0 {
		t.Errorf("Diff(same, same) = %v, want none", d)
	}
}

func TestOnChange(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    trigger.ChangePolicy
		wantErr string
	}{
		{name: "default", value: "", want: trigger.Keep},
		{name: "keep", value: "on_change: keep", want: trigger.Keep},
		{name: "expire", value: "on_change: expire", want: trigger.Expire},
		{name: "fire", value: "on_change: fire", want: trigger.Fire},
		{name: "unknown", value: "on_change: drop", wantErr: `triggers.yaml:7: trigger "t": on_change: must be keep, expire or fire, not the string "drop"`},
		{name: "list", value: "on_change: [keep]", wantErr: "must be keep, expire or fire"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := `
- name: t
  expiration: "$last + 1h"
  fire_pipeline: p
  match_criteria: [{event_type: a}]
  fire_criteria: [{event_type: a}]
  ` + tc.value + "\n"
			defs, _, err := trigger.Parse("triggers.yaml", []byte(text))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%s) = %v, want an error containing %q", tc.value, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s): %v", tc.value, err)
			}
			if defs[0].OnChange != tc.want {
				t.Errorf("Parse(%s).OnChange = %s, want %s", tc.value, defs[0].OnChange, tc.want)
			}
		})
	}
}

// TestManagerVersionsLegacyStream: a stream created before versions
// (version 0) goes on under version 1's definition, the files it was
// created under, once the manager runs a later version.
func TestManagerVersionsLegacyStream(t *testing.T) {
	v1 := parseDefs(t, versionTriggers("a"))
	v1set, err := trigger.NewSet(v1)
	if err != nil {
		t.Fatal(err)
	}
	m, store := newManager(t)
	if err := m.SetDefinitions(0, v1); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	k := map[string]stream.Value{"k": stream.String("x")}
	if _, err := m.AddEvents(ctx, []stream.Event{ev("1", "a", k)}); err != nil {
		t.Fatal(err)
	}
	m2, err := trigger.NewManager(store, parseDefs(t, versionTriggers("b")), trigger.ManagerConfig{
		Clock: fixedClock{now}, Version: 2,
		VersionFunc: func(_ context.Context, _ db.Ops, v int64) (*trigger.Set, error) {
			if v != 1 {
				return nil, fmt.Errorf("asked for version %d, want 1", v)
			}
			return v1set, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.AddEvents(ctx, []stream.Event{ev("2", "a", k)}); err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenStream(ctx, "t", stream.Key(k))
	if err != nil {
		t.Fatal(err)
	}
	if s.DefinitionVersion != 0 || s.FireTimestamp.IsZero() {
		t.Errorf("legacy stream after a second a: version %d, fire %v; want version 0, ready under version 1's criteria", s.DefinitionVersion, s.FireTimestamp)
	}
}
