package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/buildinfo"
	"github.com/xdplb/xdplb/internal/datapath"
)

// versionLine is what `xdplb version` and `xdplb --version` print.
func versionLine() string {
	info := buildinfo.Read()
	s := "xdplb " + info.Version
	if info.Commit != "" {
		s += ", commit " + info.Commit
	}
	if info.Date != "" {
		s += ", built from a commit of " + info.Date
	}
	return fmt.Sprintf("%s, datapath layout %d", s, datapath.LayoutVersion)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and datapath layout",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
		},
	}
}
