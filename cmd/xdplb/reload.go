package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newReloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Have the daemon re-read its configuration file and apply the difference",
		Long: "Same as sending the daemon SIGHUP, but reports what changed and why a bad file " +
			"was refused. If the file is invalid nothing changes. Settings that only a restart " +
			"applies (interfaces, xdp_mode, conntrack.capacity, ...) are listed and left as they run.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := client(cmd).Reload(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case len(res.Applied) == 0 && len(res.NeedRestart) == 0:
				fmt.Fprintln(out, "reloaded: nothing changed")
			case len(res.Applied) == 0:
				fmt.Fprintln(out, "reloaded: nothing applied")
			default:
				fmt.Fprintf(out, "reloaded: applied %s\n", strings.Join(res.Applied, ", "))
			}
			if len(res.NeedRestart) > 0 {
				fmt.Fprintf(out, "changed but only applied by a restart: %s\n", strings.Join(res.NeedRestart, ", "))
			}
			return nil
		},
	}
}
