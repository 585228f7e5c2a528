// Command xdplb-bench runs xdplb's benchmark harness (see bench/README.md)
// and writes bench/results/results.md and results.json. Run it as root
// from the repository root:
//
//	go run ./bench/cmd/xdplb-bench          # full run, ~10 minutes
//	go run ./bench/cmd/xdplb-bench -short   # every stage, tiny counts
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/xdplb/xdplb/bench"
)

func main() {
	bench.MaybeHelper()
	short := flag.Bool("short", false, "smoke mode: every stage with tiny counts (the numbers mean nothing)")
	out := flag.String("out", "bench/results", "directory for results.md and results.json")
	xdplb := flag.String("xdplb", "", "xdplb executable (default: build it from this module)")
	noInstall := flag.Bool("no-install", false, "do not apt-get install missing peers (haproxy, nftables); skip them")
	flag.Parse()

	cfg := bench.FullConfig()
	if *short {
		cfg = bench.ShortConfig()
	}
	if *noInstall {
		cfg.Install = false
	}
	cfg.OutDir, cfg.XDPLB, cfg.Log = *out, *xdplb, os.Stdout
	// Interrupting stops the run between steps; what was built is torn
	// down on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "xdplb-bench:", err)
		os.Exit(1)
	}
}
