package daemon

import (
	"context"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"

	"github.com/xdplb/xdplb/internal/connsync"
)

// silentFor is how long a node goes unheard on the sync channel before
// its local addresses are taken over: three of its heartbeats.
func silentFor(advert time.Duration) time.Duration { return 3 * advert }

// takeOverAddrs decides which failed nodes' local addresses this node
// holds: those of every configured node (bgp.nodes) unheard for silentFor,
// or never heard since startedAt plus silentFor, each held by one survivor
// that every survivor picks alike (the highest rendezvous hash of the
// address and the live node ids).
func takeOverAddrs(self uint8, nodes map[uint8][]netip.Addr, peers []connsync.PeerStats, silent time.Duration,
	startedAt, now time.Time) []netip.Addr {
	heard := map[uint8]time.Time{}
	for _, p := range peers {
		if p.NodeID != 0 && p.LastHeard.After(heard[p.NodeID]) {
			heard[p.NodeID] = p.LastHeard
		}
	}
	alive := []uint8{self}
	var dead []uint8
	for id := range nodes {
		last, ok := heard[id]
		if !ok {
			last = startedAt
		}
		if now.Sub(last) < silent {
			alive = append(alive, id)
		} else {
			dead = append(dead, id)
		}
	}
	var out []netip.Addr
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

// nodeAddrs indexes bgp.nodes by node id.
func (d *Daemon) nodeAddrs() map[uint8][]netip.Addr {
	out := map[uint8][]netip.Addr{}
	for _, n := range d.cfg.BGP.Nodes {
		out[n.NodeID] = append(out[n.NodeID], n.LocalAddresses...)
	}
	return out
}

// takeOver makes this node hold exactly want of the failed nodes' local
// addresses: added to the interface and announced with gratuitous ARP (so
// that on-link backends send the replies here), and to the routers as a
// backup path (the next announcement picks them up from the snapshot).
func (d *Daemon) takeOver(ctx context.Context, want []netip.Addr) error {
	return d.do(func() error {
		if slices.Equal(want, d.takenOver) {
			return nil
		}
		var added []netip.Addr
		for _, a := range want {
			if !slices.Contains(d.takenOver, a) {
				added = append(added, a)
			}
		}
		for _, a := range d.takenOver {
			if !slices.Contains(want, a) {
				d.log.Info("bgp: giving back a node's local address: it is heard again", "address", a)
			}
		}
		for _, a := range added {
			d.log.Warn("bgp: taking over a silent node's local address", "address", a)
		}
		d.takenOver = want
		err := d.addAddresses()
		if len(added) > 0 {
			g := d.cfg.HA.GARP
			d.announcer.Start(ctx, d.addrInterface(), added, g.Repeat, g.Delay)
		}
		d.publish()
		return err
	})
}

// watchNodes takes over and gives back the other nodes' local addresses
// as they fall silent and are heard again.
func (d *Daemon) watchNodes(ctx context.Context) {
	if d.cluster == nil || d.cluster.node == nil || len(d.cfg.BGP.Nodes) == 0 {
		return
	}
	want := takeOverAddrs(d.cfg.HA.NodeID, d.nodeAddrs(), d.cluster.node.Stats().Peers,
		silentFor(d.cfg.HA.AdvertInterval), d.startedAt, time.Now())
	if err := d.takeOver(ctx, want); err != nil {
		d.log.Warn("bgp: take over local addresses", "err", err)
	}
}
