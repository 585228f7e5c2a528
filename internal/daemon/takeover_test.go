package daemon

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/connsync"
)

func TestTakeOverAddrs(t *testing.T) {
	now := time.Now()
	a1, a2, a3 := netip.MustParseAddr("10.0.0.101"), netip.MustParseAddr("10.0.0.102"), netip.MustParseAddr("10.0.0.103")
	nodes := map[uint8][]netip.Addr{2: {a2}, 3: {a3}}
	heard := func(ago map[uint8]time.Duration) []connsync.PeerStats {
		var out []connsync.PeerStats
		for id, d := range ago {
			out = append(out, connsync.PeerStats{NodeID: id, LastHeard: now.Add(-d)})
		}
		return out
	}
	const silent = 3 * time.Second
	if got := takeOverAddrs(1, nodes, heard(map[uint8]time.Duration{2: time.Second, 3: time.Second}), silent, nil, now); len(got) != 0 {
		t.Errorf("every node heard: took over %v", got)
	}
	// Node 2 is silent: nodes 1 and 3 agree on which of them holds its
	// address, and exactly one of them does.
	peers1 := heard(map[uint8]time.Duration{2: 10 * time.Second, 3: time.Second})
	peers3 := heard(map[uint8]time.Duration{2: 10 * time.Second, 1: time.Second})
	by1 := takeOverAddrs(1, nodes, peers1, silent, nil, now)
	by3 := takeOverAddrs(3, map[uint8][]netip.Addr{1: {a1}, 2: {a2}}, peers3, silent, nil, now)
	if n := len(by1) + len(by3); n != 1 || !slices.Contains(append(by1, by3...), a2) {
		t.Errorf("node 2 silent: node 1 took %v, node 3 took %v; want exactly one to take %s", by1, by3, a2)
	}
	// Both others silent: the survivor takes both.
	both := heard(map[uint8]time.Duration{2: 10 * time.Second, 3: 10 * time.Second})
	if got := takeOverAddrs(1, nodes, both, silent, nil, now); !slices.Equal(got, []netip.Addr{a2, a3}) {
		t.Errorf("alone: took over %v, want %v", got, []netip.Addr{a2, a3})
	}
	// Never heard: alive, unless this node holds its address already (a
	// predecessor took it over).
	if got := takeOverAddrs(1, nodes, nil, silent, nil, now); len(got) != 0 {
		t.Errorf("never heard: took over %v", got)
	}
	if got := takeOverAddrs(1, nodes, nil, silent, []netip.Addr{a2}, now); !slices.Equal(got, []netip.Addr{a2}) {
		t.Errorf("never heard, held by the predecessor: took over %v, want [%s]", got, a2)
	}
}

func TestHeldFor(t *testing.T) {
	a2 := netip.MustParseAddr("10.0.0.102")
	rec := []ownedAddr{{Interface: "eth0", Address: netip.MustParseAddr("10.0.0.10")}, {Interface: "eth0", Address: a2}}
	if got := heldFor(rec, map[uint8][]netip.Addr{2: {a2}}); !slices.Equal(got, []netip.Addr{a2}) {
		t.Errorf("held %v, want [%s]", got, a2)
	}
}
