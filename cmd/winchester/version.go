package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/winchester-go/winchester/cmd/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module build information.
var version = ""

func init() { subcommands = append(subcommands, newVersionCmd) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return err
		},
	}
}

// versionString returns "winchester <version> (<revision>[, modified]) <go version>".
func versionString() string { return cli.VersionString(version) }
