package bench

import (
	"fmt"
	"slices"
	"strings"
)

// Results is everything one harness run measured; it is written as
// results.json, and rendered as results.md.
type Results struct {
	Date     string        `json:"date"`
	Mode     string        `json:"mode"` // "full" or "short"
	Machine  Machine       `json:"machine"`
	Config   Config        `json:"config"`
	Datapath []PathCost    `json:"datapath_cost,omitempty"`
	Live     []LiveRate    `json:"packet_rate,omitempty"`
	Scale    *Scale        `json:"scale,omitempty"`
	E2E      []SetupResult `json:"end_to_end,omitempty"`
	Targets  []Target      `json:"targets,omitempty"`
	Errors   []string      `json:"errors,omitempty"`
	Seconds  float64       `json:"seconds"`
}

// Machine is what the numbers were measured on.
type Machine struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	// LoadAvg is /proc/loadavg when the run started: anything else
	// running on the machine skews the numbers.
	LoadAvg string `json:"loadavg"`
}

// PathCost is one path's kernel time per packet under BPF_PROG_TEST_RUN.
type PathCost struct {
	Name        string    `json:"name"`
	Label       string    `json:"label"`
	Packets     int       `json:"packets_per_run"`
	Runs        []float64 `json:"runs_ns"`
	NsPerPacket float64   `json:"ns_per_packet"` // median of Runs
	VsFloor     float64   `json:"vs_floor"`
	VsEmpty     float64   `json:"vs_empty"`
	OverFloor   float64   `json:"ns_over_floor"`
}

// LiveRate is a live-frames packet rate on one core.
type LiveRate struct {
	Name        string    `json:"name"`
	Label       string    `json:"label"`
	Packets     int       `json:"packets_per_run"`
	Batch       uint32    `json:"batch"`
	Runs        []float64 `json:"runs_mpps"`
	KernelNs    []float64 `json:"runs_kernel_ns_per_packet"`
	Mpps        float64   `json:"mpps"` // median of Runs
	NsPerPacket float64   `json:"wall_ns_per_packet"`
	VsFloor     float64   `json:"vs_floor"`
	// Delivered is the share of the last run's packets the veth peer
	// received: what XDP_TX really sent.
	Delivered float64 `json:"delivered"`
}

// Scale is the conntrack memory and the established paths' cost with a
// full table.
type Scale struct {
	Capacity       uint32      `json:"capacity"`
	Entries        int         `json:"entries_planted"`
	EntryBytes     uint64      `json:"conntrack_entry_bytes"`
	EstimatedBytes uint64      `json:"estimated_bytes"` // EntryBytes * Capacity
	MemlockEmpty   uint64      `json:"memlock_empty_bytes"`
	MemlockFull    uint64      `json:"memlock_full_bytes"`
	PlantSeconds   float64     `json:"plant_seconds"`
	Cases          []ScaleCase `json:"cases"`
}

// ScaleCase is the established paths' cost in one table state.
type ScaleCase struct {
	Name          string    `json:"name"`
	ToBackendRuns []float64 `json:"to_backend_runs_ns"`
	ToClientRuns  []float64 `json:"to_client_runs_ns"`
	ToBackend     float64   `json:"to_backend_ns"`
	ToClient      float64   `json:"to_client_ns"`
}

// SetupResult is one end-to-end setup's measurements.
type SetupResult struct {
	Name       string `json:"name"`
	Label      string `json:"label"`
	Status     string `json:"status"` // ok, skipped: ..., error: ...
	Note       string `json:"note,omitempty"`
	KeepAlive  Cell   `json:"keep_alive"`
	Close      Cell   `json:"connection_per_request"`
	Throughput Cell   `json:"tcp_throughput"`
}

// Cell is one workload on one setup: the runs and the median run.
type Cell struct {
	Runs   []Sample `json:"runs,omitempty"`
	RPS    float64  `json:"rps,omitempty"`
	P50us  float64  `json:"p50_us,omitempty"`
	P99us  float64  `json:"p99_us,omitempty"`
	Gbps   float64  `json:"gbps,omitempty"`
	Errors int64    `json:"errors,omitempty"`
}

// Sample is one load generator run.
type Sample struct {
	RPS        float64 `json:"rps,omitempty"`
	P50us      float64 `json:"p50_us,omitempty"`
	P99us      float64 `json:"p99_us,omitempty"`
	Requests   int64   `json:"requests,omitempty"`
	Errors     int64   `json:"errors,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
	Gbps       float64 `json:"gbps,omitempty"`
	Bytes      int64   `json:"bytes,omitempty"`
}

// Target is one of the goals and whether this run met it.
type Target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	// Result is PASS, MISS, or "n/a: ..." when a number it needs is
	// missing.
	Result string `json:"result"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *Results) path(name string) *PathCost {
	for i := range r.Datapath {
		if r.Datapath[i].Name == name {
			return &r.Datapath[i]
		}
	}
	return nil
}

func (r *Results) setup(name string) *SetupResult {
	for i := range r.E2E {
		if r.E2E[i].Name == name && r.E2E[i].Status == "ok" {
			return &r.E2E[i]
		}
	}
	return nil
}

// evaluate fills Targets from the measurements.
func (r *Results) evaluate() {
	r.Targets = nil
	add := func(name, goal string, ok bool, measured string, have bool) {
		t := Target{Name: name, Goal: goal, Measured: measured}
		switch {
		case !have:
			t.Result, t.Measured = "n/a: not measured", ""
		case ok:
			t.Result = "PASS"
		default:
			t.Result = "MISS"
		}
		r.Targets = append(r.Targets, t)
	}
	for _, name := range []string{pathToBackend, pathToClient} {
		p := r.path(name)
		have := p != nil
		var ratio float64
		if have {
			ratio = p.VsFloor
		}
		add(strings.ReplaceAll(name, "_", " "), "≤ 2.4x floor", ratio <= 2.4, fmt.Sprintf("%.2fx floor", ratio), have)
	}
	if p := r.path(pathNoService); p != nil {
		add("not for service", "≤ 1.4x empty", p.VsEmpty <= 1.4, fmt.Sprintf("%.2fx empty", p.VsEmpty), true)
	} else {
		add("not for service", "≤ 1.4x empty", false, "", false)
	}
	if p := r.path(pathNewConn); p != nil {
		add("new TCP connection", "≤ 600 ns", p.NsPerPacket <= 600, fmt.Sprintf("%.0f ns", p.NsPerPacket), true)
	} else {
		add("new TCP connection", "≤ 600 ns", false, "", false)
	}
	direct, native, nft := r.setup(setupDirect), r.setup(setupNative), r.setup(setupNftables)
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	if direct != nil && native != nil {
		k := ratio(native.KeepAlive.RPS, direct.KeepAlive.RPS)
		add("native keep-alive req/s", "≥ 0.95x no balancer", k >= 0.95, fmt.Sprintf("%.2fx", k), true)
		c := ratio(native.Close.RPS, direct.Close.RPS)
		add("native connection-per-request req/s", "≥ 0.9x no balancer", c >= 0.9, fmt.Sprintf("%.2fx", c), true)
	} else {
		add("native keep-alive req/s", "≥ 0.95x no balancer", false, "", false)
		add("native connection-per-request req/s", "≥ 0.9x no balancer", false, "", false)
	}
	if nft != nil && native != nil {
		t := ratio(native.Throughput.Gbps, nft.Throughput.Gbps)
		add("native TCP throughput", "≥ nftables", t >= 1, fmt.Sprintf("%.2fx nftables (%.2f vs %.2f Gbit/s)", t, native.Throughput.Gbps, nft.Throughput.Gbps), true)
	} else {
		add("native TCP throughput", "≥ nftables", false, "", false)
	}
}

// Markdown renders the results as the tables bench/README.md quotes.
func (r *Results) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# xdplb benchmark results\n\n")
	p("%s, %s mode, %.0f s. Machine: %d CPUs (%s), kernel %s, %s; load average at start %s.\n\n", r.Date, r.Mode, r.Seconds, r.Machine.CPUs, r.Machine.CPU, r.Machine.Kernel, r.Machine.Go, r.Machine.LoadAvg)
	if r.Mode != "full" {
		p("**Smoke run: the counts are far too small for the numbers to mean anything.**\n\n")
	}
	if len(r.Datapath) > 0 {
		p("## Datapath cost\n\nBPF_PROG_TEST_RUN, one frame per run on a fresh copy, kernel time per packet (includes the test run's own overhead, about 30 ns, on every path alike: the empty program's time is almost all overhead), median of %d runs of %d packets (%d SYNs for new connections), one pinned CPU.\n\n", r.Config.Runs, r.Config.Packets, r.Config.SYNs)
		p("| path | ns/packet | vs floor | vs empty |\n|---|---:|---:|---:|\n")
		for _, c := range r.Datapath {
			if !isComponent(c.Name) {
				p("| %s | %.0f | %.2fx | %.2fx |\n", c.Label, c.NsPerPacket, c.VsFloor, c.VsEmpty)
			}
		}
		p("\nWhat single operations cost, measured the same way: the floor program plus one of the operations xdplb performs.\n\n")
		p("| program | ns/packet | over floor |\n|---|---:|---:|\n")
		for _, c := range r.Datapath {
			if isComponent(c.Name) {
				p("| %s | %.0f | +%.0f |\n", c.Label, c.NsPerPacket, c.OverFloor)
			}
		}
		p("\n")
	}
	if len(r.Live) > 0 {
		p("## Packet rate, one core\n\nBPF_PROG_TEST_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES), batch %d, median of %d runs of %d packets; Mpps = packets / wall time of the syscalls. Every XDP_TX really leaves through the veth; its peer runs XDP_PASS and the stack drops the frame (not addressed to it), all on the same core.\n\n", r.Config.Batch, r.Config.LiveRuns, r.Config.LivePackets)
		p("| program | Mpps | wall ns/packet | kernel ns/packet | vs floor | reached peer |\n|---|---:|---:|---:|---:|---:|\n")
		for _, l := range r.Live {
			p("| %s | %.2f | %.0f | %.0f | %.2fx | %.0f%% |\n", l.Label, l.Mpps, l.NsPerPacket, median(l.KernelNs), l.VsFloor, 100*l.Delivered)
		}
		p("\n")
	}
	if s := r.Scale; s != nil {
		p("## Scale\n\nConntrack capacity %d connections. Estimated memory (datapath.ConntrackEntryBytes = %d bytes × capacity): %s; the kernel's account (memlock of both maps): %s empty, %s with %d connections (the maps are preallocated).\n\n",
			s.Capacity, s.EntryBytes, mib(s.EstimatedBytes), mib(s.MemlockEmpty), mib(s.MemlockFull), s.Entries)
		p("| conntrack table | client→backend ns/packet | backend→client ns/packet |\n|---|---:|---:|\n")
		for _, c := range s.Cases {
			p("| %s | %.0f | %.0f |\n", c.Name, c.ToBackend, c.ToClient)
		}
		p("\n")
	}
	if len(r.E2E) > 0 {
		p("## End to end\n\nReference topology (client, lb, rs1, rs2 in network namespaces on one bridge; all on the same %d CPUs). HTTP/1.1 GET of a 5-byte body from Go net/http servers on rs1 and rs2, %d closed-loop workers for %s; TCP: %d stream(s) for %s. Median of %d runs (latencies of the median run).\n\n",
			r.Machine.CPUs, r.Config.Workers, r.Config.HTTPDuration, r.Config.Streams, r.Config.StreamDuration, r.Config.E2ERuns)
		p("| setup | keep-alive req/s | p50 µs | p99 µs | conn/request req/s | p50 µs | p99 µs | TCP Gbit/s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.E2E {
			if s.Status != "ok" {
				p("| %s | %s | | | | | | |\n", s.Label, s.Status)
				continue
			}
			p("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f |\n", s.Label,
				s.KeepAlive.RPS, s.KeepAlive.P50us, s.KeepAlive.P99us, s.Close.RPS, s.Close.P50us, s.Close.P99us, s.Throughput.Gbps)
		}
		for _, x := range []string{setupNative, setupGeneric} {
			for _, y := range []string{setupDirect, setupForward, setupHAProxy, setupNftables} {
				a, b := r.setup(x), r.setup(y)
				if a == nil || b == nil {
					continue
				}
				rt := func(u, v float64) string {
					if v == 0 {
						return ""
					}
					return fmt.Sprintf("%.2fx", u/v)
				}
				p("| *%s / %s* | %s | %s | %s | %s | %s | %s | %s |\n", a.Label, b.Label,
					rt(a.KeepAlive.RPS, b.KeepAlive.RPS), rt(a.KeepAlive.P50us, b.KeepAlive.P50us), rt(a.KeepAlive.P99us, b.KeepAlive.P99us),
					rt(a.Close.RPS, b.Close.RPS), rt(a.Close.P50us, b.Close.P50us), rt(a.Close.P99us, b.Close.P99us),
					rt(a.Throughput.Gbps, b.Throughput.Gbps))
			}
		}
		p("\n")
		for _, s := range r.E2E {
			if s.Note != "" {
				p("- %s: %s\n", s.Label, s.Note)
			}
			if n := s.KeepAlive.Errors + s.Close.Errors; n > 0 {
				p("- %s: %d failed requests\n", s.Label, n)
			}
		}
		p("\n")
	}
	if len(r.Targets) > 0 {
		p("## Targets\n\n| target | goal | measured | result |\n|---|---|---|---|\n")
		for _, t := range r.Targets {
			p("| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Measured, t.Result)
		}
		p("\n")
	}
	if len(r.Errors) > 0 {
		p("## Errors\n\n")
		for _, e := range r.Errors {
			p("- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
	}
	return b.String()
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
