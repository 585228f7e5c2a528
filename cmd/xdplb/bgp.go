package main

import (
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
)

func newBGPCmd() *cobra.Command {
	bgp := &cobra.Command{
		Use:   "bgp",
		Short: "BGP: the sessions with the routers and what this node announces",
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the sessions, and every prefix with whether it is announced and why not",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := client(cmd).BGP(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return printBGP(cmd.OutOrStdout(), st)
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	drain := func(use, short, long string, on bool) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Long:  long,
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var vip string
				if len(args) == 1 {
					if _, err := netip.ParseAddr(args[0]); err != nil {
						return fmt.Errorf("VIP %q is not an IP address", args[0])
					}
					vip = args[0]
				}
				st, err := client(cmd).Drain(cmd.Context(), vip, on)
				if err != nil {
					return err
				}
				return printBGP(cmd.OutOrStdout(), st)
			},
		}
	}
	bgp.AddCommand(status,
		drain("drain [VIP]", "Withdraw a VIP (every VIP without one) so the routers send its new flows elsewhere",
			"Withdraws the VIP's route from every router until undrain. This node's local addresses stay "+
				"announced, so the connections the routers move to other nodes still get their replies here. "+
				"A hand-over (SIGUSR2) keeps the drain; a stop forgets it.", true),
		drain("undrain [VIP]", "Announce a drained VIP again (every VIP without one)", "", false))
	return bgp
}

// printBGP writes the status as a person reads it.
func printBGP(w io.Writer, st api.BGPStatus) error {
	if !st.Enabled {
		_, err := fmt.Fprintln(w, "bgp: off (no bgp section in the configuration)")
		return err
	}
	fmt.Fprintf(w, "bgp: AS %d, router id %s\n", st.ASN, st.RouterID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tAS\tSTATE\tUPTIME\tSENT\tBFD\tLAST ERROR")
	for _, p := range st.Peers {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", p.Address, p.ASN, p.State, p.Uptime, p.Sent, or(p.BFD, "-"), or(p.LastError, "-"))
	}
	fmt.Fprintln(tw, "\nPREFIX\tKIND\tANNOUNCED\tWHY NOT")
	for _, p := range st.Prefixes {
		announced := "no"
		if p.Announced {
			announced = "yes"
			if p.Backup {
				announced = "yes (backup)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Prefix, p.Kind, announced, or(p.Why, "-"))
	}
	return tw.Flush()
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
