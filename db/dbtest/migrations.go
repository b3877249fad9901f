package dbtest

import (
	"errors"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/winchester-go/winchester/db"
)

// MigratingDriver is a driver with the migration capability.
type MigratingDriver interface {
	db.Driver
	db.MigrationDriver
}

var migrationName = regexp.MustCompile(`^(\d{6})_[a-z0-9_]+\.(up|down)\.sql$`)

// headOf returns the newest version among a driver's migration files and
// checks their names: NNNNNN_title.up.sql with a .down.sql for each.
func headOf(t *testing.T, d db.MigrationDriver) int {
	t.Helper()
	entries, err := fs.ReadDir(d.Migrations(), ".")
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	ups, downs := map[string]bool{}, map[string]bool{}
	head := 0
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			t.Errorf("migration file %q is not named NNNNNN_title.up.sql or .down.sql", e.Name())
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".up.sql"), ".down.sql")
		if m[2] == "up" {
			ups[base] = true
		} else {
			downs[base] = true
		}
		v, _ := strconv.Atoi(m[1])
		head = max(head, v)
	}
	for b := range ups {
		if !downs[b] {
			t.Errorf("migration %s has no .down.sql", b)
		}
	}
	for b := range downs {
		if !ups[b] {
			t.Errorf("migration %s has a .down.sql but no .up.sql", b)
		}
	}
	if head == 0 {
		t.Fatalf("no migrations")
	}
	return head
}

// ExerciseMigrations runs the migration suite against a driver. newURL
// returns the URL of a fresh database without any schema (and arranges its
// cleanup); it is called once per subtest.
func ExerciseMigrations(t *testing.T, d MigratingDriver, newURL func(t *testing.T) string) {
	t.Helper()
	head := headOf(t, d)

	version := func(t *testing.T, url string) (uint, bool) {
		t.Helper()
		v, dirty, err := d.SchemaVersion(t.Context(), url)
		if err != nil {
			t.Fatalf("SchemaVersion: %v", err)
		}
		return v, dirty
	}
	openOK := func(t *testing.T, url string, opts db.Options) {
		t.Helper()
		s, err := d.Open(t.Context(), url, opts)
		if err != nil {
			t.Fatalf("Open(%+v): %v", opts, err)
		}
		if _, err := s.EventTypes(t.Context()); err != nil {
			t.Errorf("EventTypes on the opened store: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	openOutOfDate := func(t *testing.T, url string) {
		t.Helper()
		s, err := d.Open(t.Context(), url, db.Options{})
		if err == nil {
			s.Close()
			t.Fatalf("Open of an out-of-date schema succeeded")
		}
		if !errors.Is(err, db.ErrSchemaOutOfDate) || !strings.Contains(err.Error(), "upgrade head") {
			t.Errorf("Open of an out-of-date schema: %v; want db.ErrSchemaOutOfDate naming \"winchester_db … upgrade head\"", err)
		}
	}

	t.Run("UpDownUp", func(t *testing.T) {
		url := newURL(t)
		if v, dirty := version(t, url); v != 0 || dirty {
			t.Fatalf("fresh database at version %d (dirty %v), want 0", v, dirty)
		}
		openOutOfDate(t, url)
		if err := d.Migrate(t.Context(), url, db.Head); err != nil {
			t.Fatalf("Migrate(head): %v", err)
		}
		if v, dirty := version(t, url); v != uint(head) || dirty {
			t.Fatalf("after upgrade: version %d (dirty %v), want %d", v, dirty, head)
		}
		openOK(t, url, db.Options{})
		if err := d.Migrate(t.Context(), url, db.Head); err != nil {
			t.Errorf("Migrate(head) when up to date: %v, want no error", err)
		}
		if err := d.Migrate(t.Context(), url, 0); err != nil {
			t.Fatalf("Migrate(base): %v", err)
		}
		if v, _ := version(t, url); v != 0 {
			t.Fatalf("after downgrade to base: version %d, want 0", v)
		}
		openOutOfDate(t, url)
		// Every down undoes its up completely: upgrading again works.
		if err := d.Migrate(t.Context(), url, head); err != nil {
			t.Fatalf("Migrate(%d) after base: %v", head, err)
		}
		openOK(t, url, db.Options{})
	})

	t.Run("OpenMigrates", func(t *testing.T) {
		url := newURL(t)
		openOK(t, url, db.Options{Migrate: true})
		if v, _ := version(t, url); v != uint(head) {
			t.Errorf("version after Open with Migrate = %d, want %d", v, head)
		}
		openOK(t, url, db.Options{Migrate: true})
	})

	t.Run("ConcurrentUpgrades", func(t *testing.T) {
		url := newURL(t)
		errs := race(8, func(i int) error {
			if i%2 == 0 {
				return d.Migrate(t.Context(), url, db.Head)
			}
			s, err := d.Open(t.Context(), url, db.Options{Migrate: true})
			if err != nil {
				return err
			}
			return s.Close()
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("upgrade %d: %v", i, err)
			}
		}
		if v, dirty := version(t, url); v != uint(head) || dirty {
			t.Errorf("after concurrent upgrades: version %d (dirty %v), want %d", v, dirty, head)
		}
		openOK(t, url, db.Options{})
	})

	t.Run("Force", func(t *testing.T) {
		url := newURL(t)
		if err := d.Migrate(t.Context(), url, db.Head); err != nil {
			t.Fatalf("Migrate(head): %v", err)
		}
		if err := d.ForceVersion(t.Context(), url, head); err != nil {
			t.Fatalf("ForceVersion(%d): %v", head, err)
		}
		if v, dirty := version(t, url); v != uint(head) || dirty {
			t.Errorf("after force: version %d (dirty %v), want %d", v, dirty, head)
		}
		openOK(t, url, db.Options{})
	})

	t.Run("BadTarget", func(t *testing.T) {
		url := newURL(t)
		if err := d.Migrate(t.Context(), url, head+1); err == nil {
			t.Errorf("Migrate(%d) beyond the newest migration succeeded", head+1)
		}
	})
}
