package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/decap"
)

func newDecapCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "decap",
		Short: "On a backend: take the balancer's tunnels off for direct server return",
		Long: "For direct server return, the balancer sends the client's packets to the backend in a tunnel: " +
			"IPIP, or GUE (IP directly in UDP, on a port of your choice). `xdplb decap attach` puts a small XDP " +
			"program on the backend's interface that takes the outer header off the packets of the balancers it " +
			"is given, and drops tunnelled packets from anyone else. The client's packet then reaches the VIP, " +
			"which the backend holds on its loopback, and the backend answers the client directly. It needs " +
			"Linux 5.9 or later and root, and stays attached after the command exits, until `xdplb decap detach`. " +
			"docs/decap.md has the details.",
		Example: "  xdplb decap attach --interface eth0 --allow 10.0.0.1,10.0.0.2 --gue-port 6080\n" +
			"  xdplb decap status\n" +
			"  xdplb decap detach --interface eth0",
		// Runnable, so that a mistyped subcommand is an error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDecapAttachCmd(), newDecapDetachCmd(), newDecapStatusCmd())
	return cmd
}

func newDecapAttachCmd() *cobra.Command {
	var (
		ifname  string
		allow   []string
		guePort uint16
		mode    string
	)
	cmd := &cobra.Command{
		Use:   "attach --interface IF --allow ADDR[,ADDR...]",
		Short: "Attach the decapsulator to an interface, or update it in place where it is attached",
		Long: "Attaches the decapsulator to --interface and pins it under " + decap.PinRoot + ". It takes " +
			"IPIP, and GUE on UDP port --gue-port if given, from the addresses in --allow only: the addresses " +
			"the balancers send tunnels from. Where it is attached already, the program, the allow-list and " +
			"the port are replaced in place, with no moment when tunnelled packets go undecapsulated.",
		Example: "  xdplb decap attach --interface eth0 --allow 10.0.0.1,10.0.0.2 --gue-port 6080\n" +
			"  xdplb decap attach --interface eth0.100 --allow 10.0.0.1 --xdp-mode generic",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("allow") {
				return fmt.Errorf("--allow: missing: give the addresses the balancers send tunnels from " +
					"(comma-separated); without an allow-list anyone could send packets to the VIPs through the tunnel")
			}
			if cmd.Flags().Changed("gue-port") && guePort == 0 {
				return fmt.Errorf("--gue-port: 0 is not a port; leave --gue-port out to take IPIP alone")
			}
			var sources []netip.Addr
			for _, s := range allow {
				a, err := netip.ParseAddr(strings.TrimSpace(s))
				if err != nil {
					return fmt.Errorf("--allow: %q is not an IP address", s)
				}
				sources = append(sources, a)
			}
			m, err := decap.ParseMode(mode)
			if err != nil {
				return fmt.Errorf("--xdp-mode: %w", err)
			}
			done, err := decap.Attach(ifname, sources, guePort, m)
			if err != nil {
				return err
			}
			what := "attached to"
			if done.Updated {
				what = "updated in place on"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "decapsulator %s %s (%s mode), pinned at %s: %s from %s reach the stack decapsulated\n",
				what, done.Interface, done.Mode, done.PinDir, tunnels(done.GUEPort), addrList(done.Sources))
			return nil
		},
	}
	cmd.Flags().StringVar(&ifname, "interface", "", "the interface the balancers' tunnels arrive on")
	cmd.Flags().StringSliceVar(&allow, "allow", nil, "the balancers' addresses, the outer sources allowed (comma-separated, or the flag repeated)")
	cmd.Flags().Uint16Var(&guePort, "gue-port", 0, "take GUE (IP directly in UDP) on this UDP port too (default IPIP alone)")
	cmd.Flags().StringVar(&mode, "xdp-mode", "native", "native (in the driver) or generic (any interface, slower)")
	cmd.MarkFlagRequired("interface")
	completeInterfaces(cmd)
	cmd.RegisterFlagCompletionFunc("xdp-mode", cobra.FixedCompletions([]string{"native", "generic"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newDecapDetachCmd() *cobra.Command {
	var ifname string
	cmd := &cobra.Command{
		Use:   "detach --interface IF",
		Short: "Detach the decapsulator from an interface and remove its pins",
		Long: "Detaches what `xdplb decap attach` attached to --interface and removes its pins, and nothing " +
			"else. Tunnelled packets then reach the stack as they are. An interface that is gone is not an " +
			"error: what is left of it is removed.",
		Example: "  xdplb decap detach --interface eth0",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := decap.Detach(ifname)
			if err != nil {
				return err
			}
			if !d.Found {
				fmt.Fprintf(cmd.OutOrStdout(), "the decapsulator is not attached to %s (nothing at %s): nothing to detach\n", d.Interface, d.PinDir)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "decapsulator detached from %s\n", d.Interface)
			return nil
		},
	}
	cmd.Flags().StringVar(&ifname, "interface", "", "the interface to detach from")
	cmd.MarkFlagRequired("interface")
	completeInterfaces(cmd)
	return cmd
}

func newDecapStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the interfaces the decapsulator is attached to, its allow-lists, ports and counters",
		Long: "Lists every interface the decapsulator is pinned for, in every network namespace: whether it is " +
			"attached and how, the balancers it takes tunnels from, its GUE port, and what it did with the " +
			"packets since it was first attached.",
		Example: "  xdplb decap status\n  xdplb decap status --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := decap.Status()
			if err != nil {
				return err
			}
			if asJSON {
				if all == nil {
					all = []decap.Attachment{}
				}
				return printJSON(cmd.OutOrStdout(), all)
			}
			printDecapStatus(cmd.OutOrStdout(), all)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

// completeInterfaces has --interface complete from this host's interfaces.
func completeInterfaces(cmd *cobra.Command) {
	cmd.RegisterFlagCompletionFunc("interface", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
}

func printDecapStatus(w io.Writer, all []decap.Attachment) {
	if len(all) == 0 {
		fmt.Fprintf(w, "the decapsulator is not attached to any interface (nothing under %s)\n", decap.PinRoot)
		return
	}
	for i, a := range all {
		if i > 0 {
			fmt.Fprintln(w)
		}
		where := a.Interface
		if !a.Here {
			where += fmt.Sprintf(" in network namespace %d", a.Netns)
		}
		switch {
		case !a.Attached:
			fmt.Fprintf(w, "%s: NOT ATTACHED: %s; pinned at %s\n", where, a.Problem, a.PinDir)
		case a.Mode != "":
			fmt.Fprintf(w, "%s (index %d): attached in %s mode (program %d), pinned at %s\n", where, a.Ifindex, a.Mode, a.Program, a.PinDir)
		default:
			fmt.Fprintf(w, "%s (index %d): attached (program %d), pinned at %s\n", where, a.Ifindex, a.Program, a.PinDir)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if a.Attached && a.Problem != "" {
			fmt.Fprintf(tw, "  problem:\t%s\n", a.Problem)
		}
		fmt.Fprintf(tw, "  tunnels:\t%s\n", tunnels(a.GUEPort))
		fmt.Fprintf(tw, "  allowed sources:\t%s\n", addrList(a.Sources))
		c := a.Counters
		fmt.Fprintf(tw, "  packets:\t%d decapsulated, %d dropped from sources not allowed, %d dropped malformed, %d not tunnelled\n",
			c.Decapsulated, c.DroppedSource, c.DroppedMalformed, c.NotTunnel)
		tw.Flush()
	}
}

// tunnels says which tunnels the decapsulator takes.
func tunnels(guePort uint16) string {
	if guePort == 0 {
		return "IPIP"
	}
	return fmt.Sprintf("IPIP and GUE on UDP port %d", guePort)
}

func addrList(addrs []netip.Addr) string {
	if len(addrs) == 0 {
		return "none"
	}
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
