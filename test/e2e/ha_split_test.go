package e2e

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// splitRefresh has the master resend its connections every second, so the
// backup adopts those opened in the split soon after it.
const splitRefresh = "  refresh: 1s\n"

// TestHASplitBrain: the nodes stop hearing each other for 3 s, so both are
// master. Connections opened through each meanwhile get local ports from
// that node's own half of local.ports, so no two connections share a
// local address:port, then or after the nodes hear each other again: the
// higher priority stays master, the other steps down and adopts the
// master's connections without a conflict.
func TestHASplitBrain(t *testing.T) {
	e := newEnv(t, "native")
	serveTCP(t, e.ref.RS1, ":7100", ctEchoConn)
	serveTCP(t, e.ref.RS2, ":7100", ctEchoConn)
	key := writeSyncKey(t)
	var dir1 string
	t.Cleanup(func() {
		if dir1 != "" {
			os.RemoveAll(demo.PinPath(dir1))
		}
	})
	e.start(t, func(d string) string {
		dir1 = d
		return haConfig(e.mode, d, haNode{id: 1, priority: 200, sync: splitRefresh}, key)
	})
	node1 := e.bal
	waitCluster(t, node1, "node 1 master", 5*time.Second, isMaster)
	lb2, node2 := startNode2(t, e, func(d string) string {
		return haConfig(e.mode, d, haNode{id: 2, priority: 100, sync: splitRefresh}, key)
	})
	waitCluster(t, node2, "node 2 a ready backup", 10*time.Second, isReadyBackup)

	// Each node's packets to the other go nowhere.
	unroute := blackhole(t, e.ref.LB, haNode2IP)
	unroute2 := blackhole(t, lb2, testbed.ReferenceLB)
	waitCluster(t, node2, "node 2 master in the split", 5*time.Second, isMaster)
	if st, err := node1.API.Cluster(t.Context()); err != nil || st.Role != "master" {
		t.Fatalf("node 1 in the split: %+v, %v; want still master", st, err)
	}
	splitAt := time.Now()

	// Through each master in turn, by pointing the client's VIP and the
	// backends' local address at it (both masters announced both).
	const perNode = 20
	var conns []net.Conn
	for _, target := range []*testbed.Host{e.ref.LB, lb2} {
		pinNeighbour(t, e.ref.Client, testbed.ReferenceVIP, hostMAC(t, target))
		pinNeighbour(t, e.ref.RS1, haLocal, hostMAC(t, target))
		pinNeighbour(t, e.ref.RS2, haLocal, hostMAC(t, target))
		for i := range perNode {
			c, err := ctDial(t, e, haService, 5*time.Second)
			if err != nil {
				t.Fatalf("connection %d through %s in the split: %v", i, target, err)
			}
			conns = append(conns, c)
			if err := ctEchoLine(c, "split", 5*time.Second); err != nil {
				t.Fatalf("connection %d through %s in the split: %v", i, target, err)
			}
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if wait := 3*time.Second - time.Since(splitAt); wait > 0 {
		time.Sleep(wait)
	}
	unroute()
	unroute2()
	unpinNeighbour(t, e.ref.Client, testbed.ReferenceVIP)
	unpinNeighbour(t, e.ref.RS1, haLocal)
	unpinNeighbour(t, e.ref.RS2, haLocal)

	waitCluster(t, node2, "node 2 backup after the split", 5*time.Second, func(st api.ClusterStatus) bool { return st.Role == "backup" })
	if st, err := node1.API.Cluster(t.Context()); err != nil || st.Role != "master" {
		t.Errorf("node 1 after the split: %+v, %v; want master", st, err)
	}
	time.Sleep(2500 * time.Millisecond) // node 1's refreshes reach node 2

	adopted := 0
	list2, err := node2.API.Connections(t.Context(), haService, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list2 {
		if c.Origin == 1 {
			adopted++
		}
	}
	if adopted < perNode {
		t.Errorf("node 2 lists %d connections node 1 opened, want its %d from the split, adopted after it", adopted, perNode)
	}
	owner := map[netip.AddrPort]string{}
	for i, n := range []*demo.Balancer{node1, node2} {
		name := []string{"node 1", "node 2"}[i]
		lo, hi := uint16(10000), uint16(14999)
		if i == 1 {
			lo, hi = 15000, 19999
		}
		list, err := n.API.Connections(t.Context(), haService, "")
		if err != nil {
			t.Fatal(err)
		}
		mine := 0
		for _, c := range list {
			if int(c.Origin) != i+1 {
				continue // adopted from the other node
			}
			mine++
			if p := c.Local.Port(); p < lo || p > hi {
				t.Errorf("%s gave local port %d, outside its slice %d-%d", name, p, lo, hi)
			}
			if other, taken := owner[c.Local]; taken && other != name {
				t.Errorf("local %s handed out by both %s and %s", c.Local, other, name)
			}
			owner[c.Local] = name
		}
		if mine < perNode {
			t.Errorf("%s lists %d connections it opened, want at least %d", name, mine, perNode)
		}
		st, err := n.API.Cluster(t.Context())
		if err != nil || st.Sync == nil {
			t.Fatal(err)
		}
		if st.Sync.Conflicts != 0 {
			t.Errorf("%s: %d local port conflicts adopting the peer's connections, want 0", name, st.Sync.Conflicts)
		}
	}
	checkNewConnection(t, e, "after the split")
}

// blackhole makes host drop whatever it sends to addr; the returned func
// undoes it (and is run at the end of the test too).
func blackhole(t *testing.T, host *testbed.Host, addr netip.Addr) func() {
	t.Helper()
	route := &netlink.Route{Dst: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}, Type: unix.RTN_BLACKHOLE}
	if err := host.Do(func() error { return netlink.RouteAdd(route) }); err != nil {
		t.Fatalf("blackhole %s on %s: %v", addr, host, err)
	}
	done := false
	undo := func() {
		if done {
			return
		}
		done = true
		if err := host.Do(func() error { return netlink.RouteDel(route) }); err != nil {
			t.Errorf("remove blackhole %s on %s: %v", addr, host, err)
		}
	}
	t.Cleanup(undo)
	return undo
}

// pinNeighbour makes host send to addr at mac, whatever ARP says.
func pinNeighbour(t *testing.T, host *testbed.Host, addr netip.Addr, mac string) {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	err = host.Do(func() error {
		return netlink.NeighSet(&netlink.Neigh{LinkIndex: host.Ifindex(), Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: addr.AsSlice(), HardwareAddr: hw})
	})
	if err != nil {
		t.Fatalf("pin %s at %s on %s: %v", addr, mac, host, err)
	}
}

// unpinNeighbour lets host learn addr's MAC by ARP again.
func unpinNeighbour(t *testing.T, host *testbed.Host, addr netip.Addr) {
	t.Helper()
	err := host.Do(func() error {
		return netlink.NeighDel(&netlink.Neigh{LinkIndex: host.Ifindex(), Family: netlink.FAMILY_V4, IP: addr.AsSlice()})
	})
	if err != nil {
		t.Fatalf("unpin %s on %s: %v", addr, host, err)
	}
}
