package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester"
	"github.com/winchester-go/winchester/cmd/internal/cli"
	"github.com/winchester-go/winchester/db"
)

// outputFlag is the -o/--output flag of the commands that print: text
// (tables for people) or json. The commands open what they print from
// through its methods, which refuse another format first.
type outputFlag struct {
	output string
}

func (f *outputFlag) addTo(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
}

// setup checks the output format and loads the configuration.
func (f *outputFlag) setup(cmd *cobra.Command) (*winchester.Config, *slog.Logger, error) {
	if f.output != "text" && f.output != "json" {
		return nil, nil, fmt.Errorf("--output %q: want text or json", f.output)
	}
	flags := cli.FlagsOf(cmd)
	return flags.Setup(os.Getenv, cmd.ErrOrStderr())
}

// openStore loads the configuration and opens its store (an SQLite store
// is migrated); with reads, the read replica of database.read_url (or
// --read-url) when there is one, without connecting to the primary.
func (f *outputFlag) openStore(cmd *cobra.Command, reads bool) (*winchester.Config, db.Store, error) {
	cfg, log, err := f.setup(cmd)
	if err != nil {
		return nil, nil, err
	}
	if reads && cfg.ReadURL != "" {
		store, err := winchester.OpenReadStore(cmd.Context(), cfg, log)
		return cfg, store, err
	}
	store, err := db.Open(cmd.Context(), cfg.DatabaseURL, db.Options{Migrate: winchester.IsSQLite(cfg.DatabaseURL)})
	if err != nil {
		return nil, nil, fmt.Errorf("open database %s: %w", winchester.MaskURL(cfg.DatabaseURL), err)
	}
	return cfg, store, nil
}

// openEngine loads the configuration and opens the engine.
func (f *outputFlag) openEngine(cmd *cobra.Command) (*winchester.Engine, error) {
	cfg, log, err := f.setup(cmd)
	if err != nil {
		return nil, err
	}
	return winchester.Open(cmd.Context(), cfg, winchester.Options{Logger: log})
}

// storeAs returns store as the capability S, which keeps what (jobs,
// subscribers); a store without it is closed and refused.
func storeAs[S any](cfg *winchester.Config, store db.Store, what string) (S, error) {
	s, ok := store.(S)
	if !ok {
		store.Close()
		return s, fmt.Errorf("the %s store keeps no %s", winchester.MaskURL(cfg.DatabaseURL), what)
	}
	return s, nil
}

// printRows prints rows in the output format: a JSON object a line, or a
// table with header and a line per row written by line (cells separated
// by tabs).
func printRows[T any](w io.Writer, output string, rows []T, header string, line func(w io.Writer, r T)) error {
	if output == "json" {
		return writeJSONLines(w, rows)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		line(tw, r)
	}
	return tw.Flush()
}

// newTable returns the writer of the text tables.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// writeJSONLines prints items as JSON, an object a line.
func writeJSONLines[T any](w io.Writer, items []T) error {
	enc := json.NewEncoder(w)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}
