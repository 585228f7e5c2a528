package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// The reference topology's IPv6 addresses (fd00:19::/64 beside
// 172.19.0.0/16), added by addIPv6Reference.
var (
	ipv6Client = netip.MustParseAddr("fd00:19::9")
	ipv6LB     = netip.MustParseAddr("fd00:19::5")
	ipv6RS1    = netip.MustParseAddr("fd00:19::2")
	ipv6RS2    = netip.MustParseAddr("fd00:19::3")
	ipv6VIP    = netip.MustParseAddr("fd00:19::10")

	ipv6Targets = targets{
		web:      "[fd00:19::10]:80",
		download: "[fd00:19::10]:9000",
		upload:   "[fd00:19::10]:9001",
		echo:     netip.AddrPortFrom(ipv6VIP, 5353),
		client:   ipv6Client,
	}
)

// ipv6Services are the reference services and the bulk ones, on the IPv6
// VIP with the backends' IPv6 addresses; two with their IPv4 addresses
// (NAT64); and a probed service whose backends serve only when a test
// starts them.
const ipv6Services = `  - name: web
    vip: fd00:19::10
    port: 80
    protocol: tcp
    scheduler: rr
    backends:
      - address: fd00:19::2
      - address: fd00:19::3
  - name: echo
    vip: fd00:19::10
    port: 5353
    protocol: udp
    backends:
      - address: fd00:19::2
      - address: fd00:19::3
  - name: download
    vip: fd00:19::10
    port: 9000
    protocol: tcp
    backends:
      - address: fd00:19::2
  - name: upload
    vip: fd00:19::10
    port: 9001
    protocol: tcp
    backends:
      - address: fd00:19::2
  - name: web64
    vip: fd00:19::10
    port: 8064
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
        port: 80
      - address: 172.19.0.3
        port: 80
  - name: download64
    vip: fd00:19::10
    port: 9064
    protocol: tcp
    backends:
      - address: 172.19.0.2
        port: 9000
  - name: probed
    vip: fd00:19::10
    port: 7000
    protocol: tcp
    health_check:
      kind: tcp
      interval: 200ms
      timeout: 200ms
      fall: 2
      rise: 2
    backends:
      - address: fd00:19::2
      - address: fd00:19::3
`

// addIPv6Reference turns IPv6 on for every host of the reference topology
// and gives each its IPv6 address. The balancer's VIP is its own to add.
func addIPv6Reference(t *testing.T, ref *testbed.Reference) {
	t.Helper()
	for _, h := range []struct {
		host *testbed.Host
		addr netip.Addr
	}{{ref.Client, ipv6Client}, {ref.LB, ipv6LB}, {ref.RS1, ipv6RS1}, {ref.RS2, ipv6RS2}} {
		addIPv6Addr(t, h.host, netip.PrefixFrom(h.addr, 64))
	}
}

// addIPv6Addr turns IPv6 on for host's eth0 (the testbed makes it
// without), with ICMPv6 redirects ignored so every route a test sets is
// the one taken, and adds prefix without duplicate address detection, so
// it is usable at once.
func addIPv6Addr(t *testing.T, host *testbed.Host, prefix netip.Prefix) {
	t.Helper()
	for _, cmd := range [][]string{
		{"sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0", "net.ipv6.conf.all.accept_redirects=0",
			"net.ipv6.conf.eth0.accept_redirects=0"},
		{"ip", "-6", "addr", "add", prefix.String(), "dev", "eth0", "nodad"},
	} {
		if out, err := host.Output(t.Context(), cmd[0], cmd[1:]...); err != nil {
			t.Fatalf("%s: %v: %v: %s", host.Name, cmd, err, out)
		}
	}
}

// TestIPv6 runs the reference scenario over IPv6 (NAT66), with the IPv4
// one's checks: 100 sequential requests alternate, 200 concurrent ones
// split evenly, 64 MiB each way arrive intact, UDP flows keep their
// backend, and the counters agree; then conntrack lists the connections with their IPv6
// addresses, and a TCP health check over IPv6 takes a backend out and
// back.
func TestIPv6(t *testing.T) {
	e := newEnv(t, "native")
	addIPv6Reference(t, e.ref)
	serveTCP(t, e.ref.RS1, ":9000", sendStream)
	serveTCP(t, e.ref.RS1, ":9001", func(c net.Conn) error { return hashUpload(c, c) })
	serveEcho(t, e.ref.RS1, netip.AddrPortFrom(ipv6RS1, 7000).String(), "rs-1")
	e.start(t, func(dir string) string {
		return demo.Setup{Mode: e.mode, Dir: dir, Services: ipv6Services, Local: `"172.19.0.5", "fd00:19::5"`,
			Extra: metricsExtra}.YAML()
	})

	passed := runTraffic(t, e, ipv6Targets)
	t.Run("stats", func(t *testing.T) { testStats(t, e, passed) })
	t.Run("conn_list", func(t *testing.T) { testIPv6Connections(t, e) })
	t.Run("nat64", func(t *testing.T) { testNAT64(t, e) })
	t.Run("health", func(t *testing.T) { testIPv6Health(t, e) })
}

// testIPv6Connections: a connection held open is listed with the client's,
// the VIP's, the local and the backend's IPv6 addresses.
func testIPv6Connections(t *testing.T, e *env) {
	c, err := e.ref.Client.DialContext(t.Context(), "tcp", ipv6Targets.web)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := netip.MustParseAddrPort(c.LocalAddr().String())
	conns, err := e.bal.API.Connections(t.Context(), "web", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, conn := range conns {
		if conn.Client != client {
			continue
		}
		if conn.VIP != netip.MustParseAddrPort(ipv6Targets.web) || conn.Local.Addr() != ipv6LB ||
			(conn.Backend.Addr() != ipv6RS1 && conn.Backend.Addr() != ipv6RS2) || conn.Backend.Port() != 80 {
			t.Errorf("connection listed as %+v: want VIP %s, local %s, a backend at port 80", conn, ipv6Targets.web, ipv6LB)
		}
		return
	}
	t.Errorf("connection from %s not listed among %d: %+v", client, len(conns), conns)
}

// testNAT64: an IPv6 client reaches IPv4 backends through the IPv6 VIP:
// requests alternate between them, 64 MiB arrive intact, and conntrack
// lists a connection with its IPv6 client and its IPv4 local address and
// backend.
func testNAT64(t *testing.T, e *env) {
	client := e.ref.Client.HTTPClient(false)
	for i := range 20 {
		body, err := httpGet(t.Context(), client, "http://[fd00:19::10]:8064/")
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if want := fmt.Sprintf("rs-%d", i%2+1); body != want {
			t.Fatalf("request %d answered %q, want %q: round robin did not alternate", i+1, body, want)
		}
	}
	testDownload(t, e, targets{download: "[fd00:19::10]:9064"})

	c, err := e.ref.Client.DialContext(t.Context(), "tcp", "[fd00:19::10]:8064")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	from := netip.MustParseAddrPort(c.LocalAddr().String())
	conns, err := e.bal.API.Connections(t.Context(), "web64", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, conn := range conns {
		if conn.Client == from {
			if conn.Local.Addr() != testbed.ReferenceLB || !conn.Backend.Addr().Is4() {
				t.Errorf("NAT64 connection listed as %+v: want an IPv4 local address (%s) and backend", conn, testbed.ReferenceLB)
			}
			return
		}
	}
	t.Errorf("NAT64 connection from %s not listed among %+v", from, conns)
}

// testIPv6Health: rs2 serves nothing on port 7000, so its TCP check over
// IPv6 holds it down; once it serves, it comes up and gets connections.
func testIPv6Health(t *testing.T, e *env) {
	rs2 := netip.AddrPortFrom(ipv6RS2, 7000).String()
	waitBackend(t, e, "probed", netip.AddrPortFrom(ipv6RS1, 7000).String(), true, 10*time.Second)
	waitBackend(t, e, "probed", rs2, false, 10*time.Second)
	for i := range 4 {
		if c := dialBackend(t, e, "[fd00:19::10]:7000", 1); c.first != "rs-1" {
			t.Errorf("connection %d to the probed service reached %s while rs-2 is down", i, c.first)
		}
	}
	serveEcho(t, e.ref.RS2, rs2, "rs-2")
	waitBackend(t, e, "probed", rs2, true, 10*time.Second)
	seen := map[string]bool{}
	for range 4 {
		seen[dialBackend(t, e, "[fd00:19::10]:7000", 1).first] = true
	}
	if !seen["rs-1"] || !seen["rs-2"] {
		t.Errorf("connections to the probed service reached %v, want both rs-1 and rs-2", seen)
	}
}

// ipv6PMTUServices: the sink and the source of TestPathMTUThroughRouter,
// on the IPv6 VIP, with backends behind the router.
const ipv6PMTUServices = `  - name: sink
    vip: fd00:19::10
    port: 8082
    protocol: tcp
    backends:
      - address: fd00:30::2
      - address: fd00:30::3
  - name: source
    vip: fd00:19::10
    port: 8084
    protocol: tcp
    backends:
      - address: fd00:30::2
      - address: fd00:30::3
`

// TestIPv6PathMTUThroughRouter is TestPathMTUThroughRouter over IPv6: the
// backends (fd00:30::/64) sit behind a router whose link towards them
// takes 1400 bytes, and answer the local address (fd00:40::5) through it.
// The router's "packet too big" to the local address must reach the
// client, translated, or the upload stalls; then, with a 1400-byte hop on
// the client's side too, its "packet too big" to the VIP must reach the
// backend, or the download does. 64 MiB each way.
func TestIPv6PathMTUThroughRouter(t *testing.T) {
	e := newEnv(t, "native")
	router := addRouter(t, e)
	addIPv6Addr(t, e.ref.Client, netip.PrefixFrom(ipv6Client, 64))
	addIPv6Addr(t, e.ref.LB, netip.PrefixFrom(ipv6LB, 64))
	addIPv6Addr(t, router, netip.MustParsePrefix("fd00:19::1/64"))
	addIPv6Addr(t, router, netip.MustParsePrefix("fd00:30::1/64"))
	routerIP6 := netip.MustParseAddr("fd00:19::1")
	if err := router.Do(func() error {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0o644); err != nil {
			return err
		}
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		idx := link.Attrs().Index
		// Locked, as for IPv4: forwarding applies a route's MTU only
		// then. In place of the address's own route (metric 256).
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: ipNet(netip.MustParsePrefix("fd00:30::/64")),
			Priority: 256, MTU: 1400, MTULock: true}); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: ipNet(netip.MustParsePrefix("fd00:40::/64")),
			Gw: ipv6LB.AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
	for i, rs := range []*testbed.Host{e.ref.RS1, e.ref.RS2} {
		addIPv6Addr(t, rs, netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x30, 15: byte(i + 2)}), 64))
		routeVia(t, rs, "fd00:40::/64", netip.MustParseAddr("fd00:30::1"))
		serveTCP(t, rs, ":8082", countBytes)
		serveTCP(t, rs, ":8084", func(c net.Conn) error {
			_, err := c.Write(make([]byte, pmtuSize))
			return err
		})
	}
	routeVia(t, e.ref.LB, "fd00:30::/64", routerIP6)
	e.start(t, func(d string) string {
		return demo.Setup{Mode: e.mode, Dir: d, Services: ipv6PMTUServices, Local: `"fd00:40::5"`}.YAML()
	})

	before := ctReason(t, ctStats(t, e), "fwd_icmp_error")
	upload(t, e, "[fd00:19::10]:8082", pmtuSize)
	if n := ctReason(t, ctStats(t, e), "fwd_icmp_error") - before; n == 0 {
		t.Errorf("fwd_icmp_error did not move: the router's packet-too-big never reached the client?")
	}

	routeVia(t, e.ref.Client, "fd00:19::10/128", routerIP6)
	if err := router.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index,
			Dst: ipNet(netip.PrefixFrom(ipv6Client, 128)), MTU: 1400, MTULock: true})
	}); err != nil {
		t.Fatal(err)
	}
	before = ctReason(t, ctStats(t, e), "fwd_icmp_error")
	download(t, e, "[fd00:19::10]:8084", pmtuSize)
	if n := ctReason(t, ctStats(t, e), "fwd_icmp_error") - before; n == 0 {
		t.Errorf("fwd_icmp_error did not move: the router's packet-too-big never reached the backend?")
	}
}
