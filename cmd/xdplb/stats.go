package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
)

func newStatsCmd() *cobra.Command {
	var (
		asJSON   bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the datapath counters of the running daemon, with per-service rates",
		Long: "Prints the totals per service and backend and every packet verdict that moved, then " +
			"the rates per service measured over --interval (0 for totals only).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 0 {
				return fmt.Errorf("--interval %s: must not be negative", interval)
			}
			socket, _ := cmd.Flags().GetString("socket")
			client := api.NewClient(socket)
			before, err := client.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(before)
			}
			if interval == 0 {
				printCounters(cmd.OutOrStdout(), before)
				return nil
			}
			start := time.Now()
			select {
			case <-time.After(interval):
			case <-cmd.Context().Done():
				return cmd.Context().Err()
			}
			after, err := client.Stats(cmd.Context())
			if err != nil {
				return err
			}
			printCounters(cmd.OutOrStdout(), after)
			printServiceRates(cmd.OutOrStdout(), before, after, time.Since(start))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the totals as JSON")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how long to measure rates over")
	return cmd
}

// printServiceRates prints connections, packets and bits per second for
// each service between two readings of the counters.
func printServiceRates(w io.Writer, before, after api.Stats, elapsed time.Duration) {
	was := indexStats(before)
	fmt.Fprintf(w, "\nrates over the last %s:\n", elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "service\tconn/s\tpkt/s in\tpkt/s out\tbit/s in\tbit/s out\t")
	for _, s := range after.Services {
		r := perSecond(was[statsKey{service: s.Address, protocol: strings.ToLower(s.Protocol)}].Traffic, s.Traffic, elapsed)
		fmt.Fprintf(tw, "%s %s/%s\t%d\t%d\t%d\t%s\t%s\t\n", s.Name, s.Address, s.Protocol,
			r.Conns, r.PacketsIn, r.PacketsOut, bits(r.BytesIn), bits(r.BytesOut))
	}
	tw.Flush()
}

// bits prints a byte rate as bits per second with an SI prefix.
func bits(bytesPerSec uint64) string {
	b := float64(bytesPerSec) * 8
	for _, unit := range []string{"", "k", "M", "G"} {
		if b < 1000 {
			return fmt.Sprintf("%.1f %sb/s", b, unit)
		}
		b /= 1000
	}
	return fmt.Sprintf("%.1f Tb/s", b)
}
