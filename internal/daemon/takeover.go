package daemon

import (
	"context"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/connsync"
)

// silentFor is how long a node goes unheard on the sync channel before
// its local addresses are taken over: three of its heartbeats.
func silentFor(advert time.Duration) time.Duration { return 3 * advert }

// takeOverAddrs decides which failed nodes' local addresses this node
// holds: those of every configured node (bgp.nodes) unheard for silent,
// each held by one survivor that every survivor picks alike (the highest
// rendezvous hash of the address and the live node ids). A node this
// daemon never heard is taken for alive (a sync channel set up wrong must
// not make every node take every address), but the addresses of it this
// node holds already (a predecessor took them over and handed them on)
// stay until it is heard.
func takeOverAddrs(self uint8, nodes map[uint8][]netip.Addr, peers []connsync.PeerStats, silent time.Duration,
	held []netip.Addr, now time.Time) []netip.Addr {
	heard := map[uint8]time.Time{}
	for _, p := range peers {
		if p.NodeID != 0 && p.LastHeard.After(heard[p.NodeID]) {
			heard[p.NodeID] = p.LastHeard
		}
	}
	alive := []uint8{self}
	var dead []uint8
	var out []netip.Addr
	for id, addrs := range nodes {
		last, ok := heard[id]
		switch {
		case ok && now.Sub(last) < silent:
			alive = append(alive, id)
		case ok:
			dead = append(dead, id)
		default:
			// Not heard yet: what this node holds of it, it keeps.
			for _, a := range addrs {
				if slices.Contains(held, a) {
					out = append(out, a)
				}
			}
			alive = append(alive, id)
		}
	}
	for _, id := range dead {
		for _, a := range nodes[id] {
			if holder(a, alive) == self {
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// holder is the live node that holds a: the one with the highest hash of
// a and its id, so that the survivors agree without talking, and a node's
// failure moves only the addresses it held.
func holder(a netip.Addr, alive []uint8) uint8 {
	var best uint8
	var bestHash uint64
	for _, id := range alive {
		h := fnv.New64a()
		h.Write(a.AsSlice())
		h.Write([]byte{id})
		if v := h.Sum64(); best == 0 || v > bestHash {
			best, bestHash = id, v
		}
	}
	return best
}

// nodeAddrs indexes cfg's bgp.nodes by node id.
func (d *Daemon) nodeAddrs(cfg *config.Config) map[uint8][]netip.Addr {
	out := map[uint8][]netip.Addr{}
	for _, n := range cfg.BGP.Nodes {
		out[n.NodeID] = append(out[n.NodeID], n.LocalAddresses...)
	}
	return out
}

// heldFor lists the addresses of rec (what a predecessor added) that are
// other nodes' local addresses: taken over, and kept until those nodes
// are heard.
func heldFor(rec []ownedAddr, nodes map[uint8][]netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, o := range rec {
		for _, addrs := range nodes {
			if slices.Contains(addrs, o.Address) && !slices.Contains(out, o.Address) {
				out = append(out, o.Address)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// takeOver makes this node hold exactly want of the failed nodes' local
// addresses: added to the interface and announced with gratuitous ARP (so
// that on-link backends send the replies here), and to the routers as a
// backup path (the next announcement picks them up from the snapshot).
// It reports whether the set changed. One that could not be applied is
// tried again at the next call.
func (d *Daemon) takeOver(ctx context.Context, want []netip.Addr) (changed bool, err error) {
	err = d.do(func() error {
		if slices.Equal(want, d.takenOver) {
			return nil
		}
		changed = true
		prev := d.takenOver
		var added []netip.Addr
		for _, a := range want {
			if !slices.Contains(prev, a) {
				added = append(added, a)
				d.log.Warn("bgp: taking over a silent node's local address", "address", a)
			}
		}
		for _, a := range prev {
			if !slices.Contains(want, a) {
				d.log.Info("bgp: giving back a node's local address: it is heard again", "address", a)
			}
		}
		d.takenOver = want
		if err := d.addAddresses(); err != nil {
			d.takenOver = prev
			return err
		}
		if len(added) > 0 {
			g := d.cfg.HA.GARP
			d.announcer.Start(ctx, d.addrInterface(), added, g.Repeat, g.Delay)
		}
		d.publish()
		return nil
	})
	return changed, err
}

// watchNodes takes over and gives back the other nodes' local addresses
// as they fall silent and are heard again; a node that does not forward
// itself takes over nothing (it would only take the addresses from the
// node that does). It reports whether what this node holds changed.
func (d *Daemon) watchNodes(ctx context.Context, forwarding bool) bool {
	v := d.view()
	if d.cluster == nil || d.cluster.node == nil || len(v.cfg.BGP.Nodes) == 0 {
		return false
	}
	var want []netip.Addr
	if forwarding {
		want = takeOverAddrs(v.cfg.HA.NodeID, d.nodeAddrs(v.cfg), d.cluster.node.Stats().Peers,
			silentFor(v.cfg.HA.AdvertInterval), v.takenOver, time.Now())
	}
	changed, err := d.takeOver(ctx, want)
	if err != nil {
		d.log.Warn("bgp: take over local addresses", "err", err)
	}
	return changed
}
