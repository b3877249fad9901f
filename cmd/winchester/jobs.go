package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/job"
)

func init() {
	subcommands = append(subcommands, newJobsCmd)
}

func newJobsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Show scheduled jobs and their runs, run one now",
		Long: `jobs shows the scheduled jobs of winchester.yaml (the jobs key) with
their progress as stored in the database: the last window done, the
window running or waiting for a retry, the next window, the last error;
and the history of a job's runs, failures and skipped windows; and run
a job's window now.`,
	}
	cmd.AddCommand(newJobsListCmd(), newJobsHistoryCmd(), newJobsRunCmd())
	return cmd
}

// openJobStore loads the configuration and opens its store, which must
// keep jobs.
func openJobStore(cmd *cobra.Command, f *outputFlag) (*winchester.Config, db.Store, db.JobStore, error) {
	cfg, store, err := f.openStore(cmd, false)
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := storeAs[db.JobStore](cfg, store, "jobs")
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, store, js, nil
}

func newJobsListCmd() *cobra.Command {
	var f outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the jobs with their progress",
		Long: `list prints every job of the configuration, and every job the database
keeps that the configuration no longer names, with its state: new (never
seen by a worker), idle, running (claimed by a worker until its lease
ends), retry (a failed window waiting for its retry) or disabled.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, store, js, err := openJobStore(cmd, &f)
			if err != nil {
				return err
			}
			defer store.Close()
			states, err := js.JobStates(cmd.Context())
			if err != nil {
				return err
			}
			rows := winchester.JobStatuses(cfg, states, time.Now().UTC())
			return printJobRows(cmd.OutOrStdout(), f.output, rows)
		},
	}
	f.addTo(cmd)
	return cmd
}

func printJobRows(w io.Writer, output string, rows []job.Status) error {
	return printRows(w, output, rows, "NAME\tSCHEDULE\tSTATE\tLAST WINDOW END\tNEXT WINDOW END\tATTEMPTS\tLAST ERROR",
		func(w io.Writer, r job.Status) {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, orDash(r.Schedule), r.State, jobTime(r.LastEnd),
				nextEnd(r), orDash(attemptText(r.Attempts)), orDash(cutRunes(r.LastError, 60)))
		})
}

func nextEnd(r job.Status) string {
	if r.WindowEnd != nil {
		return jobTime(r.WindowEnd) + " (" + r.State + ")"
	}
	return jobTime(r.NextEnd)
}

func attemptText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func jobTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func cutRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func newJobsHistoryCmd() *cobra.Command {
	var (
		f     outputFlag
		limit int
	)
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "Show the recorded runs of a job, newest first",
		Long: `history prints the runs of a job, newest first: each window with its
status (completed, failed and retried, gave_up after its retries,
skipped by catch_up: skip), the attempt, the worker, when it ran, how
long it took and its error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit <= 0 {
				return fmt.Errorf("--limit %d: must be positive", limit)
			}
			cfg, store, js, err := openJobStore(cmd, &f)
			if err != nil {
				return err
			}
			defer store.Close()
			name := args[0]
			runs, err := js.JobRuns(cmd.Context(), name, limit)
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				if _, err := js.JobState(cmd.Context(), name); errors.Is(err, db.ErrNotFound) {
					if !slices.ContainsFunc(winchester.ConfiguredJobs(cfg), func(cj winchester.ConfiguredJob) bool { return cj.Name == name }) {
						return fmt.Errorf("no job %q (configured: %s)", name, jobNames(cfg))
					}
				}
			}
			rows := make([]job.RunView, len(runs))
			for i, r := range runs {
				rows[i] = job.ViewRun(r)
			}
			return printRunRows(cmd.OutOrStdout(), f.output, rows)
		},
	}
	f.addTo(cmd)
	cmd.Flags().IntVar(&limit, "limit", 50, "the number of runs to show")
	return cmd
}

func newJobsRunCmd() *cobra.Command {
	var (
		f      outputFlag
		window string
	)
	cmd := &cobra.Command{
		Use:   "run NAME [--window START END]",
		Short: "Run a job's next due window now, or its next window up to an end you choose",
		Long: `run runs one window of a job at once and prints the run as recorded in
the history: the job's next due window (a failed window waiting for its
retry is retried without waiting), or, with --window START END (RFC 3339
times), the window (START, END].

--window runs the job's next window, with an end of your choice, as the
job's progress: START must be where the job's last window done ended
(jobs list shows it as LAST WINDOW END; a job no worker has seen yet
starts at START), END must have passed and need not be a scheduled time:
the job's next window then starts at END. Windows stay contiguous and
each runs once, so any other window is refused, saying why: a window
done already is never run again (completed, given up or skipped), and
a window overlapping windows done, or leaving a gap after them, is not
run either. To redo the work of a window done, run the job's work
yourself (for an exec job, its command with WINCHESTER_WINDOW_START and
WINCHESTER_WINDOW_END set).

The window is claimed with the same compare-and-set and lease as the
workers' job runners use, so a window another process runs is never run
twice: run then fails, saying who holds it. The job runs in this process:
exec jobs and the built-in jobs can be run this way; Go jobs only by the
program that registers them (Engine.NewJobRunner, Runner.RunNow). A run
whose job fails is recorded (failed, or gave_up) and run exits non-zero.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if window != "" {
				if len(args) != 2 {
					return errors.New("--window takes two times: --window START END")
				}
				return nil
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var start, end time.Time
			if window != "" {
				var err error
				if start, err = time.Parse(time.RFC3339Nano, window); err != nil {
					return fmt.Errorf("--window start %q: want an RFC 3339 time such as 2026-12-01T00:00:00Z", window)
				}
				if end, err = time.Parse(time.RFC3339Nano, args[1]); err != nil {
					return fmt.Errorf("--window end %q: want an RFC 3339 time such as 2026-12-01T01:00:00Z", args[1])
				}
			}
			eng, err := f.openEngine(cmd)
			if err != nil {
				return err
			}
			defer eng.Close()
			cfg := eng.Config
			host, _ := os.Hostname()
			jr, err := eng.NewJobRunner(fmt.Sprintf("jobs-run@%s-%d", host, os.Getpid()))
			if err != nil {
				return err
			}
			name := args[0]
			var run db.JobRun
			if window != "" {
				run, err = jr.RunWindow(cmd.Context(), name, start, end)
			} else {
				run, err = jr.RunNow(cmd.Context(), name)
			}
			if errors.Is(err, job.ErrUnknownJob) {
				return fmt.Errorf("no job %q (configured: %s)", name, jobNames(cfg))
			}
			if err != nil {
				return err
			}
			if err := printRunRows(cmd.OutOrStdout(), f.output, []job.RunView{job.ViewRun(run)}); err != nil {
				return err
			}
			if run.Status != db.JobCompleted {
				return fmt.Errorf("job %s: the run %s: %s", name, run.Status, run.Error)
			}
			return nil
		},
	}
	f.addTo(cmd)
	cmd.Flags().StringVar(&window, "window", "", "run the job's next window up to END, (START, END] with START where its last window done ended: --window START END")
	return cmd
}

func jobNames(cfg *winchester.Config) string {
	var names []string
	for _, cj := range winchester.ConfiguredJobs(cfg) {
		names = append(names, cj.Name)
	}
	return fmt.Sprint(names)
}

func printRunRows(w io.Writer, output string, rows []job.RunView) error {
	return printRows(w, output, rows, "WINDOW START\tWINDOW END\tSTATUS\tATTEMPT\tWORKER\tFINISHED\tDURATION\tERROR",
		func(w io.Writer, r job.RunView) {
			dur := "-"
			if r.DurationMS != nil {
				dur = (time.Duration(*r.DurationMS) * time.Millisecond).String()
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", jobTime(&r.WindowStart), jobTime(&r.WindowEnd), r.Status,
				orDash(attemptText(r.Attempt)), orDash(r.Worker), jobTime(&r.FinishedAt), dur, orDash(cutRunes(r.Error, 60)))
		})
}
