// Command winchester_db manages the database schema of a Winchester
// engine: it applies and reverts the migrations embedded in the storage
// drivers, reports the schema version, prints the SQL of pending
// migrations, and repairs the version record after a failed migration.
//
//	winchester_db [-c|--config winchester.yaml] upgrade [head|N] [--sql]
//	winchester_db [-c|--config winchester.yaml] downgrade N|base
//	winchester_db [-c|--config winchester.yaml] version   (alias: current)
//	winchester_db [-c|--config winchester.yaml] force N|base
//
// The database URL is the config file's database.url, overridden by the
// WINCHESTER_DATABASE_URL environment variable, overridden by the
// --database-url flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	// The storage drivers whose schemas this command manages.
	_ "github.com/winchester-go/winchester/db/postgres"
	_ "github.com/winchester-go/winchester/db/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Getenv, os.Stdout).ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		quiet := errors.As(err, &ee) && ee.quiet
		if !quiet {
			fmt.Fprintln(os.Stderr, "winchester_db:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is the process exit status for an error: 2 for a usage error,
// the carried code for an exitError, 1 otherwise.
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// exitError ends the process with a given status. Quiet ones were already
// reported on standard output.
type exitError struct {
	code  int
	quiet bool
	err   error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// app holds the root flags and what the commands share.
type app struct {
	configFile  string
	databaseURL string
	getenv      func(string) string
	out         io.Writer
	configSet   func() bool // whether -c was given
}

func newRootCmd(getenv func(string) string, out io.Writer) *cobra.Command {
	a := &app{getenv: getenv, out: out}
	root := &cobra.Command{
		Use:   "winchester_db",
		Short: "Manage the Winchester database schema (migrations)",
		Long: `winchester_db creates, upgrades and downgrades the database schema of a
Winchester engine with the migrations built into this binary (SQLite and
PostgreSQL), reports the schema version and repairs it after a failure.

The database URL is taken, in order of precedence, from --database-url,
the WINCHESTER_DATABASE_URL environment variable, or database.url in the
config file (default winchester.yaml; without database.url, the SQLite
file winchester.db beside it).

Concurrent upgrades are safe: a lock makes one process apply each
migration while the others wait and find nothing left to do.`,
		Example: `  winchester_db -c /etc/winchester/winchester.yaml upgrade head
  winchester_db --database-url postgres://winchester@db/winchester upgrade --sql head > schema.sql
  winchester_db version`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVarP(&a.configFile, "config", "c", "winchester.yaml", "configuration file with database.url")
	pf.StringVar(&a.databaseURL, "database-url", "", "database URL (overrides WINCHESTER_DATABASE_URL and database.url)")
	pf.StringVar(&a.databaseURL, "database", "", "same as --database-url")
	_ = pf.MarkHidden("database") // the old spelling, kept working
	a.configSet = func() bool { return pf.Changed("config") }
	root.AddCommand(newUpgradeCmd(a), newDowngradeCmd(a), newVersionCmd(a), newForceCmd(a))
	return root
}
