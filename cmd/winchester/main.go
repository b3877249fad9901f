// Command winchester is the operator's tool: check configuration, distill
// notifications, replay history, serve events, inspect streams and events.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester/cmd/internal/cli"
)

// subcommands holds the constructors of the sub-commands; each lives in its
// own file and appends itself from init.
var subcommands []func() *cobra.Command

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "winchester",
		Short: "Operate a Winchester stream-trigger engine",
		Long: `winchester is the operator's command for a Winchester engine: it checks
configuration files, turns notifications into events, replays history
through triggers and pipelines, and inspects streams and events.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// -c/--config, --database-url, --log-level and --log-format belong to
	// every sub-command; each reads them with cli.FlagsOf.
	var shared cli.Flags
	shared.AddPersistentTo(root)
	for _, mk := range subcommands {
		root.AddCommand(mk())
	}
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "winchester:", err)
		os.Exit(exitCode(err))
	}
}
