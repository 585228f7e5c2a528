package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// Co-located mode: lb (172.19.0.5), rs1 (.2) and rs2 (.3) each run xdplb
// and the applications, announce the VIP to the BIRD router, and are each
// other's backends. A flow's first hop (ECMP) picks its backend by Maglev,
// the same on every node; a first hop that is the backend passes the packet
// to its own stack, otherwise it sends it in GUE to the backend, which
// decapsulates it and never balances it again.
var colocatedNodes = []netip.Addr{testbed.ReferenceLB, testbed.ReferenceRS1, testbed.ReferenceRS2}

const colocatedBird = `router id 172.19.0.1;
protocol device {}
protocol kernel {
	ipv4 { import none; export where source = RTS_BGP; };
	merge paths on;
}
template bgp node {
	local 172.19.0.1 as 65000;
	neighbor as 65001;
	hold time 3;
	connect retry time 1;
	error wait time 1, 5;
	ipv4 { import where net ~ [ 172.19.0.0/16{32,32} ]; export none; };
}
protocol bgp n1 from node { neighbor 172.19.0.5; }
protocol bgp n2 from node { neighbor 172.19.0.2; }
protocol bgp n3 from node { neighbor 172.19.0.3; }
`

// colocatedConfig is node self's: the web (:80) and echo (:7100) services
// over all three nodes, in GUE, by Maglev.
func colocatedConfig(mode, dir string, self netip.Addr) string {
	var services strings.Builder
	for _, s := range []struct {
		name string
		port int
	}{{"web", 80}, {"echo", 7100}} {
		fmt.Fprintf(&services, `  - name: %s
    vip: 172.19.0.10
    port: %d
    protocol: tcp
    scheduler: maglev
    forwarding: dsr-gue
    backends:
`, s.name, s.port)
		for _, n := range colocatedNodes {
			fmt.Fprintf(&services, "      - address: %s\n", n)
		}
	}
	extra := fmt.Sprintf(`bgp:
  asn: %d
  router_id: %s
  peers:
    - address: %s
      asn: %d
      hold_time: 3s
      keepalive: 1s
  shutdown_wait: 1s
dsr:
  encap_source: %s
  decap_sources: [172.19.0.5, 172.19.0.2, 172.19.0.3]
`, bgpNodeAS, self, routerIP, bgpRouterAS, self)
	return demo.Setup{Mode: mode, Dir: dir, Services: services.String(), Local: self.String(), Extra: extra}.YAML()
}

// TestColocated: answers come from all three nodes; every packet one node
// sends in GUE another decapsulates and passes (no packet is balanced
// twice); draining a node from ECMP keeps at least 99 % of 200 long-lived
// streams (their new first hop picks the same backend); removing a node
// as a backend leaves the other nodes' streams flowing.
func TestColocated(t *testing.T) {
	e, router := newBGPEnvWith(t, colocatedBird)
	serveTCP(t, e.ref.LB, ":7100", ctEchoConn)
	if _, err := e.ref.LB.ServeHTTP(":80", "lb"); err != nil {
		t.Fatal(err)
	}
	var lbDir string
	e.start(t, func(d string) string { lbDir = d; return colocatedConfig(e.mode, d, testbed.ReferenceLB) })
	t.Cleanup(func() { os.RemoveAll(demo.PinPath(lbDir)) })
	nodes := []*demo.Balancer{e.bal}
	for _, h := range []*testbed.Host{e.ref.RS1, e.ref.RS2} {
		nodes = append(nodes, startNodeOn(t, e, h, func(d string) string { return colocatedConfig(e.mode, d, h.Addr) }))
	}
	waitNextHops(t, router, 3, 20*time.Second)

	bodies := map[string]int{}
	for i := range 60 {
		body, err := dsrGet(t, e, "http://172.19.0.10/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		bodies[body]++
	}
	t.Logf("answers by node: %v", bodies)
	for _, want := range []string{"lb", "rs-1", "rs-2"} {
		if bodies[want] == 0 {
			t.Errorf("no answer from %s among %v", want, bodies)
		}
	}
	time.Sleep(500 * time.Millisecond) // the last connections' closing segments
	checkBalancedOnce(t, nodes)

	streams := openStreams(t, e, "172.19.0.10:7100", bgpStreams, 1024, 20*time.Millisecond)
	waitRestartStreams(t, streams, "through all three nodes")

	drained := nodes[2]
	drainedAt := time.Now()
	if _, err := drained.API.Drain(t.Context(), "", true); err != nil {
		t.Fatal(err)
	}
	waitNextHops(t, router, 2, 5*time.Second)
	time.Sleep(time.Second)
	moved := streams.advancedSince(t, drainedAt)
	t.Logf("after rs2 left ECMP, %d of %d streams flow", len(moved), bgpStreams)
	if len(moved) < bgpStreams*99/100 {
		t.Errorf("%d of %d streams flow after the drain, want at least 99 %%", len(moved), bgpStreams)
	}

	backendOf := streamBackends(t, nodes, streams)
	gone := testbed.ReferenceRS2
	removedAt := time.Now()
	for _, n := range nodes {
		if err := n.API.RemoveBackend(t.Context(), "echo", netip.AddrPortFrom(gone, 7100).String()); err != nil {
			t.Fatalf("remove %s from echo: %v", gone, err)
		}
	}
	time.Sleep(time.Second)
	flowing := map[int]bool{}
	for _, i := range streams.advancedSince(t, removedAt) {
		flowing[i] = true
	}
	others, othersFlowing, ownFlowing := 0, 0, 0
	for i := range streams.s {
		switch {
		case backendOf[i] == gone && flowing[i]:
			ownFlowing++
		case backendOf[i] != gone:
			others++
			if flowing[i] {
				othersFlowing++
			}
		}
	}
	t.Logf("after rs2 was removed as a backend: %d of the other nodes' %d streams flow, and %d of its own %d",
		othersFlowing, others, ownFlowing, bgpStreams-others)
	if othersFlowing < others*99/100 {
		t.Errorf("%d of the other nodes' %d streams flow, want at least 99 %%", othersFlowing, others)
	}

	// Every stream ends whole, and all the way through not one packet
	// was balanced twice.
	streams.finish(t)
	time.Sleep(500 * time.Millisecond)
	checkBalancedOnce(t, nodes)
}

// startNodeOn starts a balancer on host with the config config(dir).
func startNodeOn(t *testing.T, e *env, host *testbed.Host, config func(dir string) string) *demo.Balancer {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() { os.RemoveAll(demo.PinPath(dir)) })
	bal, err := demo.StartBalancer(t.Context(), host, xdplbBin, dir, config(dir), e.logs)
	if err != nil {
		t.Fatalf("start a balancer on %s: %v", host.Name, err)
	}
	t.Cleanup(func() {
		if err := bal.Stop(); err != nil {
			t.Errorf("stop the balancer on %s: %v", host.Name, err)
		}
	})
	return bal
}

// checkBalancedOnce: every packet a node sent in GUE, another node
// decapsulated and passed to its stack; none was balanced again (it would
// have been sent on or passed as a local backend's, not counted as
// decapsulated). Read when no traffic is in flight.
func checkBalancedOnce(t *testing.T, nodes []*demo.Balancer) {
	t.Helper()
	var encap, decap, local, refused uint64
	for _, n := range nodes {
		st, err := n.API.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		encap += st.Reasons["fwd_encap"]
		decap += st.Reasons["pass_decap"]
		local += st.Reasons["pass_local_backend"]
		refused += st.Reasons["drop_decap_source"] + st.Reasons["drop_decap_malformed"]
	}
	t.Logf("over the three nodes: fwd_encap %d, pass_decap %d, pass_local_backend %d", encap, decap, local)
	if encap == 0 || local == 0 {
		t.Errorf("fwd_encap %d, pass_local_backend %d: want both (flows to other nodes and to the first hop itself)", encap, local)
	}
	if decap != encap || refused != 0 {
		t.Errorf("pass_decap %d for fwd_encap %d (refused %d): want every encapsulated packet decapsulated once", decap, encap, refused)
	}
}

// streamBackends finds each stream's backend in the nodes' connection
// tables (the first hop that holds it).
func streamBackends(t *testing.T, nodes []*demo.Balancer, streams *restartStreamSet) []netip.Addr {
	t.Helper()
	by := map[netip.AddrPort]netip.Addr{}
	for _, n := range nodes {
		conns, err := n.API.Connections(t.Context(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conns {
			by[c.Client] = c.Backend.Addr()
		}
	}
	out := make([]netip.Addr, len(streams.s))
	for i, s := range streams.s {
		out[i] = by[s.client]
	}
	return out
}
