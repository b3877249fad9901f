package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
)

// versionTimeout bounds the version lookup of upgrade --sql, which falls
// back to printing every migration when the database does not answer.
const versionTimeout = 5 * time.Second

func newUpgradeCmd(a *app) *cobra.Command {
	var sqlOnly bool
	cmd := &cobra.Command{
		Use:   "upgrade [head|N]",
		Short: "Apply the migrations up to head (the default) or version N",
		Long: `upgrade applies the pending migrations, up to the newest (head, the default)
or up to version N, and prints one progress line per run. A database that is
already there is not an error ("already at version N").

With --sql nothing is applied: the SQL of the pending migrations is printed
instead, for review or for a database administrator to run, followed by the
statements that record the new version. The current version is read if the
database answers (read-only); otherwise every migration from base is
printed.

A schema left dirty by a failed migration is refused: repair it by hand,
then record the version with "winchester_db force N".`,
		Example: `  winchester_db -c winchester.yaml upgrade
  winchester_db upgrade 1
  winchester_db upgrade --sql head`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := "head"
			if len(args) == 1 {
				target = args[0]
			}
			return a.upgrade(cmd.Context(), target, sqlOnly)
		},
	}
	cmd.Flags().BoolVar(&sqlOnly, "sql", false, "print the SQL of the pending migrations instead of applying them")
	return cmd
}

func newDowngradeCmd(a *app) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "downgrade N|base",
		Short: "Revert the migrations above version N (base: all of them)",
		Long: `downgrade reverts the applied migrations newer than version N, newest first.
"base" (or 0) reverts all of them and DROPS EVERY TABLE with its data, so
it is refused without --yes.`,
		Example: `  winchester_db downgrade 1
  winchester_db downgrade base --yes`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.downgrade(cmd.Context(), args[0], yes)
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "confirm a downgrade to base, which drops every table and its data")
	return cmd
}

// Exit statuses of version besides 0 (at head), 1 (error) and 2 (usage).
const (
	exitNotAtHead = 3 // behind (upgrade head) or ahead of this binary
	exitDirty     = 4 // the last migration failed half way
)

func newVersionCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "version",
		Aliases: []string{"current"},
		Short:   "Print the schema version of the database and the newest available",
		Long: `version prints the version of the database schema (0: no schema), whether
the last migration failed half way (dirty), and the newest version this
binary can apply. It only reads.

Exit status: 0 when the schema is at head, 3 when it is out of date (or
newer than this binary), 4 when it is dirty, 1 when the version cannot be
read, so that deployment scripts can wait for or refuse a schema:
  winchester_db version || winchester_db upgrade head`,
		Example: `  winchester_db version
  winchester_db version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usagef("--output %q: want text or json", output)
			}
			return a.version(cmd.Context(), output == "json")
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newForceCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "force N|base",
		Short: "Record version N as applied without running anything (repair)",
		Long: `force records version N as the applied, clean version without running any
migration. Use it after a migration failed half way (the version is
"dirty"): first finish or undo that migration's changes by hand, then force
the version the schema now really has, then upgrade again.`,
		Example: `  winchester_db force 1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.force(cmd.Context(), args[0])
		},
	}
}

// migration is one embedded migration version.
type migration struct {
	version uint
	name    string // "000001_init"
	up      string // file names
	down    string
}

// target resolves the database URL and its driver's migrations.
type target struct {
	url        string
	driver     db.MigrationDriver
	migrations []migration // ascending
}

func (t target) head() uint {
	if len(t.migrations) == 0 {
		return 0
	}
	return t.migrations[len(t.migrations)-1].version
}

// describe names a version: "000001_init", or "base" for 0.
func (t target) describe(v uint) string {
	if v == 0 {
		return "base"
	}
	for _, m := range t.migrations {
		if m.version == v {
			return m.name
		}
	}
	return "unknown"
}

// parseVersion reads "head", "base" or a known version number.
func (t target) parseVersion(arg string, allowHead bool) (uint, error) {
	switch arg {
	case "head":
		if allowHead {
			return t.head(), nil
		}
	case "base":
		return 0, nil
	default:
		n, err := strconv.ParseUint(arg, 10, 32)
		if err == nil && (n == 0 || slices.ContainsFunc(t.migrations, func(m migration) bool { return m.version == uint(n) })) {
			return uint(n), nil
		}
	}
	var known []string
	for _, m := range t.migrations {
		known = append(known, strconv.FormatUint(uint64(m.version), 10))
	}
	if allowHead {
		known = append(known, "head")
	}
	known = append(known, "base")
	return 0, usagef("unknown version %q (known: %s)", arg, strings.Join(known, ", "))
}

// resolve finds the database URL (flag > environment > config file) and
// the driver's migrations. A missing default config file is fine when the
// URL comes from the flag or the environment.
func (a *app) resolve() (target, error) {
	var t target
	flags := cli.Flags{ConfigFile: a.configFile, DatabaseURL: a.databaseURL}
	override := a.databaseURL
	if override == "" && a.getenv != nil {
		override = a.getenv(cli.EnvDatabaseURL)
	}
	_, statErr := os.Stat(a.configFile)
	if override != "" && !a.configSet() && errors.Is(statErr, fs.ErrNotExist) {
		cwd, err := os.Getwd()
		if err != nil {
			return t, err
		}
		if t.url, err = winchester.NormalizeDatabaseURL(override, cwd); err != nil {
			return t, err
		}
	} else {
		c, err := flags.Read(a.getenv)
		if err != nil {
			return t, err
		}
		if err := c.Validate(); err != nil {
			return t, err
		}
		t.url = c.DatabaseURL
	}
	d, err := db.DriverFor(t.url)
	if err != nil {
		return t, err
	}
	md, ok := d.(db.MigrationDriver)
	if !ok {
		return t, fmt.Errorf("the driver of %s has no migrations", winchester.MaskURL(t.url))
	}
	t.driver = md
	t.migrations, err = listMigrations(md.Migrations())
	return t, err
}

// listMigrations reads NNNNNN_title.{up,down}.sql names.
func listMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	byVersion := map[uint]*migration{}
	for _, e := range entries {
		name := e.Name()
		base, dir, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), ".")
		num, _, ok2 := strings.Cut(base, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || !ok2 || err != nil || v == 0 || (dir != "up" && dir != "down") {
			continue
		}
		m := byVersion[uint(v)]
		if m == nil {
			m = &migration{version: uint(v), name: base}
			byVersion[uint(v)] = m
		}
		if dir == "up" {
			m.up = name
		} else {
			m.down = name
		}
	}
	var out []migration
	for _, m := range byVersion {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b migration) int { return int(a.version) - int(b.version) })
	return out, nil
}

func (a *app) upgrade(ctx context.Context, arg string, sqlOnly bool) error {
	t, err := a.resolve()
	if err != nil {
		return err
	}
	to, err := t.parseVersion(arg, true)
	if err != nil {
		return err
	}
	if sqlOnly {
		return a.printSQL(ctx, t, to)
	}
	from, dirty, err := t.driver.SchemaVersion(ctx, t.url)
	if err != nil {
		return err
	}
	if dirty {
		return dirtyError(from)
	}
	switch {
	case from == to:
		fmt.Fprintf(a.out, "already at version %d (%s)\n", from, t.describe(from))
		return nil
	case from > to:
		return fmt.Errorf("the schema is at version %d (%s), newer than %d: use downgrade %d to go back", from, t.describe(from), to, to)
	}
	var names []string
	for _, m := range t.migrations {
		if m.version > from && m.version <= to {
			names = append(names, m.name)
		}
	}
	return a.migrate(ctx, t, "applying", names, to)
}

// printSQL prints the up files of the migrations after the database's
// version up to to, without changing anything. When the version cannot be
// read every migration from base is printed.
func (a *app) printSQL(ctx context.Context, t target, to uint) error {
	from, note := a.readOnlyVersion(ctx, t)
	fmt.Fprintf(a.out, "-- winchester_db upgrade --sql: %s, target version %d (%s)\n", note, to, t.describe(to))
	printed := 0
	for _, m := range t.migrations {
		if m.version <= from || m.version > to {
			continue
		}
		if m.up == "" {
			return fmt.Errorf("migration %s has no up file", m.name)
		}
		body, err := fs.ReadFile(t.driver.Migrations(), m.up)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", m.up, err)
		}
		fmt.Fprintf(a.out, "\n-- %s\n%s", m.up, body)
		if !strings.HasSuffix(string(body), "\n") {
			fmt.Fprintln(a.out)
		}
		printed++
	}
	if printed == 0 {
		fmt.Fprintln(a.out, "-- nothing to apply")
		return nil
	}
	// Like Alembic's offline mode: record the version, so that the engine
	// and winchester_db see the schema as migrated once this SQL has run.
	fmt.Fprintf(a.out, "\n-- record version %d in golang-migrate's table\n%s", to, fmt.Sprintf(recordVersionSQL, to))
	return nil
}

// recordVersionSQL records a clean schema version in golang-migrate's
// version table (the same table and columns for both drivers).
const recordVersionSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
DELETE FROM schema_migrations;
INSERT INTO schema_migrations (version, dirty) VALUES (%d, false);
`

// readOnlyVersion reads the schema version for --sql without creating
// anything: a SQLite file that does not exist (or an in-memory database)
// is not opened, and a database that does not answer is taken as empty.
func (a *app) readOnlyVersion(ctx context.Context, t target) (uint, string) {
	if winchester.IsSQLite(t.url) {
		path := strings.TrimPrefix(t.url, "sqlite://")
		path, _, _ = strings.Cut(path, "?")
		if t.url == winchester.SQLiteMemoryURL || strings.HasPrefix(t.url, winchester.SQLiteMemoryURL+"?") {
			return 0, "in-memory database, every migration from base"
		}
		if _, err := os.Stat(path); err != nil {
			return 0, "database file " + path + " does not exist, every migration from base"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	v, dirty, err := t.driver.SchemaVersion(ctx, t.url)
	if err != nil {
		return 0, fmt.Sprintf("could not read the schema version (%v), every migration from base", oneLine(err))
	}
	if dirty {
		return v, fmt.Sprintf("the database is at version %d but DIRTY (repair it and run winchester_db force %d first)", v, v)
	}
	return v, fmt.Sprintf("the database is at version %d (%s)", v, t.describe(v))
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

func (a *app) downgrade(ctx context.Context, arg string, yes bool) error {
	t, err := a.resolve()
	if err != nil {
		return err
	}
	to, err := t.parseVersion(arg, false)
	if err != nil {
		return err
	}
	if to == 0 && !yes {
		return usagef("downgrade %s drops every table of %s with its data: add --yes to confirm", arg, winchester.MaskURL(t.url))
	}
	from, dirty, err := t.driver.SchemaVersion(ctx, t.url)
	if err != nil {
		return err
	}
	if dirty {
		return dirtyError(from)
	}
	switch {
	case from == to:
		fmt.Fprintf(a.out, "already at version %d (%s)\n", from, t.describe(from))
		return nil
	case from < to:
		return fmt.Errorf("the schema is at version %d (%s), older than %d: use upgrade %d", from, t.describe(from), to, to)
	}
	var names []string
	for i := len(t.migrations) - 1; i >= 0; i-- {
		if m := t.migrations[i]; m.version > to && m.version <= from {
			names = append(names, m.name)
		}
	}
	return a.migrate(ctx, t, "reverting", names, to)
}

// migrate moves the schema to version to, printing what it does
// ("applying …" or "reverting …" the named migrations) and how long it took.
func (a *app) migrate(ctx context.Context, t target, verb string, names []string, to uint) error {
	fmt.Fprintf(a.out, "%s %s … ", verb, strings.Join(names, ", "))
	start := time.Now()
	if err := t.driver.Migrate(ctx, t.url, int(to)); err != nil {
		fmt.Fprintln(a.out, "failed")
		return err
	}
	fmt.Fprintf(a.out, "done in %s\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(a.out, "now at version %d (%s)\n", to, t.describe(to))
	return nil
}

// versionReport is the JSON form of version -o json.
type versionReport struct {
	Database    string `json:"database"`
	Version     uint   `json:"version"`
	Name        string `json:"name"`
	Dirty       bool   `json:"dirty"`
	Head        uint   `json:"head"`
	HeadName    string `json:"head_name"`
	Status      string `json:"status"` // up_to_date, out_of_date, newer, dirty
	Explanation string `json:"explanation"`
}

func (a *app) version(ctx context.Context, asJSON bool) error {
	t, err := a.resolve()
	if err != nil {
		return err
	}
	v, dirty, err := t.driver.SchemaVersion(ctx, t.url)
	if err != nil {
		return err
	}
	r := versionReport{
		Database: winchester.MaskURL(t.url), Version: v, Name: t.describe(v), Dirty: dirty,
		Head: t.head(), HeadName: t.describe(t.head()),
	}
	code := exitNotAtHead
	switch {
	case dirty:
		r.Status, code = "dirty", exitDirty
		r.Explanation = fmt.Sprintf("the last migration failed half way: repair the schema, then run winchester_db force %d", v)
	case v < t.head():
		r.Status, r.Explanation = "out_of_date", "out of date: run winchester_db upgrade head"
	case v > t.head():
		r.Status, r.Explanation = "newer", "the schema is newer than this binary: use a newer winchester_db"
	default:
		r.Status, r.Explanation, code = "up_to_date", "up to date", 0
	}
	if asJSON {
		enc := json.NewEncoder(a.out)
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.out, "database: %s\n", r.Database)
		state := ""
		if dirty {
			state = ", DIRTY"
		}
		fmt.Fprintf(a.out, "version: %d (%s%s)\n", v, r.Name, state)
		fmt.Fprintf(a.out, "head: %d (%s)\n", r.Head, r.HeadName)
		fmt.Fprintln(a.out, r.Explanation)
	}
	if code != 0 {
		return &exitError{code: code, quiet: true, err: errors.New(r.Explanation)}
	}
	return nil
}

func (a *app) force(ctx context.Context, arg string) error {
	t, err := a.resolve()
	if err != nil {
		return err
	}
	v, err := t.parseVersion(arg, false)
	if err != nil {
		return err
	}
	n := int(v)
	if v == 0 {
		n = -1 // golang-migrate's "no version"
	}
	if err := t.driver.ForceVersion(ctx, t.url, n); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "version forced to %d (%s); nothing was run\n", v, t.describe(v))
	return nil
}

func dirtyError(v uint) error {
	return fmt.Errorf("the schema is at version %d but dirty: the last migration failed half way; repair the schema by hand, then run `winchester_db force %d` (or force the previous version) and try again", v, v)
}
