package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

// rateInterval is how far apart list --rate reads the counters.
var rateInterval = time.Second

func newListCmd() *cobra.Command {
	var stats, rate, exact, asJSON, timeout bool
	cmd := &cobra.Command{
		Use:     "list [SERVICE] [--stats | --rate | --timeout] [--exact] [--json]",
		Aliases: []string{"ls"},
		Short:   "List the virtual services and their backends (like ipvsadm -Ln)",
		Long: "Lists every service with its scheduler and flags, and every backend with its weight, " +
			"health (up or down) and connections: ActiveConn counts established ones, InActConn " +
			"the rest (opening, closing, UDP), as of the collector's last sweep (every gc_interval).\n\n" +
			"--stats shows the totals since each service and backend was added instead; --rate " +
			"reads the counters twice, a second apart, and shows the rates per second; --timeout " +
			"shows the connection timeouts (like ipvsadm -L --timeout). SERVICE (VIP:PORT[/proto] " +
			"or a name) lists that service only.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout {
				return printTimeouts(cmd, asJSON)
			}
			l, err := gatherList(cmd.Context(), client(cmd), stats, rate)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				if l, err = onlyService(l, args[0]); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			switch {
			case asJSON:
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(l)
			case stats:
				printStats(out, l, exact)
			case rate:
				printRates(out, l, exact)
			default:
				printList(out, l)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "show traffic totals: connections, packets and bytes")
	cmd.Flags().BoolVar(&rate, "rate", false, "show traffic rates: connections, packets and bytes per second")
	cmd.Flags().BoolVarP(&exact, "exact", "x", false, "print exact numbers, not K, M, G and T abbreviations")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&timeout, "timeout", false, "show the connection timeouts")
	cmd.MarkFlagsMutuallyExclusive("stats", "rate", "timeout")
	return cmd
}

// onlyService keeps the service ref names.
func onlyService(l []listService, arg string) ([]listService, error) {
	ref, err := ident.ParseRef(arg)
	if err != nil {
		return nil, err
	}
	var out []listService
	for _, s := range l {
		if ref.Matches(s.Key(), s.Name) {
			out = append(out, s)
		}
	}
	if out == nil {
		return nil, fmt.Errorf("service %s not found", ref)
	}
	return out, nil
}

// printTimeouts prints the timeouts as ipvsadm -L --timeout does, then
// the two phases xdplb adds, and the rate of new connections the FIN
// timeout allows each backend.
func printTimeouts(cmd *cobra.Command, asJSON bool) error {
	st, err := client(cmd).Status(cmd.Context())
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			api.Timeouts
			LocalPortsPerBackend uint64  `json:"local_ports_per_backend"`
			NewConnsCeiling      float64 `json:"new_conns_ceiling_per_backend"`
		}{st.Timeouts, st.LocalPortsPerBackend, st.NewConnsCeiling})
	}
	t := st.Timeouts
	sec := func(d time.Duration) int64 { return int64(d / time.Second) }
	fmt.Fprintf(out, "Timeout (tcp tcpfin udp): %d %d %d\n", sec(t.Established), sec(t.FinWait), sec(t.UDP))
	fmt.Fprintf(out, "Timeout (syn_sent close): %d %d\n", sec(t.SynSent), sec(t.Close))
	fmt.Fprintf(out, "Local ports per backend: %d; new connections from distinct client ports: about %.0f/s per backend (ports / tcpfin)\n",
		st.LocalPortsPerBackend, st.NewConnsCeiling)
	return nil
}

// listService is a service as list shows it; JSON has every field of
// api.ServiceView and the counts, totals or rates.
type listService struct {
	api.ServiceView
	Backends []listBackend `json:"backends"`
	Stats    *api.Traffic  `json:"stats,omitempty"`
	Rate     *rates        `json:"rate,omitempty"`
}

type listBackend struct {
	api.BackendView
	ActiveConns   uint64       `json:"active_conns"`
	InactiveConns uint64       `json:"inactive_conns"`
	Stats         *api.Traffic `json:"stats,omitempty"`
	Rate          *rates       `json:"rate,omitempty"`
}

// rates are per second.
type rates struct {
	Conns      uint64 `json:"conns"`
	PacketsIn  uint64 `json:"packets_in"`
	PacketsOut uint64 `json:"packets_out"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
}

// gatherList reads services and the counters, twice (rateInterval apart)
// for rates. Connection counts come with the counters, from the daemon's
// last sweep: the table itself never crosses the socket.
func gatherList(ctx context.Context, c *api.Client, withStats, withRates bool) ([]listService, error) {
	views, err := c.Services(ctx)
	if err != nil {
		return nil, err
	}
	st, err := c.Stats(ctx)
	if err != nil {
		return nil, err
	}
	after := indexStats(st)
	var before statsIndex
	var elapsed time.Duration
	if withRates {
		start := time.Now()
		select {
		case <-time.After(rateInterval):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		st, err := c.Stats(ctx)
		if err != nil {
			return nil, err
		}
		elapsed = time.Since(start)
		before, after = after, indexStats(st)
	}

	out := make([]listService, 0, len(views))
	for _, v := range views {
		sk := statsKey{service: hostPort(v.VIP, v.Port), protocol: strings.ToLower(v.Protocol)}
		ls := listService{ServiceView: v, Backends: make([]listBackend, 0, len(v.Backends))}
		if withStats || withRates {
			t := after[sk].Traffic
			ls.Stats = &t
			if before != nil {
				ls.Rate = perSecond(before[sk].Traffic, t, elapsed)
			}
		}
		for _, b := range v.Backends {
			bk := sk
			bk.backend = hostPort(b.Address, b.Port)
			bs := after[bk]
			lb := listBackend{BackendView: b, ActiveConns: bs.ActiveConns, InactiveConns: bs.InactiveConns}
			if withStats || withRates {
				t := bs.Traffic
				lb.Stats = &t
				if before != nil {
					lb.Rate = perSecond(before[bk].Traffic, t, elapsed)
				}
			}
			ls.Backends = append(ls.Backends, lb)
		}
		out = append(out, ls)
	}
	return out, nil
}

// statsKey locates a service's counters (backend empty) or one of its
// backends'.
type statsKey struct{ service, protocol, backend string }

// statsIndex holds the counters and connection counts by statsKey.
type statsIndex map[statsKey]api.BackendStats

func indexStats(st api.Stats) statsIndex {
	idx := statsIndex{}
	for _, s := range st.Services {
		k := statsKey{service: s.Address, protocol: strings.ToLower(s.Protocol)}
		idx[k] = api.BackendStats{Traffic: s.Traffic}
		for _, b := range s.Backends {
			bk := k
			bk.backend = b.Address
			idx[bk] = b
		}
	}
	return idx
}

func perSecond(before, after api.Traffic, elapsed time.Duration) *rates {
	per := func(a, b uint64) uint64 {
		if b < a || elapsed <= 0 { // counters reset: the service was re-added
			return 0
		}
		return uint64(float64(b-a)/elapsed.Seconds() + 0.5)
	}
	return &rates{
		Conns:      per(before.NewConns, after.NewConns),
		PacketsIn:  per(before.PacketsIn, after.PacketsIn),
		PacketsOut: per(before.PacketsOut, after.PacketsOut),
		BytesIn:    per(before.BytesIn, after.BytesIn),
		BytesOut:   per(before.BytesOut, after.BytesOut),
	}
}

// printList prints what ipvsadm -Ln does, with State for health checks.
func printList(w io.Writer, l []listService) {
	fmt.Fprintln(w, "Prot LocalAddress:Port Scheduler Flags")
	fmt.Fprintln(w, "  -> RemoteAddress:Port           Forward Weight State ActiveConn InActConn")
	for _, s := range l {
		fmt.Fprintf(w, "%-4s %s\n", strings.ToUpper(s.Protocol), serviceLine(s.ServiceView))
		fwd := forwardName(s.Forwarding)
		for _, b := range s.Backends {
			state := "up"
			if !b.Up {
				state = "down"
			}
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-5s %-10d %d%s\n", hostPort(b.Address, b.Port),
				fwd, b.Weight, state, b.ActiveConns, b.InactiveConns, healthNote(b.BackendView))
		}
		if f := s.Fallback; f != nil {
			fmt.Fprintf(w, "  -> %-28s %-7s (fallback: takes new connections while no backend can)\n",
				hostPort(f.Address, f.Port), fwd)
		}
	}
}

// forwardName is a forwarding mode as ipvsadm's Forward column says it
// (Masq, Route, Tunnel): FullNAT, Route for dsr-l2, Tunnel for dsr-ipip,
// GUE for dsr-gue.
func forwardName(forwarding string) string {
	switch forwarding {
	case "", config.ForwardingFullNAT:
		return "FullNAT"
	case config.ForwardingDSRL2:
		return "Route"
	case config.ForwardingDSRIPIP:
		return "Tunnel"
	case config.ForwardingDSRGUE:
		return "GUE"
	}
	return forwarding
}

// healthNote tells, for a checked backend, since when it is in its state
// and, if down, why.
func healthNote(b api.BackendView) string {
	if b.Since.IsZero() {
		return ""
	}
	if b.Up {
		return fmt.Sprintf("  (up since %s)", b.Since.Local().Format("15:04:05"))
	}
	note := fmt.Sprintf("  (down since %s", b.Since.Local().Format("15:04:05"))
	if b.Reason != "" {
		note += ": " + b.Reason
	}
	return note + ")"
}

func printStats(w io.Writer, l []listService, exact bool) {
	fmt.Fprintln(w, "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes")
	fmt.Fprintln(w, "  -> RemoteAddress:Port")
	row := func(name string, t *api.Traffic) {
		fmt.Fprintf(w, "%-33s%s%s%s%s%s\n", name, largeNum(t.NewConns, exact), largeNum(t.PacketsIn, exact),
			largeNum(t.PacketsOut, exact), largeNum(t.BytesIn, exact), largeNum(t.BytesOut, exact))
	}
	for _, s := range l {
		row(fmt.Sprintf("%-4s %s", strings.ToUpper(s.Protocol), hostPort(s.VIP, s.Port)), s.Stats)
		for _, b := range s.Backends {
			row("  -> "+hostPort(b.Address, b.Port), b.Stats)
		}
	}
}

func printRates(w io.Writer, l []listService, exact bool) {
	fmt.Fprintln(w, "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS")
	fmt.Fprintln(w, "  -> RemoteAddress:Port")
	row := func(name string, r *rates) {
		fmt.Fprintf(w, "%-33s%s%s%s%s%s\n", name, largeNum(r.Conns, exact), largeNum(r.PacketsIn, exact),
			largeNum(r.PacketsOut, exact), largeNum(r.BytesIn, exact), largeNum(r.BytesOut, exact))
	}
	for _, s := range l {
		row(fmt.Sprintf("%-4s %s", strings.ToUpper(s.Protocol), hostPort(s.VIP, s.Port)), s.Rate)
		for _, b := range s.Backends {
			row("  -> "+hostPort(b.Address, b.Port), b.Rate)
		}
	}
}

// largeNum is a column of 9 characters, abbreviated past 8 digits unless
// exact, as ipvsadm prints it.
func largeNum(n uint64, exact bool) string {
	switch {
	case exact || n < 100_000_000:
		return fmt.Sprintf(" %8d", n)
	case n < 1_000_000_000:
		return fmt.Sprintf("%8dK", n/1_000)
	case n < 100_000_000_000:
		return fmt.Sprintf("%8dM", n/1_000_000)
	case n < 100_000_000_000_000:
		return fmt.Sprintf("%8dG", n/1_000_000_000)
	}
	return fmt.Sprintf("%8dT", n/1_000_000_000_000)
}
