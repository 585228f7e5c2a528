package main

import (
	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/config"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "xdplb",
		Short:         "Layer-4 load balancer with an XDP datapath (Full-NAT)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("socket", config.DefaultAPISocket, "the daemon's API socket")
	root.AddCommand(newServeCmd(), newDemoCmd(), newStatsCmd(), newConnCmd(),
		newListCmd(), newServiceCmd(), newBackendCmd(), newReloadCmd())
	return root
}
