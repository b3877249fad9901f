package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/subscriber"
)

func init() {
	subcommands = append(subcommands, newSubscribersCmd)
}

func newSubscribersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subscribers",
		Short: "Show event subscribers, retry their dead letters, move their positions",
		Long: `subscribers shows the event subscribers of winchester.yaml (the
subscribers key) with what the database keeps of them: the position (the
last event dealt with), the lag (events stored after it), deliveries,
failed attempts and dead letters. retry sends dead letters again; skip
moves a position. See docs/SUBSCRIBERS.md.`,
	}
	cmd.AddCommand(newSubscribersListCmd(), newSubscribersShowCmd(), newSubscribersRetryCmd(), newSubscribersSkipCmd())
	return cmd
}

// openSubscriberStore loads the configuration and opens its store, which
// must keep subscribers; the function returned closes it.
func openSubscriberStore(cmd *cobra.Command, f *outputFlag) (*winchester.Config, subscriber.Store, func(), error) {
	cfg, store, err := f.openStore(cmd, false)
	if err != nil {
		return nil, nil, nil, err
	}
	ss, err := storeAs[subscriber.Store](cfg, store, "subscribers")
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, ss, func() { store.Close() }, nil
}

// subscriberRow is one subscriber as list and show print it.
type subscriberRow struct {
	subscriber.Report
	Handler    string `json:"handler,omitempty"`
	Configured bool   `json:"configured"`
	Enabled    bool   `json:"enabled"`
}

// subscriberRows joins the configured subscribers with the stored ones.
func subscriberRows(cfg *winchester.Config, statuses []subscriber.Status, now time.Time) []subscriberRow {
	stored := map[string]subscriber.Status{}
	for _, s := range statuses {
		stored[s.Name] = s
	}
	names := slices.Sorted(maps.Keys(cfg.Subscribers))
	for _, s := range statuses {
		if _, ok := cfg.Subscribers[s.Name]; !ok {
			names = append(names, s.Name)
		}
	}
	rows := make([]subscriberRow, 0, len(names))
	for _, name := range names {
		st, ok := stored[name]
		if !ok {
			st = subscriber.Status{Name: name}
		}
		rows = append(rows, subscriberRowOf(cfg, st, now))
	}
	return rows
}

// subscriberRowOf returns the row of one subscriber.
func subscriberRowOf(cfg *winchester.Config, st subscriber.Status, now time.Time) subscriberRow {
	r := subscriberRow{Report: st.Report(now)}
	if sc, ok := cfg.Subscribers[st.Name]; ok {
		r.Configured, r.Handler = true, sc.Handler
		r.Enabled = sc.Enabled == nil || *sc.Enabled
	}
	return r
}

func subscriberState(r subscriberRow) string {
	switch {
	case !r.Configured:
		return r.State + " (not configured)"
	case !r.Enabled:
		return "disabled"
	case r.HorizonWait != nil:
		return r.State + ", waits for horizon"
	}
	return r.State
}

// horizonLine explains a wait for the snapshot horizon to an operator
// ("" when delivery does not wait).
func horizonLine(r subscriberRow, now time.Time) string {
	h := r.HorizonWait
	if h == nil {
		return ""
	}
	since := "since an unknown time"
	if h.Since != nil {
		since = fmt.Sprintf("since %s (%s)", jobTime(h.Since), now.Sub(*h.Since).Round(time.Second))
	}
	holder := "a transaction"
	if h.Holder != "" {
		holder = "the transaction of " + h.Holder
	}
	return fmt.Sprintf("delivery waits for the snapshot horizon %s: %d committed event(s) are held back until %s ends", since, h.HeldBack, holder)
}

func printSubscriberRows(w io.Writer, output string, rows []subscriberRow) error {
	return printRows(w, output, rows, "NAME\tHANDLER\tSTATE\tPOSITION\tLAG\tDELIVERED\tFAILURES\tDEAD LETTERS\tLAST ERROR",
		func(w io.Writer, r subscriberRow) {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Name, orDash(r.Handler), subscriberState(r), r.Position, r.Lag,
				r.Delivered, r.Failures, r.DeadLetters, orDash(cutRunes(r.LastError, 60)))
		})
}

func newSubscribersListCmd() *cobra.Command {
	var f outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the subscribers with their position, lag, failures and dead letters",
		Long: `list prints every subscriber of the configuration, and every one the
database keeps that the configuration no longer names, with its state
(delivering: a worker holds it; idle; none: no stored state, as for a
disabled subscriber or one no worker ran yet), position, lag (events
stored after the position, whether or not they pass the filter),
deliveries, failed attempts, dead letters and last error. On PostgreSQL
the state says "waits for horizon" while committed events are held back
by an older transaction still running on the database server (see show).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, store, closeStore, err := openSubscriberStore(cmd, &f)
			if err != nil {
				return err
			}
			defer closeStore()
			statuses, err := subscriber.ReadStatuses(cmd.Context(), store)
			if err != nil {
				return err
			}
			return printSubscriberRows(cmd.OutOrStdout(), f.output, subscriberRows(cfg, statuses, time.Now().UTC()))
		},
	}
	f.addTo(cmd)
	return cmd
}

// subscriberOf returns the row of subscriber name; an error when neither
// the configuration nor the database knows it.
func subscriberOf(cmd *cobra.Command, cfg *winchester.Config, store subscriber.Store, name string) (subscriberRow, error) {
	st, err := subscriber.ReadStatus(cmd.Context(), store, name)
	if err != nil {
		return subscriberRow{}, err
	}
	if _, ok := cfg.Subscribers[name]; !ok && !st.HasState {
		return subscriberRow{}, fmt.Errorf("no subscriber %q (configured: %s)", name, subscriberNames(cfg))
	}
	return subscriberRowOf(cfg, st, time.Now().UTC()), nil
}

func subscriberNames(cfg *winchester.Config) string {
	if len(cfg.Subscribers) == 0 {
		return "none"
	}
	return fmt.Sprint(slices.Sorted(maps.Keys(cfg.Subscribers)))
}

func newSubscribersShowCmd() *cobra.Command {
	var (
		f     outputFlag
		limit int
	)
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a subscriber and its dead letters",
		Long: `show prints a subscriber as list does, then, while its delivery waits
for the snapshot horizon (PostgreSQL), since when, how many committed
events are held back and which transaction holds them, then its dead
letters, oldest
first: id (for retry), event id, message id, event type, attempts, the
last error, and whether it is marked for retry.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit <= 0 {
				return fmt.Errorf("--limit %d: must be positive", limit)
			}
			cfg, store, closeStore, err := openSubscriberStore(cmd, &f)
			if err != nil {
				return err
			}
			defer closeStore()
			row, err := subscriberOf(cmd, cfg, store, args[0])
			if err != nil {
				return err
			}
			dls, err := subscriber.ReportDeadLetters(cmd.Context(), store, args[0], limit)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if f.output == "json" {
				enc := json.NewEncoder(w)
				return enc.Encode(struct {
					subscriberRow
					DeadLetterList []subscriber.DeadLetterReport `json:"dead_letter_list"`
				}{row, dls})
			}
			if err := printSubscriberRows(w, "text", []subscriberRow{row}); err != nil {
				return err
			}
			if line := horizonLine(row, time.Now().UTC()); line != "" {
				fmt.Fprintln(w, "\n"+line)
			}
			if len(dls) == 0 {
				_, err := fmt.Fprintln(w, "\nno dead letters")
				return err
			}
			fmt.Fprintln(w)
			return printRows(w, "text", dls, "DEAD LETTER\tEVENT\tMESSAGE ID\tEVENT TYPE\tATTEMPTS\tRETRY\tSINCE\tERROR",
				func(w io.Writer, d subscriber.DeadLetterReport) {
					fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%d\t%v\t%s\t%s\n", d.ID, d.EventID, d.MessageID, d.EventType, d.Attempts, d.Retry,
						jobTime(&d.CreatedAt), cutRunes(d.Error, 80))
				})
		},
	}
	f.addTo(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "the most dead letters to print")
	return cmd
}

func newSubscribersRetryCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "retry NAME [DEAD_LETTER_ID] [--all]",
		Short: "Deliver dead letters again",
		Long: `retry marks one dead letter of a subscriber (its id, from show), or all
of them with --all, for another delivery. The worker delivering the
subscriber delivers them, with the subscriber's attempts and backoff,
before going on with new events: a delivered dead letter is removed; one
that fails again stays, with its new error, unmarked.`,
		Example: `  winchester subscribers retry audit 42
  winchester subscribers retry audit --all`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var id int64
			switch {
			case len(args) == 2 && all:
				return errors.New("give a dead letter id or --all, not both")
			case len(args) == 2:
				n, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil || n <= 0 {
					return fmt.Errorf("dead letter id %q: want a positive number", args[1])
				}
				id = n
			case !all:
				return errors.New("give a dead letter id (see subscribers show) or --all")
			}
			_, store, closeStore, err := openSubscriberStore(cmd, &outputFlag{output: "text"})
			if err != nil {
				return err
			}
			defer closeStore()
			n, err := subscriber.Retry(cmd.Context(), store, args[0], id, time.Now().UTC())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%d dead letter(s) of %s marked for retry\n", n, args[0])
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "retry every dead letter of the subscriber")
	return cmd
}

func newSubscribersSkipCmd() *cobra.Command {
	var (
		to      int64
		toEnd   bool
		toStart bool
	)
	cmd := &cobra.Command{
		Use:   "skip NAME (--to EVENT_ID | --to-end | --to-start)",
		Short: "Move a subscriber's position",
		Long: `skip moves the position of a subscriber: --to-end passes over every
stored event (the subscriber goes on with the events stored from now on),
--to EVENT_ID makes that event the last one dealt with (delivery goes on
with the events after it), --to-start delivers every stored event again.
The worker delivering the subscriber notices the move and goes on from
the new position; a delivery in flight may still complete.`,
		Example: `  winchester subscribers skip audit --to-end
  winchester subscribers skip audit --to 1234`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set := 0
			for _, b := range []bool{cmd.Flags().Changed("to"), toEnd, toStart} {
				if b {
					set++
				}
			}
			if set != 1 {
				return errors.New("give exactly one of --to EVENT_ID, --to-end and --to-start")
			}
			if cmd.Flags().Changed("to") && to <= 0 {
				return fmt.Errorf("--to %d: want an event id", to)
			}
			_, store, closeStore, err := openSubscriberStore(cmd, &outputFlag{output: "text"})
			if err != nil {
				return err
			}
			defer closeStore()
			st, err := subscriber.Skip(cmd.Context(), store, args[0], subscriber.Target{End: toEnd, AfterEvent: to}, time.Now().UTC())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: position moved to event %d\n", args[0], st.Position.EventID)
			return err
		},
	}
	cmd.Flags().Int64Var(&to, "to", 0, "the event id to move to (delivery goes on after it)")
	cmd.Flags().BoolVar(&toEnd, "to-end", false, "move to the newest stored event")
	cmd.Flags().BoolVar(&toStart, "to-start", false, "move before the first stored event")
	return cmd
}
