package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/toa"
)

func newTOACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "toa",
		Short: "On a backend: give accept() and getpeername() the client's address from the TOA option",
		Long: "For services with client_address toa, the balancer puts the client's address in a TCP option " +
			"(kind 254, as LVS's and DPVS's toa.ko read it) of the handshake's ACK. `xdplb toa install` attaches " +
			"a reader to a cgroup v2 directory of the backend host, with no kernel module: accept() and " +
			"getpeername() of the sockets in that cgroup and those below it then return the client's address " +
			"instead of the balancer's. It needs Linux 5.10 or later and root, and stays attached after the " +
			"command exits, until `xdplb toa remove`. docs/client-address.md has the details.",
	}
	cmd.AddCommand(newTOAInstallCmd(), newTOARemoveCmd(), newTOAStatusCmd())
	return cmd
}

func newTOAInstallCmd() *cobra.Command {
	var cgroup string
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Attach the TOA reader to a cgroup, or replace it in place where it is attached",
		Long: "Attaches the reader to --cgroup (by default the root of the cgroup v2 mount: every socket of " +
			"the host) and pins it under " + toa.PinRoot + ". Where it is installed already, the programs " +
			"are replaced in place: an upgrade needs no remove.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			done, err := toa.Install(cgroup)
			if err != nil {
				return err
			}
			what := "installed on"
			if done.Updated {
				what = "updated in place on"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "TOA reader %s cgroup %s (id %d), pinned at %s: "+
				"accept() and getpeername() of its sockets return the client's address where the handshake carried one\n",
				what, done.Cgroup.Path, done.Cgroup.ID, done.PinDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&cgroup, "cgroup", "", "cgroup v2 directory to attach to (default the root of the cgroup v2 mount)")
	return cmd
}

func newTOARemoveCmd() *cobra.Command {
	var (
		cgroup string
		id     uint64
	)
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Detach the TOA reader from a cgroup and remove its pins",
		Long: "Detaches what `xdplb toa install` attached to --cgroup and removes its pins, and nothing else. " +
			"--cgroup-id removes what is left of a reader whose cgroup is gone (xdplb toa status shows the id).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				r   toa.Removed
				err error
			)
			if cmd.Flags().Changed("cgroup-id") {
				if cmd.Flags().Changed("cgroup") {
					return fmt.Errorf("give --cgroup or --cgroup-id, not both")
				}
				r, err = toa.RemoveID(id)
			} else {
				r, err = toa.Remove(cgroup)
			}
			if err != nil {
				return err
			}
			which := fmt.Sprintf("cgroup id %d", r.Cgroup.ID)
			if r.Cgroup.Path != "" {
				which = fmt.Sprintf("cgroup %s (id %d)", r.Cgroup.Path, r.Cgroup.ID)
			}
			if !r.Found {
				fmt.Fprintf(cmd.OutOrStdout(), "no TOA reader is installed on %s (nothing at %s): nothing to remove\n", which, r.PinDir)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "TOA reader removed from %s\n", which)
			return nil
		},
	}
	cmd.Flags().StringVar(&cgroup, "cgroup", "", "cgroup v2 directory to detach from (default the root of the cgroup v2 mount)")
	cmd.Flags().Uint64Var(&id, "cgroup-id", 0, "id of a cgroup that is gone, as xdplb toa status shows it")
	return cmd
}

func newTOAStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the cgroups the TOA reader is installed on, whether it is attached, and its counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			installs, err := toa.Status()
			if err != nil {
				return err
			}
			if asJSON {
				if installs == nil {
					installs = []toa.Installation{}
				}
				return printJSON(cmd.OutOrStdout(), installs)
			}
			printTOAStatus(cmd.OutOrStdout(), installs)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func printTOAStatus(w io.Writer, installs []toa.Installation) {
	if len(installs) == 0 {
		fmt.Fprintf(w, "the TOA reader is not installed on any cgroup (nothing under %s)\n", toa.PinRoot)
		return
	}
	for i, in := range installs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if in.CgroupPath != "" {
			fmt.Fprintf(w, "cgroup %s (id %d), pinned at %s\n", in.CgroupPath, in.CgroupID, in.PinDir)
		} else {
			fmt.Fprintf(w, "cgroup id %d, which is gone (xdplb toa remove --cgroup-id %d removes what is left), pinned at %s\n",
				in.CgroupID, in.CgroupID, in.PinDir)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, h := range in.Hooks {
			if h.Attached {
				fmt.Fprintf(tw, "  %s\tattached (program %d)\n", h.Hook, h.Program)
			} else {
				fmt.Fprintf(tw, "  %s\tNOT ATTACHED: %s\n", h.Hook, h.Problem)
			}
		}
		tw.Flush()
		c := in.Counters
		fmt.Fprintf(w, "  connections: %d accepted, %d with the client's address (%d IPv4, %d IPv6), %d without, %d with malformed options\n",
			c.Sockets, c.FoundV4+c.FoundV6, c.FoundV4, c.FoundV6, c.Absent, c.Malformed)
	}
}
