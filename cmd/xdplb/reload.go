package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
)

func newReloadCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "reload [--dry-run]",
		Short: "Have the daemon re-read its configuration file and apply the difference",
		Long: "Same as sending the daemon SIGHUP, but reports what changed and why a bad file " +
			"was refused. If the file is invalid nothing changes. Settings that only a restart " +
			"applies (interfaces, xdp_mode, conntrack.capacity, ...) are listed and left as they run.\n\n" +
			"--dry-run prints what a reload would change, field by field, and applies nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := client(cmd)
			if dryRun {
				res, err := c.ReloadDryRun(cmd.Context())
				if err != nil {
					return err
				}
				printChanges(cmd.OutOrStdout(), "dry run: a reload would change", "dry run: the file matches what runs", res.Changes)
				return nil
			}
			res, err := c.Reload(cmd.Context())
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
			printChanges(out, "changes", "", res.Changes)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what a reload would change and apply nothing")
	return cmd
}

// printChanges prints changes one a line under title, or none when there
// are none.
func printChanges(w io.Writer, title, none string, changes []api.Change) {
	if len(changes) == 0 {
		if none != "" {
			fmt.Fprintln(w, none)
		}
		return
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, c := range changes {
		fmt.Fprintf(w, "  %s\n", config.Change(c))
	}
}
