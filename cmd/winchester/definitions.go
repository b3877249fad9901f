package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/live"
)

func init() {
	subcommands = append(subcommands, newDefinitionsCmd)
}

func newDefinitionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "definitions",
		Short: "Apply, list, show and roll back versions of the trigger and pipeline definitions",
		Long: `definitions manages the live definitions: the versions of triggers.yaml
and pipelines.yaml kept in the database, which every process (serve,
consume, pipeline_worker) picks up within definitions.poll_interval
without a restart. A stream keeps the version it was created under until
it completes, unless its trigger's new definition says on_change: expire
or fire. See docs/DEFINITIONS.md.`,
	}
	cmd.AddCommand(newDefinitionsApplyCmd(), newDefinitionsListCmd(), newDefinitionsShowCmd(), newDefinitionsRollbackCmd())
	return cmd
}

// definitionsFlags are the flags of the definitions sub-commands.
type definitionsFlags struct {
	outputFlag
	dryRun bool
}

func (f *definitionsFlags) addDryRun(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the differences with the running version and store nothing")
}

// open loads the configuration and opens the engine with a keeper of the
// stored versions that applies nothing by itself. With files, the
// trigger and pipeline files are loaded and validated as winchester check
// does; without, they are not read (list, show and rollback work whatever
// the files hold).
func (f *definitionsFlags) open(cmd *cobra.Command, files bool) (*winchester.Engine, error) {
	cfg, log, err := f.setup(cmd)
	if err != nil {
		return nil, err
	}
	if !files {
		cfg.TriggerDefinitions, cfg.PipelineConfig = "", ""
	}
	eng, err := winchester.Open(cmd.Context(), cfg, winchester.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := eng.AttachDefinitions(cmd.Context()); err != nil {
		eng.Close()
		return nil, err
	}
	return eng, nil
}

// run opens the engine (see open), runs fn with it and closes it.
func (f *definitionsFlags) run(cmd *cobra.Command, files bool, fn func(eng *winchester.Engine) error) error {
	eng, err := f.open(cmd, files)
	if err != nil {
		return err
	}
	defer eng.Close()
	return fn(eng)
}

func newDefinitionsApplyCmd() *cobra.Command {
	var f definitionsFlags
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Validate the configured trigger and pipeline files and store them as a new version",
		Long: `apply reads the trigger_definitions and pipeline_config files of the
configuration (-c), validates them as winchester check does, prints the
differences with the running version per trigger (added, removed,
changed and which keys) and per pipeline, and stores them as a new
version, unless they equal the running one. Invalid files are refused
with their problems (file:line) and change nothing (exit 1). With
--dry-run only the differences are printed.`,
		Example: `  winchester definitions apply -c etc/winchester.yaml --dry-run
  winchester definitions apply -c etc/winchester.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, true, func(eng *winchester.Engine) error {
				res, err := eng.Live.Apply(cmd.Context(), eng.Defs.Texts, live.SourceCLI, f.dryRun)
				if err != nil {
					return err
				}
				return printApply(cmd.OutOrStdout(), f.output, res)
			})
		},
	}
	f.addTo(cmd)
	f.addDryRun(cmd)
	return cmd
}

func newDefinitionsRollbackCmd() *cobra.Command {
	var f definitionsFlags
	cmd := &cobra.Command{
		Use:   "rollback VERSION",
		Short: "Store the definitions of an earlier version again, as a new version",
		Long: `rollback validates the texts of stored version VERSION and stores them as
a new version (every process picks it up as any new version), printing
the differences with the running version. Streams created under the
versions in between keep theirs unless a trigger's restored definition
says on_change: expire or fire.`,
		Example: `  winchester definitions rollback -c etc/winchester.yaml 3`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseVersionArg(args[0])
			if err != nil {
				return err
			}
			return f.run(cmd, false, func(eng *winchester.Engine) error {
				res, err := eng.Live.Rollback(cmd.Context(), n, f.dryRun)
				if err != nil {
					return err
				}
				return printApply(cmd.OutOrStdout(), f.output, res)
			})
		},
	}
	f.addTo(cmd)
	f.addDryRun(cmd)
	return cmd
}

func parseVersionArg(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("version %q: want a positive number", s)
	}
	return n, nil
}

func printApply(w io.Writer, output string, res *live.ApplyResult) error {
	if output == "json" {
		if res.Changes == nil {
			res.Changes = []live.Change{}
		}
		return json.NewEncoder(w).Encode(res)
	}
	switch {
	case res.DryRun && len(res.Changes) == 0:
		fmt.Fprintf(w, "dry run: no differences with the running version %d\n", res.Version)
	case res.DryRun:
		fmt.Fprintf(w, "dry run: differences with the running version %d (nothing stored):\n", res.Version)
	case res.Created:
		fmt.Fprintf(w, "stored definitions version %d (was %d)\n", res.Version, res.Previous)
	default:
		fmt.Fprintf(w, "no new version: version %d has these definitions already\n", res.Version)
	}
	for _, c := range res.Changes {
		fmt.Fprintf(w, "  %s\n", c)
	}
	if res.StreamsChanged > 0 {
		fmt.Fprintf(w, "%d open stream(s) made ready to fire or expire by on_change\n", res.StreamsChanged)
	}
	return nil
}

func newDefinitionsListCmd() *cobra.Command {
	var f definitionsFlags
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the stored versions, newest (running) first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, false, func(eng *winchester.Engine) error {
				list, err := eng.Live.Versions(cmd.Context(), limit)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if f.output == "json" {
					type row struct {
						Version      int64     `json:"version"`
						Digest       string    `json:"digest"`
						Source       string    `json:"source"`
						CreatedAt    time.Time `json:"created_at"`
						TriggerFile  string    `json:"trigger_file"`
						PipelineFile string    `json:"pipeline_file"`
					}
					rows := []row{}
					for _, v := range list {
						rows = append(rows, row{v.Version, v.Digest, v.Source, v.CreatedAt, v.TriggerFile, v.PipelineFile})
					}
					return json.NewEncoder(w).Encode(rows)
				}
				if len(list) == 0 {
					fmt.Fprintln(w, "no stored definitions")
					return nil
				}
				return printRows(w, "text", list, "VERSION\tCREATED\tSOURCE\tDIGEST\tTRIGGER FILE", func(w io.Writer, v db.DefinitionVersion) {
					fmt.Fprintf(w, "%d\t%s\t%s\t%.12s\t%s\n", v.Version, v.CreatedAt.Format(time.RFC3339), v.Source, v.Digest, v.TriggerFile)
				})
			})
		},
	}
	f.addTo(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many versions (0: all)")
	return cmd
}

func newDefinitionsShowCmd() *cobra.Command {
	var f definitionsFlags
	cmd := &cobra.Command{
		Use:   "show [VERSION]",
		Short: "Print a stored version's trigger and pipeline texts (default: the newest)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var n int64
			if len(args) == 1 {
				v, err := parseVersionArg(args[0])
				if err != nil {
					return err
				}
				n = v
			}
			return f.run(cmd, false, func(eng *winchester.Engine) error {
				v, err := eng.Live.Show(cmd.Context(), n)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if f.output == "json" {
					return json.NewEncoder(w).Encode(struct {
						Version   int64      `json:"version"`
						Digest    string     `json:"digest"`
						Source    string     `json:"source"`
						CreatedAt time.Time  `json:"created_at"`
						Texts     live.Texts `json:"texts"`
					}{v.Version, v.Digest, v.Source, v.CreatedAt, live.Texts{
						TriggerFile: v.TriggerFile, Triggers: v.Triggers, PipelineFile: v.PipelineFile, Pipelines: v.Pipelines,
					}})
				}
				fmt.Fprintf(w, "# version %d, %s, source %s, digest %s\n", v.Version, v.CreatedAt.Format(time.RFC3339), v.Source, v.Digest)
				fmt.Fprintf(w, "# ---- triggers (%s)\n%s", v.TriggerFile, withNewline(v.Triggers))
				fmt.Fprintf(w, "# ---- pipelines (%s)\n%s", v.PipelineFile, withNewline(v.Pipelines))
				return nil
			})
		},
	}
	f.addTo(cmd)
	return cmd
}

func withNewline(s string) string {
	if s == "" || s[len(s)-1] == '\n' {
		return s
	}
	return s + "\n"
}
