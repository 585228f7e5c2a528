package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write the manual pages of xdplb and its commands into DIR",
		Long: "Writes xdplb.1, xdplb-serve.1, xdplb-list.1, ... into DIR (made if missing), " +
			"for /usr/local/share/man/man1. `make install` installs them.",
		Args: oneArg("DIR", "/usr/local/share/man/man1"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			header := &doc.GenManHeader{Title: "XDPLB", Section: "1", Source: versionLine()}
			if err := doc.GenManTree(cmd.Root(), header, args[0]); err != nil {
				return fmt.Errorf("write manual pages to %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "manual pages written to %s\n", args[0])
			return nil
		},
	}
}
