package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

func init() { subcommands = append(subcommands, newCheckCmd) }

// checkOptions are check's own flags.
type checkOptions struct {
	connect bool   // --connect: also open the database
	output  string // text or json
}

// connectTimeout bounds check --connect's attempt to reach the database.
const connectTimeout = 10 * time.Second

func newCheckCmd() *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check winchester.yaml and every file it names",
		Long: `check loads the configuration file and the trigger, pipeline and event
definition files it names, with the same loaders and overrides as the
pipeline worker. It prints a summary and exits 0, or lists every problem
found (each naming its file and line) and exits 1.

With --connect it also opens the database as the worker would: it must
answer, accept the configured user, and have the schema this binary needs
(PostgreSQL: winchester_db upgrade head; the SQLite default is created and
upgraded by the worker itself, so only its directory is checked when the
file does not exist yet). Without --connect the database is not touched.

-o json prints one JSON object: ok, summary, warnings and problems.`,
		Example: `  winchester check -c etc/winchester.yaml
  winchester check -c /etc/winchester/winchester.yaml --connect -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.output != "text" && o.output != "json" {
				return fmt.Errorf("--output %q: want text or json", o.output)
			}
			flags := cli.FlagsOf(cmd)
			return runCheck(cmd.Context(), cmd.OutOrStdout(), &flags, os.Getenv, o)
		},
	}
	cmd.Flags().BoolVar(&o.connect, "connect", false, "also connect to the database and check its schema version")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	cli.AddReadURLTo(cmd)
	return cmd
}

// checkReport collects what check found.
type checkReport struct {
	lines    [][2]string // summary: label, value
	problems []error
	warnings []string
	json     bool // print as JSON
}

func (r *checkReport) printJSON(w io.Writer) error {
	out := checkJSON{OK: len(r.problems) == 0, Summary: map[string]string{}, Warnings: r.warnings, Problems: []string{}}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	for _, l := range r.lines {
		out.Summary[strings.ReplaceAll(l[0], " ", "_")] = l[1]
	}
	for _, p := range r.problems {
		out.Problems = append(out.Problems, p.Error())
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	if len(r.problems) > 0 {
		return &exitError{code: 1, err: errors.New("configuration has " + count(len(r.problems), "problem"))}
	}
	return nil
}

func (r *checkReport) add(label, format string, args ...any) {
	r.lines = append(r.lines, [2]string{label, fmt.Sprintf(format, args...)})
}

func (r *checkReport) fail(err error) { r.problems = append(r.problems, flatten(err)...) }

// flatten splits joined errors into their parts.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func runCheck(ctx context.Context, w io.Writer, flags *cli.Flags, getenv func(string) string, o checkOptions) error {
	r := &checkReport{json: o.output == "json"}
	cfg, err := flags.Read(getenv)
	if err != nil {
		r.fail(err)
		return r.print(w)
	}
	r.warnings = append(r.warnings, cfg.Warnings...)
	r.add("configuration", "%s", cfg.File)
	valid := true
	if err := cfg.Validate(); err != nil {
		r.fail(err)
		valid = false
	}
	if cfg.DatabaseURL != "" {
		r.add("database", "%s", winchester.MaskURL(cfg.DatabaseURL))
		if o.connect && valid {
			r.connect(ctx, cfg.DatabaseURL)
		}
	}
	if cfg.ReadURL != "" {
		r.add("read replica", "%s", winchester.MaskURL(cfg.ReadURL))
		if o.connect && valid {
			r.connectReplica(ctx, cfg.ReadURL)
		}
	}

	// resolve finds the file a key names; "" when the key is not set or
	// the file is missing (a problem then).
	resolve := func(key, name string) string {
		if name == "" {
			return ""
		}
		p, err := cfg.ResolvePath(name)
		if err != nil {
			r.fail(fmt.Errorf("%s: %s: %w", cfg.Pos(key), key, err))
			return ""
		}
		return p
	}

	var triggers []*trigger.Definition
	if p := resolve("trigger_definitions", cfg.TriggerDefinitions); p != "" {
		defs, warns, err := trigger.Load(p)
		for _, wn := range warns {
			r.warnings = append(r.warnings, wn.String())
		}
		if err != nil {
			r.fail(err)
		} else {
			triggers = defs
			names := make([]string, len(defs))
			for i, d := range defs {
				names[i] = d.Name
			}
			r.add("triggers", "%s in %s%s", count(len(defs), "trigger"), p, nameList(names))
		}
	} else if cfg.TriggerDefinitions == "" {
		r.add("triggers", "none (trigger_definitions not set)")
	}

	registry := winchester.NewRegistry()
	defer registry.Close()
	handlers, err := registry.SelectHandlers(cfg)
	if err != nil {
		r.fail(err)
		handlers, _ = registry.SelectHandlers(&winchester.Config{}) // still check the pipelines file
	} else {
		r.add("handlers", "%s", strings.Join(handlers.Names(), ", "))
	}

	var pipelines *pipeline.Definitions
	if cfg.PipelineConfig == "" {
		r.warnings = append(r.warnings, cfg.Pos("pipeline_config")+": pipeline_config not set: the pipeline worker will not start")
	} else if p := resolve("pipeline_config", cfg.PipelineConfig); p != "" {
		defs, err := pipeline.Load(p, handlers)
		if err != nil {
			r.fail(err)
		} else {
			pipelines = defs
			r.add("pipelines", "%s in %s%s", count(len(defs.Names()), "pipeline"), p, nameList(defs.Names()))
		}
	}
	if pipelines != nil && triggers != nil {
		r.fail(trigger.CheckPipelines(triggers, func(name string) bool {
			_, ok := pipelines.Pipeline(name)
			return ok
		}))
	}

	plugins, err := registry.SelectTraitPlugins(cfg)
	if err != nil {
		r.fail(err)
	}
	if p := resolve("distiller_config", cfg.DistillerConfig); p != "" && plugins != nil {
		defs, err := distiller.LoadDefinitions(p, plugins)
		if err != nil {
			r.fail(err)
		} else {
			r.add("event definitions", "%s in %s", count(len(defs), "event definition"), p)
		}
	} else if cfg.DistillerConfig == "" {
		r.add("event definitions", "none (distiller_config not set: notifications cannot be accepted)")
	}
	if p := resolve("event_schema", cfg.EventSchema); p != "" {
		schema, err := stream.LoadSchema(p)
		if err != nil {
			r.fail(err)
		} else {
			strict := ""
			if schema.Strict {
				strict = ", strict"
			}
			r.add("event schema", "%s in %s%s", count(len(schema.Events), "declared event"), p, strict)
		}
	}
	if jobs, err := registry.JobDefinitions(cfg); err != nil {
		r.fail(err)
	} else {
		var names, builtins []string
		for _, j := range jobs {
			switch {
			case slices.Contains(winchester.BuiltinJobs(), j.Name):
				if !j.Disabled {
					builtins = append(builtins, j.Name)
				}
			case j.Disabled:
				names = append(names, j.Name+" (disabled)")
			default:
				names = append(names, j.Name)
			}
		}
		if len(names) > 0 {
			r.add("jobs", "%s%s", count(len(names), "job"), nameList(names))
		}
		if len(builtins) == 0 {
			builtins = []string{"none on"}
		}
		r.add("built-in jobs", "%s", strings.Join(builtins, ", "))
	}
	if subs, err := registry.SubscriberDefinitions(cfg, handlers, nil); err != nil {
		r.fail(err)
	} else if len(subs) > 0 {
		names := make([]string, len(subs))
		for i, d := range subs {
			names[i] = d.Name
			if d.Disabled {
				names[i] += " (disabled)"
			}
		}
		r.add("subscribers", "%s%s", count(len(subs), "subscriber"), nameList(names))
	}
	return r.print(w)
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// nameList returns " (a, b, c)" for a short list of names, "" otherwise.
func nameList(names []string) string {
	if len(names) == 0 || len(names) > 10 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// connect opens the database at url as the engine would and reports what
// it found on a "connection" line, or a problem.
func (r *checkReport) connect(ctx context.Context, url string) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if winchester.IsSQLite(url) {
		path, _, _ := strings.Cut(strings.TrimPrefix(url, "sqlite://"), "?")
		if path == ":memory:" {
			r.add("connection", "in-memory database: nothing to connect to")
			return
		}
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			dir := filepath.Dir(path)
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				r.fail(fmt.Errorf("database: directory %s does not exist: create it, or fix database.url", dir))
				return
			}
			r.add("connection", "%s does not exist yet: the worker creates it", path)
			return
		}
		// The engine upgrades a SQLite schema itself: a schema behind this
		// binary is fine, and check does not change it.
		s, err := db.Open(ctx, url, db.Options{})
		if errors.Is(err, db.ErrSchemaOutOfDate) && strings.Contains(err.Error(), "this binary needs") {
			r.add("connection", "ok; the schema is behind this binary and the worker upgrades it on start")
			return
		}
		if err != nil {
			r.fail(fmt.Errorf("database: %w", err))
			return
		}
		_ = s.Close()
		r.add("connection", "ok, schema up to date")
		return
	}
	s, err := db.Open(ctx, url, db.Options{})
	switch {
	case errors.Is(err, db.ErrUnavailable):
		r.fail(fmt.Errorf("database: cannot reach it (within %s): %w", connectTimeout, err))
	case errors.Is(err, context.DeadlineExceeded):
		r.fail(fmt.Errorf("database: no answer within %s", connectTimeout))
	case err != nil:
		r.fail(fmt.Errorf("database: %w", err))
	default:
		_ = s.Close()
		r.add("connection", "ok, schema up to date")
	}
}

// connectReplica opens the read replica at url read-only, as serve does,
// and reports whether it is a standby and how far behind, on a "replica
// connection" line, or a problem.
func (r *checkReport) connectReplica(ctx context.Context, url string) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	s, err := db.Open(ctx, url, db.Options{ReadOnly: true})
	if err != nil {
		r.fail(fmt.Errorf("database.read_url: %w", err))
		return
	}
	defer s.Close()
	rr, ok := s.(db.ReplicaReporter)
	if !ok {
		r.add("replica connection", "ok, schema up to date")
		return
	}
	st, err := rr.ReplicaStatus(ctx)
	switch {
	case err != nil:
		r.fail(fmt.Errorf("database.read_url: %w", err))
	case st.InRecovery:
		r.add("replica connection", "ok, schema up to date, in recovery, lag %s", st.Lag.Round(time.Millisecond))
	default:
		r.add("replica connection", "ok, schema up to date")
		r.warnings = append(r.warnings, "database.read_url: the server is not a replica in recovery (pg_is_in_recovery() is false): reads go to another primary, read-only")
	}
}

// checkJSON is the report of check -o json.
type checkJSON struct {
	OK       bool              `json:"ok"`
	Summary  map[string]string `json:"summary"`
	Warnings []string          `json:"warnings"`
	Problems []string          `json:"problems"`
}

// print writes the report and returns an *exitError (code 1) when there
// are problems.
func (r *checkReport) print(w io.Writer) error {
	if r.json {
		return r.printJSON(w)
	}
	width := 0
	for _, l := range r.lines {
		width = max(width, len(l[0]))
	}
	var b strings.Builder
	for _, l := range r.lines {
		fmt.Fprintf(&b, "%-*s  %s\n", width, l[0], l[1])
	}
	for _, wn := range r.warnings {
		fmt.Fprintf(&b, "warning: %s\n", wn)
	}
	if len(r.problems) > 0 {
		fmt.Fprintf(&b, "%s:\n", count(len(r.problems), "problem"))
		for _, p := range r.problems {
			fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(p.Error(), "\n", "\n    "))
		}
	} else {
		b.WriteString("ok\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(r.problems) > 0 {
		return &exitError{code: 1, err: errors.New("configuration has " + count(len(r.problems), "problem"))}
	}
	return nil
}
