package e2e

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// pmtuServices: Full-NAT services to the backends behind the router: a
// sink on :8082 that counts what it gets, a source on :8084 that sends.
const pmtuServices = `  - name: sink
    vip: 172.19.0.10
    port: 8082
    protocol: tcp
    backends:
      - address: 10.30.0.2
      - address: 10.30.0.3
  - name: source
    vip: 172.19.0.10
    port: 8084
    protocol: tcp
    backends:
      - address: 10.30.0.2
      - address: 10.30.0.3
`

// pmtuSize is what each transfer moves.
const pmtuSize = 64 << 20

// TestPathMTUThroughRouter: the backends sit behind a router (rtr) whose
// link towards them takes 1400 bytes; everything else takes 1500 (the
// backends answer the balancer's local address, 10.40.0.5, through the
// router too). The router tells the balancer's
// local address that the client's full-size segments are too big; the
// balancer must pass that on to the client, translated, or the upload
// stalls (a PMTU black hole: the kernel has no socket for the local
// address). Then the client's side gets a 1400-byte hop too, and the
// router's errors about the download, sent to the VIP, must reach the
// backend. A 64 MiB upload and a 64 MiB download with DF complete.
func TestPathMTUThroughRouter(t *testing.T) {
	e := newEnv(t, "native")
	router := addRouter(t, e)
	// A locked MTU: the kernel applies a route's MTU to what it forwards
	// only then.
	if err := router.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		idx := link.Attrs().Index
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: ipNet(netip.MustParsePrefix("10.30.0.0/24")),
			Scope: netlink.SCOPE_LINK, Src: net.IP{10, 30, 0, 1}, MTU: 1400, MTULock: true}); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: ipNet(netip.MustParsePrefix("10.40.0.0/24")),
			Gw: testbed.ReferenceLB.AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
	for _, rs := range []*testbed.Host{e.ref.RS1, e.ref.RS2} {
		routeVia(t, rs, "10.40.0.0/24", netip.MustParseAddr("10.30.0.1"))
		serveTCP(t, rs, ":8082", countBytes)
		serveTCP(t, rs, ":8084", func(c net.Conn) error {
			_, err := c.Write(make([]byte, pmtuSize))
			return err
		})
	}
	routeVia(t, e.ref.LB, "10.30.0.0/24", routerIP)
	e.start(t, func(d string) string {
		return demo.Setup{Mode: e.mode, Dir: d, Services: pmtuServices, Local: "10.40.0.5"}.YAML()
	})

	before := ctReason(t, ctStats(t, e), "fwd_icmp_error")
	upload(t, e, "172.19.0.10:8082", pmtuSize)
	if n := ctReason(t, ctStats(t, e), "fwd_icmp_error") - before; n == 0 {
		t.Errorf("fwd_icmp_error did not move: the router's fragmentation-needed never reached the client?")
	}

	// Now the client reaches the VIP through the router too, whose link
	// back to the client takes 1400: the router tells the VIP that the
	// backend's full-size segments are too big, and the balancer must
	// pass that on to the backend, or the download stalls.
	routeVia(t, e.ref.Client, "172.19.0.10/32", routerIP)
	if err := router.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(netip.PrefixFrom(testbed.ReferenceClient, 32)),
			Scope: netlink.SCOPE_LINK, MTU: 1400, MTULock: true})
	}); err != nil {
		t.Fatal(err)
	}
	before = ctReason(t, ctStats(t, e), "fwd_icmp_error")
	download(t, e, "172.19.0.10:8084", pmtuSize)
	if n := ctReason(t, ctStats(t, e), "fwd_icmp_error") - before; n == 0 {
		t.Errorf("fwd_icmp_error did not move: the router's fragmentation-needed never reached the backend?")
	}
}

// routeVia adds a route to prefix through gw on host.
func routeVia(t *testing.T, host *testbed.Host, prefix string, gw netip.Addr) {
	t.Helper()
	if err := host.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(netip.MustParsePrefix(prefix)), Gw: gw.AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
}

// upload sends size bytes to a counting sink through addr and wants them
// all counted.
func upload(t *testing.T, e *env, addr string, size int) {
	t.Helper()
	c, err := ctDial(t, e, addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatalf("upload of %d bytes to %s: %v", size, addr, err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != fmt.Sprint(size) {
		t.Fatalf("the sink at %s counted %q (%v), want %d", addr, got, err, size)
	}
	t.Logf("uploaded %d MiB to %s in %v", size>>20, addr, time.Since(start).Round(time.Millisecond))
}

// download reads from a source through addr until it closes, and wants
// size bytes.
func download(t *testing.T, e *env, addr string, size int) {
	t.Helper()
	c, err := ctDial(t, e, addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != int64(size) {
		t.Fatalf("download from %s: %d bytes (%v), want %d", addr, n, err, size)
	}
	t.Logf("downloaded %d MiB from %s in %v", size>>20, addr, time.Since(start).Round(time.Millisecond))
}
