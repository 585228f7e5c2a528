package main

import (
	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/backendprep"
)

func newBackendPrepCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backend-prep",
		Short: "On a backend: prepare the host for direct server return (dsr-l2, dsr-ipip, dsr-gue), and undo it",
		Long: "With direct server return the balancer hands the client's packet to the backend still addressed to " +
			"the VIP, and the backend answers the client itself. `xdplb backend-prep apply` gets the backend ready: " +
			"the VIPs on lo, ARP settings that keep it from answering for them, a relaxed reverse-path filter for " +
			"the tunnel modes, and with --kernel-decap the kernel's tunl0 (and a GUE receiver). It records each " +
			"change with the value it replaced, so that `xdplb backend-prep undo` puts back exactly that. " +
			"Run it as root on the backend, not on the balancer; docs/dsr-backend.md has the details and the " +
			"equivalent ip and sysctl commands.",
		Example: "  xdplb backend-prep apply --vip 10.0.0.100,10.0.0.101 --mode dsr-l2\n" +
			"  xdplb backend-prep apply --vip 10.0.0.100 --mode dsr-gue --kernel-decap --gue-port 6080\n" +
			"  xdplb backend-prep status\n" +
			"  xdplb backend-prep undo",
		// Runnable, so that a mistyped subcommand is an error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().String("state", backendprep.DefaultStatePath, "file that records what apply changed, for undo and status")
	cmd.AddCommand(newBackendPrepApplyCmd(), newBackendPrepUndoCmd(), newBackendPrepStatusCmd())
	return cmd
}

func backendPrepState(cmd *cobra.Command) string {
	path, _ := cmd.Flags().GetString("state")
	return path
}

func newBackendPrepApplyCmd() *cobra.Command {
	var f backendprep.Flags
	cmd := &cobra.Command{
		Use:   "apply --vip ADDR[,ADDR...] --mode dsr-l2|dsr-ipip|dsr-gue",
		Short: "Put the VIPs on lo and set what DSR needs, recording each change",
		Long: "Puts each VIP on lo as a /32 and sets net.ipv4.conf.*.arp_ignore and arp_announce so that the host " +
			"never answers or announces the VIPs in ARP. For dsr-ipip and dsr-gue it also makes every strict " +
			"rp_filter loose; with --kernel-decap, where the kernel rather than xdplb decap takes the tunnels " +
			"apart, it sets tunl0 up with rp_filter 0 (all's too) and for dsr-gue opens a GUE receiver on " +
			"--gue-port. It prints one line per change, or per thing already so. Running it again changes only " +
			"what is not so any more, and adds to the record: an address or value the host had before the first " +
			"apply is never recorded, so undo never takes it away.",
		Example: "  xdplb backend-prep apply --vip 10.0.0.100 --mode dsr-l2\n" +
			"  xdplb backend-prep apply --vip 10.0.0.100 --vip 10.0.0.101 --mode dsr-ipip\n" +
			"  xdplb backend-prep apply --vip 10.0.0.100 --mode dsr-gue --kernel-decap",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.GUEPortSet = cmd.Flags().Changed("gue-port")
			o, err := f.Options()
			if err != nil {
				return err
			}
			return backendprep.Apply(o, backendPrepState(cmd), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringSliceVar(&f.VIPs, "vip", nil, "VIPs of the services this host is a backend of (comma-separated, or repeat the flag)")
	cmd.Flags().StringVar(&f.Mode, "mode", "", "forwarding of those services: dsr-l2, dsr-ipip or dsr-gue")
	cmd.Flags().BoolVar(&f.KernelDecap, "kernel-decap", false, "decapsulate with the kernel's tunl0 (and fou for GUE) instead of xdplb decap")
	cmd.Flags().IntVar(&f.GUEPort, "gue-port", backendprep.DefaultGUEPort, "UDP port of the kernel's GUE receiver (dsr-gue with --kernel-decap)")
	cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"dsr-l2", "dsr-ipip", "dsr-gue"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newBackendPrepUndoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "undo",
		Short: "Put back what apply changed, and only that",
		Long: "Puts back each value apply replaced and removes what it added (addresses, tunl0 if it made it, the " +
			"GUE receiver), then the record. What the host had before apply stays. A setting someone changed " +
			"since apply stays as they left it, with a warning naming it. If a step fails, what is left to undo " +
			"stays recorded, and undo can run again.",
		Example: "  xdplb backend-prep undo\n  xdplb backend-prep undo --state /root/backend-prep.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return backendprep.Undo(backendPrepState(cmd), cmd.OutOrStdout())
		},
	}
}

func newBackendPrepStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show what apply changed and whether each change is still in effect",
		Long: "Lists every change the record holds, with the value it replaced, and whether the host still has it " +
			"(NOT IN EFFECT says what is there instead). Things the host had before apply are not listed.",
		Example: "  xdplb backend-prep status",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return backendprep.Status(backendPrepState(cmd), cmd.OutOrStdout())
		},
	}
}
