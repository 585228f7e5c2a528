package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/datapath"
)

// printCounters writes the counters as a person reads them: one line per
// service and backend, then every packet verdict reason that moved.
func printCounters(w io.Writer, st api.Stats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "service / backend\tconns\tpkts in\tbytes in\tpkts out\tbytes out\t")
	for _, s := range st.Services {
		t := s.Traffic
		fmt.Fprintf(tw, "%s %s/%s (%s)\t%d\t%d\t%d\t%d\t%d\t\n", s.Name, s.Address, s.Protocol, s.Scheduler,
			t.NewConns, t.PacketsIn, t.BytesIn, t.PacketsOut, t.BytesOut)
		for _, b := range s.Backends {
			t := b.Traffic
			fmt.Fprintf(tw, "  -> %s\t%d\t%d\t%d\t%d\t%d\t\n", b.Address, t.NewConns, t.PacketsIn, t.BytesIn, t.PacketsOut, t.BytesOut)
		}
	}
	tw.Flush()

	names := make([]string, 0, len(st.Reasons))
	for name, n := range st.Reasons {
		if n > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	fmt.Fprintln(w, "\npacket verdicts (non-zero):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, name := range names {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", name, st.Reasons[name], datapath.Describe(name))
	}
	tw.Flush()
	printTOA(w, st.TOA)
}

// printTOA writes the client-address option's counters, if any moved.
func printTOA(w io.Writer, counts map[string]uint64) {
	var moved []string
	for name, n := range counts {
		if n > 0 {
			moved = append(moved, fmt.Sprintf("%s %d", name, n))
		}
	}
	if len(moved) == 0 {
		return
	}
	sort.Strings(moved)
	fmt.Fprintf(w, "\nclient address option (toa): %s\n", strings.Join(moved, ", "))
}
