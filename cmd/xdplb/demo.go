package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var (
		mode     string
		requests int
		verbose  bool
		keep     bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the reference scenario in network namespaces and show round robin",
		Long: "Builds client, balancer and two real servers (rs-1, rs-2) in network namespaces " +
			"joined by a bridge, runs `xdplb serve` on the balancer, sends HTTP requests from the " +
			"client to the VIP 172.19.0.10:80, prints each answer and the datapath counters, and " +
			"removes everything again (with --keep, only at Ctrl-C). Needs root.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch mode {
			case "native", "generic", "auto":
			default:
				return fmt.Errorf("--mode %q: want native, generic or auto", mode)
			}
			if requests < 2 {
				return fmt.Errorf("--requests %d: want at least 2 to see the alternation", requests)
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			var logs io.Writer = io.Discard
			if verbose {
				logs = os.Stderr
			}
			return demo.Run(cmd.Context(), demo.Options{
				Mode: mode, Requests: requests, Binary: self, Out: os.Stdout, Logs: logs, PrintStats: printCounters, Keep: keep,
			})
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "native", "XDP attach mode of the balancer: native, generic or auto")
	cmd.Flags().IntVar(&requests, "requests", 4, "number of HTTP requests to send")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the balancer's log")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the scenario up after the requests, until Ctrl-C, to look around")
	return cmd
}
