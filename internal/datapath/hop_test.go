package datapath

import (
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestBackendHopCached: a new connection takes its backend's next hop as
// the last lookup left it, for a second, instead of asking the FIB: with
// rs1's neighbour entry gone, a second connection within that second still
// reaches rs1's MAC; after it, the FIB is asked and the missing neighbour
// drops the SYN as before.
func TestBackendHopCached(t *testing.T) {
	f := newFixture(t, poolBase, poolBase+9)
	in, out := synFrom(t, clientN(0), poolBase)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	var err error
	f.nt.do(func() {
		err = netlink.NeighDel(&netlink.Neigh{LinkIndex: f.lb0.ifindex, Family: netlink.FAMILY_V4, IP: rs1HTTP.Addr().AsSlice()})
	})
	if err != nil {
		t.Fatal(err)
	}
	in, out = synFrom(t, clientN(1), poolBase+1)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")

	time.Sleep(backendHopFresh + 100*time.Millisecond)
	late, _ := synFrom(t, clientN(2), 0)
	f.run(t, late, f.lb0.ifindex, xdpDrop, nil, "drop_no_neigh")
}

// backendHopFresh is BACKEND_HOP_NS (bpf/lib/fib.h).
const backendHopFresh = time.Second
