package daemon

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/connsync"
)

func TestTakeOverAddrs(t *testing.T) {
	start := time.Now()
	now := start.Add(time.Minute)
	a2, a3 := netip.MustParseAddr("10.0.0.102"), netip.MustParseAddr("10.0.0.103")
	nodes := map[uint8][]netip.Addr{2: {a2}, 3: {a3}}
	heard := func(ago map[uint8]time.Duration) []connsync.PeerStats {
		var out []connsync.PeerStats
		for id, d := range ago {
			out = append(out, connsync.PeerStats{NodeID: id, LastHeard: now.Add(-d)})
		}
		return out
	}
	const silent = 3 * time.Second
	if got := takeOverAddrs(1, nodes, heard(map[uint8]time.Duration{2: time.Second, 3: time.Second}), silent, start, now); len(got) != 0 {
		t.Errorf("every node heard: took over %v", got)
	}
	// Node 2 is silent: nodes 1 and 3 agree on which of them holds its
	// address, and exactly one of them does.
	peers1 := heard(map[uint8]time.Duration{2: 10 * time.Second, 3: time.Second})
	peers3 := heard(map[uint8]time.Duration{2: 10 * time.Second, 1: time.Second})
	by1 := takeOverAddrs(1, nodes, peers1, silent, start, now)
	by3 := takeOverAddrs(3, map[uint8][]netip.Addr{1: {netip.MustParseAddr("10.0.0.101")}, 2: {a2}}, peers3, silent, start, now)
	if n := len(by1) + len(by3); n != 1 || !slices.Contains(append(by1, by3...), a2) {
		t.Errorf("node 2 silent: node 1 took %v, node 3 took %v; want exactly one to take %s", by1, by3, a2)
	}
	// Both others silent: the survivor takes both.
	if got := takeOverAddrs(1, nodes, nil, silent, start, now); !slices.Equal(got, []netip.Addr{a2, a3}) {
		t.Errorf("alone: took over %v, want %v", got, []netip.Addr{a2, a3})
	}
	// Never heard, but this node only just started: not yet.
	if got := takeOverAddrs(1, nodes, nil, silent, now.Add(-time.Second), now); len(got) != 0 {
		t.Errorf("just started: took over %v", got)
	}
}
