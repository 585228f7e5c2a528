package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// The ECMP topology reuses the reference segment as a one-armed router's:
// the client reaches the VIP through the router (172.19.0.1, BIRD 2),
// which spreads it over the two xdplb nodes (172.19.0.5 and .6) that
// announce it by BGP. Replies go back through the router too, since the
// nodes answer the MAC the client's packets came from.
var (
	routerIP = netip.MustParseAddr("172.19.0.1")
	// Each node's own local address; a survivor takes a failed node's.
	bgpLocal = [2]netip.Addr{netip.MustParseAddr("172.19.0.101"), netip.MustParseAddr("172.19.0.102")}
)

const (
	bgpStreams  = 200
	bgpRouterAS = 65000
	bgpNodeAS   = 65001
)

// birdConfig is the router's: ECMP over every node that announces a /32
// of the segment, with graceful restart for the nodes' hand-overs.
const birdConfig = `router id 172.19.0.1;
protocol device {}
protocol kernel {
	ipv4 { import none; export where source = RTS_BGP; };
	merge paths on;
}
template bgp lb {
	local 172.19.0.1 as 65000;
	neighbor as 65001;
	hold time 3;
	connect retry time 1;
	error wait time 1, 5;
	graceful restart on;
	ipv4 { import where net ~ [ 172.19.0.0/16{32,32} ]; export none; };
}
protocol bgp lb1 from lb { neighbor 172.19.0.5; }
protocol bgp lb2 from lb { neighbor 172.19.0.6; }
`

// bgpConfig is node id's configuration: every node serves (ha.mode
// none) with a local address of its own, and with sync the nodes copy
// their connections to each other and take over a failed one's local
// address.
func bgpConfig(xdpMode, dir string, id int, key string, sync bool) string {
	self, peer := testbed.ReferenceLB, haNode2IP
	local, peerLocal := bgpLocal[0], bgpLocal[1]
	if id == 2 {
		self, peer = peer, self
		local, peerLocal = peerLocal, local
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
`, bgpNodeAS, self, routerIP, bgpRouterAS)
	if sync {
		extra += fmt.Sprintf(`  nodes:
    - node_id: %d
      local_addresses: [%s]
ha:
  node_id: %d
  advert_interval: 300ms
sync:
  listen: %s:8849
  peers: [%s:8849]
  key_file: %s
  bulk_timeout: 5s
`, 3-id, peerLocal, id, self, peer, key)
	}
	return demo.Setup{Mode: xdpMode, Dir: dir, Services: restartServices, Local: local.String(), Extra: extra}.YAML()
}

// TestBGPECMP: two nodes announce the VIP to a BIRD router, which spreads
// 200 long-lived streams over both. Draining node 2 takes its next hop out
// of the router's route within a second, and the streams it carried go on
// through node 1 with the connections it synced. A hand-over (SIGUSR2) of
// node 1 withdraws nothing.
func TestBGPECMP(t *testing.T) {
	e, router := newBGPEnv(t)
	key := writeSyncKey(t)
	var dir1 string
	e.start(t, func(d string) string { dir1 = d; return bgpConfig(e.mode, d, 1, key, true) })
	t.Cleanup(func() { os.RemoveAll(demo.PinPath(dir1)) })
	_, node2 := startNode2(t, e, func(d string) string { return bgpConfig(e.mode, d, 2, key, true) })
	waitNextHops(t, router, 2, 15*time.Second)

	streams := openStreams(t, e, haService, bgpStreams, 1024, 20*time.Millisecond)
	waitRestartStreams(t, streams, "through both nodes")
	spread := streamsPerNode(t, e.bal, node2)
	if spread[0] < bgpStreams/5 || spread[1] < bgpStreams/5 {
		t.Errorf("streams per node %v, want each at least %d", spread, bgpStreams/5)
	}
	waitSynced(t, e.bal, haService, bgpStreams)
	waitSynced(t, node2, haService, bgpStreams)

	drainedAt := time.Now()
	if _, err := node2.API.Drain(t.Context(), "", true); err != nil {
		t.Fatal(err)
	}
	took := waitNextHops(t, router, 1, 5*time.Second)
	if took > time.Second {
		t.Errorf("the router dropped node 2's next hop %s after the drain, want within 1s", took)
	}
	t.Logf("node 2's next hop gone %s after its drain", took)
	time.Sleep(2 * time.Second)
	if moved := streams.advancedSince(t, drainedAt); len(moved) < bgpStreams-2 {
		t.Errorf("%d of %d streams flowed after node 2 was drained, want at least %d", len(moved), bgpStreams, bgpStreams-2)
	}
	checkNewConnection(t, e, "through node 1 alone")
	if _, err := node2.API.Drain(t.Context(), "", false); err != nil {
		t.Fatal(err)
	}
	waitNextHops(t, router, 2, 5*time.Second)

	// A hand-over keeps node 1's route: the router holds it through the
	// restart (graceful restart), so no flow moves.
	stopWatch := watchNextHops(router, 2)
	handOver(t, e, dir1, bgpConfig(e.mode, dir1, 1, key, true))
	restartedAt := time.Now()
	time.Sleep(3 * time.Second)
	if lost := stopWatch(); lost != "" {
		t.Errorf("the route lost a next hop during node 1's hand-over: %s", lost)
	}
	if moved := streams.advancedSince(t, restartedAt); len(moved) < bgpStreams-2 {
		t.Errorf("%d of %d streams flowed after node 1's hand-over, want at least %d", len(moved), bgpStreams, bgpStreams-2)
	}
	total, broken := streams.end(t)
	if len(broken) > 2 {
		t.Errorf("%d streams broke, want at most 2:\n%s", len(broken), strings.Join(broken, "\n"))
	}
	t.Logf("%d streams, %s echoed, %d broken", bgpStreams, restartBytes(total), len(broken))
}

// TestBGPNodeFailure: node 1's host fails (its link goes down) under 200
// streams spread over both nodes. The router drops it when the BGP hold
// time runs out; node 2, which no longer hears node 1 on the sync
// channel, takes over its local address (on the interface, announced with
// gratuitous ARP and as a backup path), so the streams node 1 carried go
// on through node 2.
func TestBGPNodeFailure(t *testing.T) {
	e, router := newBGPEnv(t)
	key := writeSyncKey(t)
	var dir1 string
	e.start(t, func(d string) string { dir1 = d; return bgpConfig(e.mode, d, 1, key, true) })
	t.Cleanup(func() { os.RemoveAll(demo.PinPath(dir1)) })
	lb2, node2 := startNode2(t, e, func(d string) string { return bgpConfig(e.mode, d, 2, key, true) })
	waitNextHops(t, router, 2, 15*time.Second)
	streams := openStreams(t, e, haService, bgpStreams, 1024, 20*time.Millisecond)
	waitRestartStreams(t, streams, "through both nodes")
	if spread := streamsPerNode(t, e.bal, node2); spread[0] < bgpStreams/5 {
		t.Fatalf("streams per node %v: node 1 carries too few for the test to mean anything", spread)
	}
	waitSynced(t, node2, haService, bgpStreams)

	failedAt := time.Now()
	setLink(t, e.ref.LB, false)
	took := waitNextHops(t, router, 1, 10*time.Second)
	t.Logf("the router dropped node 1 %s after its link went down (hold time 3s)", took)
	deadline := time.Now().Add(5 * time.Second)
	for !readLBState(t, lb2).has(bgpLocal[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("node 2 does not hold node 1's local address %s 5s after the router dropped node 1", bgpLocal[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("node 2 took over %s %s after node 1's link went down", bgpLocal[0], time.Since(failedAt).Round(10*time.Millisecond))
	if st, err := node2.API.BGP(t.Context()); err != nil || !announcedBackup(st, bgpLocal[0]) {
		t.Errorf("node 2 does not announce %s as a backup path: %+v (%v)", bgpLocal[0], st.Prefixes, err)
	}
	time.Sleep(8 * time.Second) // TCP's retransmissions back off while the router still sent to node 1
	if moved := streams.advancedSince(t, failedAt); len(moved) < bgpStreams-2 {
		t.Errorf("%d of %d streams flowed after node 1 failed, want at least %d", len(moved), bgpStreams, bgpStreams-2)
	}
	checkNewConnection(t, e, "through node 2")

	// Node 1 comes back: node 2 hears it and gives the address back.
	setLink(t, e.ref.LB, true)
	waitNextHops(t, router, 2, 15*time.Second)
	deadline = time.Now().Add(5 * time.Second)
	for readLBState(t, lb2).has(bgpLocal[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("node 2 still holds node 1's local address 5s after node 1 came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Back, node 1 claims its local address again (gratuitous ARP): the
	// backends send its connections' replies to it, not to node 2.
	deadline = time.Now().Add(5 * time.Second)
	for want := hostMAC(t, e.ref.LB); neighbourMAC(t, e.ref.RS1, bgpLocal[0]) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("rs1 sends to %s at %q 5s after node 1 came back, want node 1's %s", bgpLocal[0], neighbourMAC(t, e.ref.RS1, bgpLocal[0]), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	total, broken := streams.end(t)
	if len(broken) > 2 {
		t.Errorf("%d streams broke, want at most 2:\n%s", len(broken), strings.Join(broken, "\n"))
	}
	t.Logf("%d streams, %s echoed, %d broken", bgpStreams, restartBytes(total), len(broken))
}

func announcedBackup(st api.BGPStatus, a netip.Addr) bool {
	for _, p := range st.Prefixes {
		if p.Prefix == netip.PrefixFrom(a, 32).String() {
			return p.Announced && p.Backup
		}
	}
	return false
}

// TestBGPHealthWithdrawal measures how long a VIP stays routed to a node
// after the last backend of its service failed: the health checks' fall,
// then the announcement's reaction, then the router's.
func TestBGPHealthWithdrawal(t *testing.T) {
	e, router := newBGPEnv(t)
	services := strings.Replace(restartServices, "    backends:", `    health_check: {kind: tcp, interval: 100ms, timeout: 100ms, fall: 1, rise: 1}
    backends:`, 1)
	e.start(t, func(d string) string {
		return strings.Replace(bgpConfig(e.mode, d, 1, "", false), restartServices, services, 1)
	})
	waitNextHops(t, router, 1, 15*time.Second)
	// The backends stop answering the node, whichever of its addresses
	// the checks come from.
	for _, rs := range []*testbed.Host{e.ref.RS1, e.ref.RS2} {
		blackhole(t, rs, testbed.ReferenceLB)
		blackhole(t, rs, bgpLocal[0])
	}
	took := waitNextHops(t, router, 0, 10*time.Second)
	t.Logf("the router dropped the VIP %s after both backends stopped answering health checks (interval 100ms, fall 1)", took)
}

// TestBGPDrainWithoutSync is the negative control: without connection
// sync, the Full-NAT flows a drain moves to the other node break, since
// that node cannot know their local address and port. It documents why
// active-active needs sync.
func TestBGPDrainWithoutSync(t *testing.T) {
	e, router := newBGPEnv(t)
	var dir1 string
	e.start(t, func(d string) string { dir1 = d; return bgpConfig(e.mode, d, 1, "", false) })
	t.Cleanup(func() { os.RemoveAll(demo.PinPath(dir1)) })
	_, node2 := startNode2(t, e, func(d string) string { return bgpConfig(e.mode, d, 2, "", false) })
	waitNextHops(t, router, 2, 15*time.Second)
	streams := openStreams(t, e, haService, bgpStreams, 1024, 20*time.Millisecond)
	waitRestartStreams(t, streams, "through both nodes")
	onNode2 := int(streamsPerNode(t, e.bal, node2)[1])
	drainedAt := time.Now()
	if _, err := node2.API.Drain(t.Context(), "", true); err != nil {
		t.Fatal(err)
	}
	waitNextHops(t, router, 1, 5*time.Second)
	time.Sleep(2 * time.Second)
	moved := streams.advancedSince(t, drainedAt)
	stalled := bgpStreams - len(moved)
	t.Logf("without sync, %d of the %d streams node 2 carried stalled after its drain", stalled, onNode2)
	if stalled < onNode2/2 {
		t.Errorf("%d streams stalled, want most of node 2's %d: without sync node 1 cannot continue them", stalled, onNode2)
	}
}

// newBGPEnv builds the reference topology with the echo backends of
// haService, a BIRD router and the client's route to the VIP through it.
func newBGPEnv(t *testing.T) (*env, *testbed.Host) {
	return newBGPEnvWith(t, birdConfig)
}

// newBGPEnvWith is newBGPEnv with the router's BIRD configuration
// birdConf.
func newBGPEnvWith(t *testing.T, birdConf string) (*env, *testbed.Host) {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("bird (Debian's bird2) is not installed; .ci/run installs it")
		}
		t.Skip("bird (Debian's bird2) is not installed")
	}
	e := newEnv(t, "native")
	serveTCP(t, e.ref.RS1, ":7100", ctEchoConn)
	serveTCP(t, e.ref.RS2, ":7100", ctEchoConn)
	router, err := e.ref.Segment.AddHost("rtr", routerIP)
	if err != nil {
		t.Fatal(err)
	}
	if err := router.Do(func() error {
		for key, value := range map[string]string{
			"net/ipv4/ip_forward": "1", "net/ipv4/fib_multipath_hash_policy": "1",
			"net/ipv4/conf/all/send_redirects": "0", "net/ipv4/conf/eth0/send_redirects": "0",
			"net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/eth0/rp_filter": "0",
		} {
			if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(birdConf), 0o644); err != nil {
		t.Fatal(err)
	}
	bird, err := router.Start(context.Background(), "bird", "-f", "-c", conf, "-s", filepath.Join(dir, "bird.ctl"), "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bird.Kill(); bird.Wait() })
	vip := netip.PrefixFrom(testbed.ReferenceVIP, 32)
	if err := e.ref.Client.Do(func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/accept_redirects", []byte("0"), 0o644); err != nil {
			return err
		}
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(vip), Gw: routerIP.AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
	return e, router
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// nextHops is how many next hops the router's route to the VIP has.
func nextHops(router *testbed.Host) (int, error) {
	var n int
	err := router.Do(func() error {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
			&netlink.Route{Dst: ipNet(netip.PrefixFrom(testbed.ReferenceVIP, 32))}, netlink.RT_FILTER_DST)
		if err != nil {
			return err
		}
		for _, r := range routes {
			n += max(len(r.MultiPath), 1)
		}
		return nil
	})
	return n, err
}

// waitNextHops waits until the route to the VIP has want next hops, and
// says how long that took.
func waitNextHops(t *testing.T, router *testbed.Host, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, err := nextHops(router)
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("the router's route to the VIP has %d next hops after %s, want %d", got, limit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchNextHops checks every 20 ms that the route keeps want next hops,
// until the returned function is called; it returns what it saw wrong.
func watchNextHops(router *testbed.Host, want int) func() string {
	stop, done := make(chan struct{}), make(chan string, 1)
	go func() {
		lost := ""
		for {
			select {
			case <-stop:
				done <- lost
				return
			case <-time.After(20 * time.Millisecond):
			}
			if got, err := nextHops(router); (err != nil || got != want) && lost == "" {
				lost = fmt.Sprintf("%d next hops (err %v) at %s", got, err, time.Now().Format("15:04:05.000"))
			}
		}
	}()
	return func() string { close(stop); return <-done }
}

// streamsPerNode is how many connections of haService each node opened.
func streamsPerNode(t *testing.T, nodes ...*demo.Balancer) []uint64 {
	t.Helper()
	var out []uint64
	for _, n := range nodes {
		st, err := n.API.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, newConns(st, haService))
	}
	return out
}

func newConns(st api.Stats, service string) uint64 {
	for _, s := range st.Services {
		if s.Address == service {
			return s.Traffic.NewConns
		}
	}
	return 0
}
