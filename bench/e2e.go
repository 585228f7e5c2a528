package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// Setup names, as they appear in results.json.
const (
	setupDirect   = "direct"
	setupForward  = "kernel_forward"
	setupNative   = "xdplb_native"
	setupGeneric  = "xdplb_generic"
	setupHAProxy  = "haproxy"
	setupNftables = "nftables"
)

// streamPort is where the throughput sinks listen on rs1 and rs2, and the
// VIP port that balances over them.
const streamPort = 5201

// benchServices are the xdplb services of the end-to-end stage: the
// reference web service (172.19.0.10:80, rr over rs1 and rs2) and the same
// for the throughput sinks.
var benchServices = fmt.Sprintf(`  - name: web
    vip: 172.19.0.10
    port: 80
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
  - name: stream
    vip: 172.19.0.10
    port: %d
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`, streamPort)

// Connection churn settings shared by the NAT peers: a closed
// connection's state is kept 10 s (xdplb's fin_wait and close; nftables'
// TIME_WAIT and CLOSE), so a minute of connection-per-request load does
// not fill the local port space. Both defaults (120 s) are meant for
// real clients, not for tens of thousands of connections a second from
// one address.
const churnSeconds = 10

const xdplbExtra = `log:
  level: warn
conntrack:
  gc_interval: 1s
  timeouts:
    fin_wait: 10s
    close: 10s
`

// setup is one way of getting from the client to the servers.
type setup struct {
	name, label string
	// target is the host the client addresses (the VIP, or rs1 directly).
	target netip.Addr
	// tool is the program the setup needs, or "".
	tool string
	// start brings the setup up on a fresh reference topology and returns
	// what to stop afterwards, and a note on how it ran.
	start func(ctx context.Context, r *run, ref *testbed.Reference, dir string) (stop func() error, note string, err error)
}

func setups() []setup {
	return []setup{
		{setupDirect, "no balancer (client to rs1)", testbed.ReferenceRS1, "", func(context.Context, *run, *testbed.Reference, string) (func() error, string, error) {
			return nil, "", nil
		}},
		{setupForward, "kernel IP forwarding via lb, no NAT (client to rs1)", testbed.ReferenceRS1, "", startForward},
		{setupNative, "xdplb, native XDP", testbed.ReferenceVIP, "", startXDPLB("native")},
		{setupGeneric, "xdplb, generic XDP", testbed.ReferenceVIP, "", startXDPLB("generic")},
		{setupHAProxy, "HAProxy (TCP mode)", testbed.ReferenceVIP, "haproxy", startHAProxy},
		{setupNftables, "nftables DNAT + SNAT", testbed.ReferenceVIP, "nft", startNftables},
	}
}

// running is one setup brought up on its own reference topology.
type running struct {
	setup
	res  *SetupResult
	ref  *testbed.Reference
	undo []func() error // in reverse order
	err  error
}

func (u *running) teardown() error {
	var errs []error
	for i := len(u.undo) - 1; i >= 0; i-- {
		errs = append(errs, u.undo[i]())
	}
	u.undo = nil
	return errors.Join(errs...)
}

// workload is one kind of load the generator puts on every setup.
type workload struct {
	name     string
	kind     string // "http" or "stream"
	args     func(target netip.Addr) []string
	duration time.Duration
	cell     func(*SetupResult) *Cell
}

// runE2E brings every setup up on its own reference topology (they are
// isolated from each other, and idle ones cost nothing), then measures
// them in rounds: each round runs every workload once on every setup, so
// that drift on the shared machine spreads over all setups alike instead
// of favouring whichever ran first. Everything is torn down at the end,
// also on failure.
func (r *run) runE2E(ctx context.Context) []SetupResult {
	cfg := r.cfg
	workloads := []workload{
		{"keep-alive", "http", func(t netip.Addr) []string {
			return []string{"http", "-addr", netip.AddrPortFrom(t, 80).String(), "-workers", fmt.Sprint(cfg.Workers), "-keepalive=true"}
		}, cfg.HTTPDuration, func(s *SetupResult) *Cell { return &s.KeepAlive }},
		{"connection per request", "http", func(t netip.Addr) []string {
			return []string{"http", "-addr", netip.AddrPortFrom(t, 80).String(), "-workers", fmt.Sprint(cfg.Workers), "-keepalive=false"}
		}, cfg.HTTPDuration, func(s *SetupResult) *Cell { return &s.Close }},
		{"TCP throughput", "stream", func(t netip.Addr) []string {
			return []string{"stream", "-addr", netip.AddrPortFrom(t, streamPort).String(), "-workers", fmt.Sprint(cfg.Streams)}
		}, cfg.StreamDuration, func(s *SetupResult) *Cell { return &s.Throughput }},
	}
	all := setups()
	results := make([]SetupResult, len(all))
	var up []*running
	defer func() {
		for _, u := range up {
			if err := u.teardown(); err != nil {
				r.fail(fmt.Errorf("end to end, %s: tear down: %w", u.name, err))
			}
		}
	}()
	for i, s := range all {
		results[i] = SetupResult{Name: s.name, Label: s.label}
		if s.tool != "" && r.tools[s.tool] == "" {
			results[i].Status = "skipped: not installed"
			r.log("%s: %s (%s)", s.name, results[i].Status, s.tool)
			continue
		}
		u := &running{setup: s, res: &results[i]}
		if err := r.bringUp(ctx, u); err != nil {
			results[i].Status = "error: " + err.Error()
			r.log("%s: %v", s.name, err)
			r.fail(fmt.Errorf("end to end, %s: %w", s.name, err))
			if terr := u.teardown(); terr != nil {
				r.fail(fmt.Errorf("end to end, %s: tear down: %w", s.name, terr))
			}
			continue
		}
		r.log("%s: up (%s)%s", s.name, s.label, prefixed("; ", results[i].Note))
		up = append(up, u)
	}
	for round := 0; round < cfg.E2ERuns; round++ {
		for _, w := range workloads {
			for _, u := range up {
				if u.err != nil {
					continue
				}
				args := w.args(u.target)
				if round == 0 && cfg.Warmup > 0 {
					if _, err := r.helper(ctx, u.ref.Client, append(args, "-d", cfg.Warmup.String())); err != nil {
						u.err = fmt.Errorf("%s warm-up: %w", w.name, err)
						continue
					}
				}
				out, err := r.helper(ctx, u.ref.Client, append(args, "-d", w.duration.String()))
				c := w.cell(u.res)
				if err == nil {
					err = c.add(w.kind, out)
				}
				if err != nil {
					u.err = fmt.Errorf("%s: %w", w.name, err)
					continue
				}
				r.log("  round %d/%d, %s, %s: %s", round+1, cfg.E2ERuns, w.name, u.name, c.last())
			}
		}
	}
	for _, u := range up {
		if u.err != nil {
			u.res.Status = "error: " + u.err.Error()
			r.fail(fmt.Errorf("end to end, %s: %w", u.name, u.err))
			continue
		}
		u.res.Status = "ok"
		for _, w := range workloads {
			w.cell(u.res).summarise()
		}
	}
	return results
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// bringUp builds u's topology with backends (HTTP on :80, throughput
// sinks on :streamPort) and starts its balancer; u.undo collects what to
// tear down.
func (r *run) bringUp(ctx context.Context, u *running) error {
	ref, err := testbed.NewReference()
	if err != nil {
		return err
	}
	u.ref = ref
	u.undo = append(u.undo, ref.Close)
	if err := ref.ServeBackends(":80", ""); err != nil {
		return err
	}
	for _, rs := range []*testbed.Host{ref.RS1, ref.RS2} {
		l, err := rs.Listen("tcp", fmt.Sprintf(":%d", streamPort))
		if err != nil {
			return err
		}
		done := make(chan struct{})
		go func() { defer close(done); serveSink(l) }()
		u.undo = append(u.undo, func() error { l.Close(); <-done; return nil })
	}
	// The generator's ports: wide, and TIME_WAIT ones reusable.
	if err := sysctls(ref.Client, map[string]string{
		"net/ipv4/ip_local_port_range": "1024 65000",
		"net/ipv4/tcp_tw_reuse":        "1",
	}); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "xdplb-bench-")
	if err != nil {
		return err
	}
	u.undo = append(u.undo, func() error { return os.RemoveAll(dir) })
	stop, note, err := u.start(ctx, r, ref, dir)
	if err != nil {
		return err
	}
	if stop != nil {
		u.undo = append(u.undo, stop)
	}
	u.res.Note = note
	return waitReachable(ctx, ref.Client, netip.AddrPortFrom(u.target, 80))
}

// helper runs the load generator (this executable, see MaybeHelper) in
// host's namespace and returns what it printed.
func (r *run) helper(ctx context.Context, host *testbed.Host, args []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := host.Command(ctx, r.self, args...)
	cmd.Env = append(os.Environ(), HelperEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	p, err := host.StartCmd(cmd)
	if err != nil {
		return nil, err
	}
	if err := p.Wait(); err != nil {
		return nil, fmt.Errorf("load generator %v: %w: %s", args, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func (c *Cell) add(kind string, out []byte) error {
	switch kind {
	case "http":
		var h httpResult
		if err := json.Unmarshal(out, &h); err != nil {
			return fmt.Errorf("load generator output %q: %w", out, err)
		}
		if h.Requests == 0 {
			return fmt.Errorf("no request was answered (%d errors, first: %s)", h.Errors, h.FirstError)
		}
		c.Runs = append(c.Runs, Sample{RPS: h.RPS, P50us: h.P50us, P99us: h.P99us, Requests: h.Requests, Errors: h.Errors, FirstError: h.FirstError})
	case "stream":
		var s streamResult
		if err := json.Unmarshal(out, &s); err != nil {
			return fmt.Errorf("load generator output %q: %w", out, err)
		}
		c.Runs = append(c.Runs, Sample{Gbps: s.Gbps, Bytes: s.Bytes})
	}
	return nil
}

func (c *Cell) last() string {
	x := c.Runs[len(c.Runs)-1]
	if x.Gbps > 0 {
		return fmt.Sprintf("%.2f Gbit/s", x.Gbps)
	}
	s := fmt.Sprintf("%.0f req/s, p50 %.0f µs, p99 %.0f µs", x.RPS, x.P50us, x.P99us)
	if x.Errors > 0 {
		s += fmt.Sprintf(", %d errors (first: %s)", x.Errors, x.FirstError)
	}
	return s
}

// summarise takes the run with the median rate (its latencies go with it).
func (c *Cell) summarise() {
	if len(c.Runs) == 0 {
		return
	}
	var rates []float64
	for _, x := range c.Runs {
		rates = append(rates, x.RPS+x.Gbps)
	}
	m := median(rates)
	for _, x := range c.Runs {
		if x.RPS+x.Gbps == m {
			c.RPS, c.P50us, c.P99us, c.Gbps = x.RPS, x.P50us, x.P99us, x.Gbps
		}
	}
	for _, x := range c.Runs {
		c.Errors += x.Errors
	}
}

// waitReachable waits until a TCP connection from host to addr succeeds.
func waitReachable(ctx context.Context, host *testbed.Host, addr netip.AddrPort) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := host.DialContext(dctx, "tcp", addr.String())
		cancel()
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not reachable from %s: %w", addr, host.Name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func sysctls(h *testbed.Host, kv map[string]string) error {
	return h.Do(func() error {
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				return fmt.Errorf("host %s: sysctl %s: %w", h.Name, k, err)
			}
		}
		return nil
	})
}

func startXDPLB(mode string) func(context.Context, *run, *testbed.Reference, string) (func() error, string, error) {
	return func(ctx context.Context, r *run, ref *testbed.Reference, dir string) (func() error, string, error) {
		// The widest local port range the balancer accepts: the lb host's
		// own ephemeral ports moved out of the way.
		if err := sysctls(ref.LB, map[string]string{"net/ipv4/ip_local_port_range": "61000 65000"}); err != nil {
			return nil, "", err
		}
		cfg := demo.Setup{Mode: mode, Dir: dir, Services: benchServices, Ports: "1024-60999", Extra: xdplbExtra}.YAML()
		logs := &bytes.Buffer{}
		bal, err := demo.StartBalancer(ctx, ref.LB, r.xdplb, dir, cfg, logs)
		if err != nil {
			return nil, "", fmt.Errorf("start xdplb: %w\n%s", err, logs)
		}
		stop := func() error {
			err := bal.Stop()
			// SIGTERM unpins everything; a killed balancer would not.
			rerr := os.RemoveAll(demo.PinPath(dir))
			if err != nil {
				return errors.Join(fmt.Errorf("stop xdplb: %w\n%s", err, logs), rerr)
			}
			return rerr
		}
		st, err := bal.API.Status(ctx)
		if err != nil {
			return nil, "", errors.Join(err, stop())
		}
		var modes []string
		for _, a := range st.Interfaces {
			modes = append(modes, a.Name+" "+string(a.Mode))
			if string(a.Mode) != mode {
				return nil, "", errors.Join(fmt.Errorf("xdplb attached to %s in %s mode, want %s", a.Name, a.Mode, mode), stop())
			}
		}
		return stop, "attached: " + strings.Join(modes, ", "), nil
	}
}

const haproxyConfig = `global
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend web
    bind 172.19.0.10:80
    default_backend web
backend web
    balance roundrobin
    server rs1 172.19.0.2:80
    server rs2 172.19.0.3:80
frontend stream
    bind 172.19.0.10:%[1]d
    default_backend stream
backend stream
    balance roundrobin
    server rs1 172.19.0.2:%[1]d
    server rs2 172.19.0.3:%[1]d
`

func startHAProxy(ctx context.Context, r *run, ref *testbed.Reference, dir string) (func() error, string, error) {
	if err := ref.LB.AddAddr(netip.PrefixFrom(testbed.ReferenceVIP, 32)); err != nil {
		return nil, "", err
	}
	if err := sysctls(ref.LB, map[string]string{"net/ipv4/ip_local_port_range": "1024 65000"}); err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, fmt.Appendf(nil, haproxyConfig, streamPort), 0o644); err != nil {
		return nil, "", err
	}
	logs := &bytes.Buffer{}
	cmd := ref.LB.Command(context.WithoutCancel(ctx), r.tools["haproxy"], "-f", path, "-db")
	cmd.Stdout, cmd.Stderr = logs, logs
	p, err := ref.LB.StartCmd(cmd)
	if err != nil {
		return nil, "", err
	}
	stop := func() error {
		p.Kill()
		p.Wait()
		return nil
	}
	// Fail early, with its words, if it does not come up.
	if err := waitReachable(ctx, ref.Client, netip.AddrPortFrom(testbed.ReferenceVIP, 80)); err != nil {
		stop()
		return nil, "", fmt.Errorf("haproxy: %w\n%s", err, logs)
	}
	return stop, haproxyVersion(r.tools["haproxy"]), nil
}

func haproxyVersion(bin string) string {
	out, err := exec.Command(bin, "-v").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	line, _, _ = strings.Cut(line, " - ")
	return strings.TrimSpace(line) + "; default nbthread (one thread per CPU)"
}

const nftRuleset = `table ip xdplb_bench {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 172.19.0.10 tcp dport { 80, %d } dnat to numgen inc mod 2 map { 0 : 172.19.0.2, 1 : 172.19.0.3 }
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ct status dnat ip daddr { 172.19.0.2, 172.19.0.3 } snat to 172.19.0.5
	}
}
`

func startNftables(ctx context.Context, r *run, ref *testbed.Reference, dir string) (func() error, string, error) {
	if err := ref.LB.AddAddr(netip.PrefixFrom(testbed.ReferenceVIP, 32)); err != nil {
		return nil, "", err
	}
	if err := sysctls(ref.LB, map[string]string{
		"net/ipv4/ip_forward": "1",
		// Forwarding out of the interface a packet came in on would
		// otherwise send the client an ICMP redirect per packet.
		"net/ipv4/conf/all/send_redirects":  "0",
		"net/ipv4/conf/eth0/send_redirects": "0",
	}); err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "ruleset.nft")
	if err := os.WriteFile(path, fmt.Appendf(nil, nftRuleset, streamPort), 0o644); err != nil {
		return nil, "", err
	}
	var out []byte
	err := ref.LB.Do(func() error {
		var err error
		out, err = exec.CommandContext(ctx, r.tools["nft"], "-f", path).CombinedOutput()
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("nft -f: %w: %s", err, out)
	}
	// The conntrack timeouts exist once the rules pulled the module in;
	// they are per namespace.
	if err := sysctls(ref.LB, map[string]string{
		"net/netfilter/nf_conntrack_tcp_timeout_time_wait": fmt.Sprint(churnSeconds),
		"net/netfilter/nf_conntrack_tcp_timeout_close":     fmt.Sprint(churnSeconds),
	}); err != nil {
		return nil, "", err
	}
	// The rules go with the namespace.
	return nil, "numgen inc mod 2 DNAT, SNAT to 172.19.0.5, conntrack TIME_WAIT 10 s", nil
}

// startForward routes client <-> rs1 through lb (plain IP forwarding, no
// NAT, no balancing): the same extra hop over the bridge that every
// balancer adds, at the kernel's cost, to tell the hop from the balancer.
func startForward(ctx context.Context, r *run, ref *testbed.Reference, dir string) (func() error, string, error) {
	if err := sysctls(ref.LB, map[string]string{
		"net/ipv4/ip_forward":               "1",
		"net/ipv4/conf/all/send_redirects":  "0",
		"net/ipv4/conf/eth0/send_redirects": "0",
	}); err != nil {
		return nil, "", err
	}
	for _, x := range []struct {
		host *testbed.Host
		to   netip.Addr
	}{{ref.Client, testbed.ReferenceRS1}, {ref.RS1, testbed.ReferenceClient}} {
		err := x.host.Do(func() error {
			l, err := netlink.LinkByName(x.host.IfName)
			if err != nil {
				return err
			}
			return netlink.RouteAdd(&netlink.Route{
				LinkIndex: l.Attrs().Index,
				Dst:       &net.IPNet{IP: x.to.AsSlice(), Mask: net.CIDRMask(32, 32)},
				Gw:        testbed.ReferenceLB.AsSlice(),
			})
		})
		if err != nil {
			return nil, "", fmt.Errorf("host %s: route to %s via lb: %w", x.host.Name, x.to, err)
		}
	}
	return nil, "client and rs1 route to each other via 172.19.0.5", nil
}
