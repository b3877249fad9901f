package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/explain"
)

func init() { subcommands = append(subcommands, newExplainCmd) }

func newExplainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Explain why a stream has not fired, or where an event went and why not",
		Long: `explain answers "why did this stream not fire?" and "why did this event not
land where I expected?" with the trigger definitions of the configuration
and the streams and events of its database. It only reads.

  winchester explain stream ID
      each fire criterion with the number of events it needs and has, the
      fire time and expiry and what they were computed from, what is left
      to happen, the state, attempts and last error.

  winchester explain event MESSAGE_ID|-
      for every trigger: whether it takes the event, by which match
      criteria entry, its distinguishing values and the stream it went to
      (or would go to), or the first reason it does not. With - the event
      is read from standard input: an event in the event JSON encoding, a
      raw notification (it has a "payload"; it is distilled first), or
      {"message_id": "…"}.

See docs/EXPLAIN.md. The exit status is 1 when the stream or event is not
found or the input cannot be read.`,
	}
	cmd.AddCommand(newExplainStreamCmd(), newExplainEventCmd())
	return cmd
}

// openExplainer opens the engine of the configuration (definitions and
// store) and returns an explainer over it and the function that closes it.
func (f *storeFlags) openExplainer(cmd *cobra.Command) (*explain.Explainer, func(), error) {
	eng, err := f.openEngine(cmd)
	if err != nil {
		return nil, nil, err
	}
	reads, err := winchester.OpenReadStore(cmd.Context(), eng.Config, eng.Logger)
	if err != nil {
		_ = eng.Close()
		return nil, nil, err
	}
	if reads == nil {
		x := explain.New(eng.Store, eng.Manager, explain.Config{Clock: eng.Clock, DistillFunc: eng.Manager.Distill})
		return x, func() { _ = eng.Close() }, nil
	}
	// The queries go to the read replica; the engine gives the
	// definitions.
	x := explain.New(reads, eng.Manager, explain.Config{Clock: eng.Clock, DistillFunc: eng.Manager.Distill})
	return x, func() { _ = reads.Close(); _ = eng.Close() }, nil
}

// textWriter is an explanation that renders itself for people.
type textWriter interface {
	WriteText(w io.Writer) error
}

func (f *storeFlags) printExplanation(out io.Writer, x textWriter) error {
	if f.output == "json" {
		return writeJSONLines(out, []any{x})
	}
	return x.WriteText(out)
}

func newExplainStreamCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:     "stream ID",
		Short:   "Explain a stream: its fire criteria, deadlines and what is left to happen",
		Example: `  winchester explain stream 42 -c etc/winchester.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			x, done, err := sf.openExplainer(cmd)
			if err != nil {
				return err
			}
			defer done()
			e, err := x.Stream(cmd.Context(), ids[0])
			if errors.Is(err, db.ErrNotFound) {
				return &exitError{code: 1, err: fmt.Errorf("stream %d not found (purged after completion, or never existed)", ids[0])}
			}
			if err != nil {
				return err
			}
			return sf.printExplanation(cmd.OutOrStdout(), e)
		},
	}
	sf.addTo(cmd)
	cli.AddReadURLTo(cmd)
	return cmd
}

func newExplainEventCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "event MESSAGE_ID|-",
		Short: "Explain an event against every trigger: matched, into which stream, or why not",
		Example: `  winchester explain event 8d8a2b7e-5c33-4c2b-9a51-2f7b1c6e0a03
  winchester events show m-1 | winchester explain event -
  winchester explain event - -o json < notification.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var input []byte
			if args[0] == "-" {
				var err error
				if input, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return fmt.Errorf("read standard input: %w", err)
				}
			}
			x, done, err := sf.openExplainer(cmd)
			if err != nil {
				return err
			}
			defer done()
			var e explain.Event
			if input != nil {
				e, err = x.Body(cmd.Context(), input)
			} else {
				e, err = x.Event(cmd.Context(), args[0])
			}
			switch {
			case errors.Is(err, db.ErrNotFound) && input == nil:
				return &exitError{code: 1, err: fmt.Errorf("no event with message_id %q (give the event itself with -)", args[0])}
			case errors.Is(err, db.ErrNotFound):
				return &exitError{code: 1, err: fmt.Errorf("%v (give the event itself)", err)}
			case errors.Is(err, explain.ErrBadInput):
				return &exitError{code: 1, err: err}
			case err != nil:
				return err
			}
			return sf.printExplanation(cmd.OutOrStdout(), e)
		},
	}
	sf.addTo(cmd)
	cli.AddReadURLTo(cmd)
	return cmd
}
