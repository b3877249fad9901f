package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/trigger"
)

func init() { subcommands = append(subcommands, newCheckCmd) }

func newCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check winchester.yaml and every file it names",
		Long: `check loads the configuration file and the trigger, pipeline and event
definition files it names, with the same loaders and overrides as the
pipeline worker. It prints a summary and exits 0, or lists every problem
found (each naming its file and line) and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cli.FlagsOf(cmd)
			return runCheck(cmd.OutOrStdout(), &flags, os.Getenv)
		},
	}
	return cmd
}

// checkReport collects what check found.
type checkReport struct {
	lines    [][2]string // summary: label, value
	problems []error
	warnings []string
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

func runCheck(w io.Writer, flags *cli.Flags, getenv func(string) string) error {
	r := &checkReport{}
	cfg, err := flags.Read(getenv)
	if err != nil {
		r.fail(err)
		return r.print(w)
	}
	r.warnings = append(r.warnings, cfg.Warnings...)
	r.add("configuration", "%s", cfg.File)
	if err := cfg.Validate(); err != nil {
		r.fail(err)
	}
	if cfg.DatabaseURL != "" {
		r.add("database", "%s", winchester.MaskURL(cfg.DatabaseURL))
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

// print writes the report and returns an *exitError (code 1) when there
// are problems.
func (r *checkReport) print(w io.Writer) error {
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
