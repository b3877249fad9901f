package dbtest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// definitionStore returns the store's db.DefinitionStore, failing the
// test when the driver does not implement it (both drivers do).
func definitionStore(t *testing.T, s db.Store) db.DefinitionStore {
	t.Helper()
	ds, ok := s.(db.DefinitionStore)
	if !ok {
		t.Fatalf("%T does not implement db.DefinitionStore", s)
	}
	return ds
}

func newVersion(digest string, now time.Time, changes ...db.StreamChange) db.NewDefinitionVersion {
	return db.NewDefinitionVersion{
		Digest: digest, Triggers: "- name: " + digest + "\n", TriggerFile: "triggers.yaml",
		Pipelines: "p: []\n", PipelineFile: "pipelines.yaml", Source: "test", Changes: changes, Now: now,
	}
}

func exerciseDefinitions(t *testing.T, open OpenFunc) {
	t.Run("SaveAndRead", func(t *testing.T) {
		t.Parallel()
		ds := definitionStore(t, open(t))
		ctx := t.Context()
		if _, _, err := ds.LatestDefinitionVersion(ctx); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("LatestDefinitionVersion(empty) = %v, want ErrNotFound", err)
		}
		if _, err := ds.DefinitionVersion(ctx, 1); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("DefinitionVersion(1) of none = %v, want ErrNotFound", err)
		}
		v1, created, _, err := ds.SaveDefinitionVersion(ctx, newVersion("a", base))
		if err != nil || !created || v1.Version != 1 {
			t.Fatalf("SaveDefinitionVersion(a) = %d, %v, %v; want version 1 created", v1.Version, created, err)
		}
		want := db.DefinitionVersion{Version: 1, Digest: "a", Triggers: "- name: a\n", TriggerFile: "triggers.yaml",
			Pipelines: "p: []\n", PipelineFile: "pipelines.yaml", Source: "test", CreatedAt: base}
		if diff := cmp.Diff(want, v1); diff != "" {
			t.Errorf("saved version (-want +got):\n%s", diff)
		}
		got, err := ds.DefinitionVersion(ctx, 1)
		if err != nil {
			t.Fatalf("DefinitionVersion(1): %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("DefinitionVersion(1) (-want +got):\n%s", diff)
		}
		// The same digest again stores nothing.
		same, created, _, err := ds.SaveDefinitionVersion(ctx, newVersion("a", at(time.Hour)))
		if err != nil || created || same.Version != 1 {
			t.Fatalf("SaveDefinitionVersion(a again) = %d, %v, %v; want version 1, not created", same.Version, created, err)
		}
		v2, created, _, err := ds.SaveDefinitionVersion(ctx, newVersion("b", at(time.Hour)))
		if err != nil || !created || v2.Version != 2 {
			t.Fatalf("SaveDefinitionVersion(b) = %d, %v, %v; want version 2 created", v2.Version, created, err)
		}
		// An older digest is a new version: a rollback.
		v3, created, _, err := ds.SaveDefinitionVersion(ctx, newVersion("a", at(2*time.Hour)))
		if err != nil || !created || v3.Version != 3 {
			t.Fatalf("SaveDefinitionVersion(a after b) = %d, %v, %v; want version 3 created", v3.Version, created, err)
		}
		version, digest, err := ds.LatestDefinitionVersion(ctx)
		if err != nil || version != 3 || digest != "a" {
			t.Fatalf("LatestDefinitionVersion = %d, %q, %v; want 3, a", version, digest, err)
		}
		list, err := ds.DefinitionVersions(ctx, 0)
		if err != nil {
			t.Fatalf("DefinitionVersions: %v", err)
		}
		var versions []int64
		for _, v := range list {
			if v.Triggers != "" || v.Pipelines != "" {
				t.Errorf("DefinitionVersions: version %d has its texts", v.Version)
			}
			versions = append(versions, v.Version)
		}
		if diff := cmp.Diff([]int64{3, 2, 1}, versions); diff != "" {
			t.Errorf("DefinitionVersions (-want +got):\n%s", diff)
		}
		if list, _ := ds.DefinitionVersions(ctx, 1); len(list) != 1 || list[0].Version != 3 {
			t.Errorf("DefinitionVersions(limit 1) = %v, want version 3 only", list)
		}
	})

	t.Run("ConcurrentSavers", func(t *testing.T) {
		t.Parallel()
		ds := definitionStore(t, open(t))
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Two digests, each saved twice at once: every save
				// sees the others, so versions are 1..k without gaps
				// or duplicates.
				_, _, _, errs[i] = ds.SaveDefinitionVersion(t.Context(), newVersion(fmt.Sprint(i%2), base))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("saver %d: %v", i, err)
			}
		}
		list, err := ds.DefinitionVersions(t.Context(), 0)
		if err != nil {
			t.Fatalf("DefinitionVersions: %v", err)
		}
		for i, v := range list {
			if want := int64(len(list) - i); v.Version != want {
				t.Errorf("version %d at position %d, want %d", v.Version, i, want)
			}
			if i > 0 && list[i-1].Digest == v.Digest {
				t.Errorf("versions %d and %d have the same digest %q", v.Version, list[i-1].Version, v.Digest)
			}
		}
	})

	t.Run("StreamVersionAndChanges", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ds := definitionStore(t, s)
		ctx := t.Context()
		if _, _, _, err := ds.SaveDefinitionVersion(ctx, newVersion("a", base)); err != nil {
			t.Fatalf("save: %v", err)
		}
		dist := func(i int) map[string]stream.Value { return map[string]stream.Value{"k": stream.Int(int64(i))} }
		fireOld := create(t, s, streamSpec{name: "f", dist: dist(1), expire: at(time.Hour), counts: []int{0}, version: 1})
		expireOld := create(t, s, streamSpec{name: "e", dist: dist(1), expire: at(time.Hour), counts: []int{0}, version: 1})
		ready := create(t, s, streamSpec{name: "f", dist: dist(2), expire: at(time.Hour), fire: at(time.Minute), version: 1})
		other := create(t, s, streamSpec{name: "k", dist: dist(1), expire: at(time.Hour), counts: []int{0}, version: 1})
		if got := streamByID(t, s, fireOld).DefinitionVersion; got != 1 {
			t.Fatalf("stream's definition version = %d, want 1", got)
		}
		now := at(10 * time.Minute)
		v, created, changed, err := ds.SaveDefinitionVersion(ctx, newVersion("b", now,
			db.StreamChange{Trigger: "f", Action: db.Fire}, db.StreamChange{Trigger: "e", Action: db.Expire}))
		if err != nil || !created || changed != 2 {
			t.Fatalf("SaveDefinitionVersion(b with changes) = %d, %v, %d, %v; want created, 2 streams changed", v.Version, created, changed, err)
		}
		// Made for version 2 after the change: not touched by a later one.
		newer := create(t, s, streamSpec{name: "f", dist: dist(1), expire: at(time.Hour), counts: []int{0}, version: 2})

		f := streamByID(t, s, fireOld)
		if f.Open || !f.FireTimestamp.Equal(now) || f.FireCounts != nil || f.State != stream.StateActive {
			t.Errorf("fired stream: open %v, fire %v, counts %v, state %s; want closed, ready to fire at %v", f.Open, f.FireTimestamp, f.FireCounts, f.State, now)
		}
		e := streamByID(t, s, expireOld)
		if e.Open || !e.ExpireTimestamp.Equal(now) || !e.FireTimestamp.IsZero() {
			t.Errorf("expired stream: open %v, expire %v, fire %v; want closed, expiring at %v", e.Open, e.ExpireTimestamp, e.FireTimestamp, now)
		}
		if r := streamByID(t, s, ready); !r.FireTimestamp.Equal(at(time.Minute)) || !r.Open {
			t.Errorf("stream ready to fire changed: fire %v, open %v", r.FireTimestamp, r.Open)
		}
		if o := streamByID(t, s, other); !o.Open || !o.FireTimestamp.IsZero() || !o.ExpireTimestamp.Equal(at(time.Hour)) {
			t.Errorf("stream of another trigger changed: %+v", o)
		}
		if _, _, changed, err := ds.SaveDefinitionVersion(ctx, newVersion("c", now, db.StreamChange{Trigger: "f", Action: db.Fire})); err != nil || changed != 1 {
			t.Fatalf("SaveDefinitionVersion(c) changed %d streams, %v; want 1 (the stream of version 2)", changed, err)
		}
		if n := streamByID(t, s, newer); n.FireTimestamp.IsZero() || n.DefinitionVersion != 2 {
			t.Errorf("stream of version 2: fire %v, version %d", n.FireTimestamp, n.DefinitionVersion)
		}
	})
}
