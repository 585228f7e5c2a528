package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollectBGP: sessions, announcements and withdrawals; without a
// bgp section there are none.
func TestCollectBGP(t *testing.T) {
	f := newFake()
	names := []string{"xdplb_bgp_peer_up", "xdplb_bgp_announced", "xdplb_bgp_withdrawals_total"}
	if n := testutil.CollectAndCount(NewCollector(f), names...); n != 0 {
		t.Fatalf("without bgp: %d bgp metrics, want none", n)
	}
	f.bgp = BGPStats{On: true, PeersUp: map[string]bool{"172.19.0.1": true, "172.19.0.254": false},
		Prefixes:    []BGPPrefix{{Prefix: "172.19.0.10/32", Kind: "vip"}, {Prefix: "172.19.0.5/32", Kind: "local", Announced: true}},
		Withdrawals: map[string]uint64{"drained": 2}}
	want := `
# HELP xdplb_bgp_announced Whether a prefix is announced (1) or withdrawn (0), by kind: vip, local (this node's local address), takeover (a failed node's); xdplb bgp status says why.
# TYPE xdplb_bgp_announced gauge
xdplb_bgp_announced{kind="local",prefix="172.19.0.5/32"} 1
xdplb_bgp_announced{kind="vip",prefix="172.19.0.10/32"} 0
# HELP xdplb_bgp_peer_up Whether the BGP session with a router is established.
# TYPE xdplb_bgp_peer_up gauge
xdplb_bgp_peer_up{peer="172.19.0.1"} 1
xdplb_bgp_peer_up{peer="172.19.0.254"} 0
# HELP xdplb_bgp_withdrawals_total Announced prefixes withdrawn, by reason: not_forwarding (XDP detached, an interface down), sync_pending, drained, backends_down (a service below bgp.min_up_backends).
# TYPE xdplb_bgp_withdrawals_total counter
xdplb_bgp_withdrawals_total{reason="drained"} 2
`
	if err := testutil.CollectAndCompare(NewCollector(f), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}
