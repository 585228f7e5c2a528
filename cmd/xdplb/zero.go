package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newZeroCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "zero [SERVICE]",
		Short: "Restart the counters listings show from zero (like ipvsadm -Z)",
		Long: "The totals `xdplb list --stats` and `xdplb stats` show restart from zero, for SERVICE " +
			"(VIP:PORT[/proto] or a name) or for every service. The Prometheus counters are not " +
			"touched: they only ever rise.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			service := ""
			if len(args) == 1 {
				service = args[0]
			}
			if err := client(cmd).Zero(cmd.Context(), service); err != nil {
				return err
			}
			if service == "" {
				service = "every service"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "counters of %s restart from zero\n", service)
			return nil
		},
	}
}
