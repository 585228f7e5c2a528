package metrics

import "github.com/prometheus/client_golang/prometheus"

// BGPStats is the BGP speaker's state.
type BGPStats struct {
	// On: a bgp section is configured; without, no bgp metrics.
	On bool
	// PeersUp says, per router address, whether its session is
	// established.
	PeersUp map[string]bool
	// Prefixes are the candidate prefixes with their kind (vip, local,
	// takeover) and whether they are announced.
	Prefixes []BGPPrefix
	// Withdrawals counts announced prefixes withdrawn, by the kind of
	// reason: not_forwarding, sync_pending, drained, backends_down.
	Withdrawals map[string]uint64
}

// BGPPrefix is one candidate prefix.
type BGPPrefix struct {
	Prefix, Kind string
	Announced    bool
}

type bgpDescs struct {
	peerUp, announced, withdrawals *prometheus.Desc
}

func (c *Collector) describeBGP(desc func(name, help string, labels ...string) *prometheus.Desc) {
	d := &c.bgpDescs
	d.peerUp = desc("bgp_peer_up", "Whether the BGP session with a router is established.", "peer")
	d.announced = desc("bgp_announced",
		"Whether a prefix is announced (1) or withdrawn (0), by kind: vip, local (this node's local address), takeover (a failed node's); xdplb bgp status says why.",
		"prefix", "kind")
	d.withdrawals = desc("bgp_withdrawals_total",
		"Announced prefixes withdrawn, by reason: not_forwarding (XDP detached, an interface down), sync_pending, drained, backends_down (a service below bgp.min_up_backends).", "reason")
}

func (c *Collector) collectBGP(ch chan<- prometheus.Metric, st BGPStats) {
	if !st.On {
		return
	}
	d := &c.bgpDescs
	for peer, up := range st.PeersUp {
		gauge(ch, d.peerUp, boolValue(up), peer)
	}
	for _, p := range st.Prefixes {
		gauge(ch, d.announced, boolValue(p.Announced), p.Prefix, p.Kind)
	}
	for kind, n := range st.Withdrawals {
		counter(ch, d.withdrawals, n, kind)
	}
}
