package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"time"
)

// Bounds of the ha and sync fields, worded once for the decoder and the
// validator.
const (
	nodeIDBounds = "(1-255)"
	// maxNodes is what a node id, one byte on the wire, can number.
	maxNodes = 255
	maxPeers = maxNodes - 1

	// VRRP reserves 255 for the owner of the addresses and 0 for a
	// master that leaves.
	priorityBounds           = "(1-254)"
	minPriority, maxPriority = 1, 254

	// Peers are told the advert interval in 16 bits of milliseconds;
	// these bounds keep well inside them.
	advertBounds         = "(100ms to 25s)"
	minAdvert, maxAdvert = 100 * time.Millisecond, 25 * time.Second

	garpRepeatBounds = "(1-100)"
	maxGARPRepeat    = 100

	hourBounds = "(0 to 1h)"

	batchBounds        = "(1ms to 1s)"
	minBatch, maxBatch = time.Millisecond, time.Second

	refreshBounds = "(at least 1s, and less than half of conntrack.timeouts.established and of conntrack.timeouts.udp)"
	minRefresh    = time.Second

	bulkBounds       = "(1s to 10m)"
	minBulk, maxBulk = time.Second, 10 * time.Minute
)

// ha checks the ha section against itself and against the sections it
// refers to (interfaces, local.ports, sync.peers).
func (ps *problems) ha(c *Config) {
	h := c.HA
	if !slices.Contains(haModes, h.Mode) {
		ps.add("ha.mode", "%q is not an HA mode (accepted: %s)", h.Mode, join(haModes))
	}
	if why := c.nodeIDNeeded(); why != "" && h.NodeID == 0 {
		ps.add("ha.node_id", "missing (a node id %s is required %s)", nodeIDBounds, why)
	}
	switch {
	case h.Nodes == 0:
		ps.add("ha.nodes", "0 is not a node count %s", nodeIDBounds)
	case h.NodeID > h.Nodes:
		ps.add("ha.node_id", "%d is greater than ha.nodes (%d); node ids run from 1 to ha.nodes, "+
			"which defaults to the number of sync.peers plus one", h.NodeID, h.Nodes)
	case int(h.Nodes) < len(c.Sync.Peers)+1 && len(c.Sync.Peers) <= maxPeers:
		ps.add("ha.nodes", "%d is fewer than the nodes sync connects (this one and %d peers)", h.Nodes, len(c.Sync.Peers))
	}
	if r := c.Local.Ports; h.Nodes > 1 && r.problem() == "" && r.Size() < int(h.Nodes) {
		ps.add("local.ports", "%s has %d ports, fewer than ha.nodes (%d): each node hands out its own slice of local.ports, "+
			"of at least one port", r, r.Size(), h.Nodes)
	}
	if h.Interface != "" && !slices.Contains(c.Interfaces, h.Interface) {
		ps.add("ha.interface", "%q is not one of interfaces (%s)", h.Interface, join(c.Interfaces))
	}
	if h.Priority < minPriority || h.Priority > maxPriority {
		ps.add("ha.priority", "%d is not a priority %s", h.Priority, priorityBounds)
	}
	if a := h.AdvertInterval; a < minAdvert || a > maxAdvert {
		ps.add("ha.advert_interval", "%s is out of range %s", a, advertBounds)
	} else if a%time.Millisecond != 0 {
		ps.add("ha.advert_interval", "%s is not a whole number of milliseconds (adverts carry it in milliseconds)", a)
	}
	if d := h.PreemptDelay; d < 0 || d > time.Hour {
		ps.add("ha.preempt_delay", "%s is out of range %s", d, hourBounds)
	}
	if r := h.GARP.Repeat; r < 1 || r > maxGARPRepeat {
		ps.add("ha.garp.repeat", "%d is not a count %s", r, garpRepeatBounds)
	}
	if d := h.GARP.Delay; d < 0 || d > time.Hour {
		ps.add("ha.garp.delay", "%s is out of range %s", d, hourBounds)
	}
	if h.Mode == HAModeVRRP && !c.SyncEnabled() {
		ps.add("sync.peers", "required with ha.mode vrrp: the election runs over the sync channel, "+
			"so each node must list the others")
	}
}

// nodeIDNeeded says why this node needs a node id, or "" if it does not.
func (c *Config) nodeIDNeeded() string {
	switch {
	// Not HAEnabled: an unknown mode is reported as such, not as a
	// reason for more.
	case c.HA.Mode == HAModeVRRP, c.HA.Mode == HAModeExternal:
		return fmt.Sprintf("with ha.mode %s", c.HA.Mode)
	case c.SyncEnabled():
		return "with sync.peers: it marks the connections this node opened"
	case c.HA.Nodes > 1:
		return fmt.Sprintf("with ha.nodes %d: it picks this node's slice of local.ports", c.HA.Nodes)
	}
	return ""
}

// sync checks the sync section.
func (ps *problems) sync(c *Config) {
	s := c.Sync
	if s.Listen.IsValid() {
		if why := syncAddrProblem(s.Listen); why != "" {
			ps.add("sync.listen", "%s", why)
		} else if !c.SyncEnabled() {
			ps.add("sync.listen", "set, but sync.peers is empty: list the other nodes' sync.listen addresses, or remove the sync section")
		}
	} else if c.SyncEnabled() {
		ps.add("sync.listen", "missing (this node's address:port is required with sync.peers, "+
			"for example 192.0.2.5:8849)")
	}
	if len(s.Peers) > maxPeers {
		ps.add("sync.peers", "%d peers, more than the maximum of %d (a cluster has at most %d nodes)", len(s.Peers), maxPeers, maxNodes)
	}
	first := map[netip.AddrPort]int{}
	for i, p := range s.Peers {
		path := index("sync.peers", i)
		if why := syncAddrProblem(p); why != "" {
			ps.add(path, "%s", why)
			continue
		}
		j, dup := first[p]
		switch {
		case p == s.Listen:
			ps.add(path, "%s is sync.listen, this node's own address", p)
		case s.Listen.IsValid() && p.Addr().Is4() != s.Listen.Addr().Is4():
			ps.add(path, "%s is not of the family of sync.listen (%s)", p, s.Listen)
		case dup:
			ps.add(path, "%s is already listed at sync.peers[%d]", p, j)
		default:
			first[p] = i
		}
	}
	switch {
	case s.KeyFile == "" && c.SyncEnabled():
		ps.add("sync.key_file", "missing (the path of the key shared by all nodes is required with sync.peers)")
	case s.KeyFile != "" && !filepath.IsAbs(s.KeyFile):
		ps.add("sync.key_file", "%q is not an absolute path", s.KeyFile)
	}
	if b := s.BatchInterval; b < minBatch || b > maxBatch {
		ps.add("sync.batch_interval", "%s is out of range %s", b, batchBounds)
	}
	t := c.Conntrack.Timeouts
	field, idle := "established", t.Established
	if t.UDP < idle {
		field, idle = "udp", t.UDP
	}
	switch {
	case s.Refresh < minRefresh:
		ps.add("sync.refresh", "%s is too short (at least %s)", s.Refresh, minRefresh)
	case c.SyncEnabled() && s.Refresh >= idle/2:
		ps.add("sync.refresh", "%s is not less than half of conntrack.timeouts.%s (%s): "+
			"a refresh must reach the peers before their copy of a busy connection expires, even if one is lost", s.Refresh, field, idle)
	}
	if b := s.BulkTimeout; b < minBulk || b > maxBulk {
		ps.add("sync.bulk_timeout", "%s is out of range %s", b, bulkBounds)
	}
}

// syncAddrProblem explains why a cannot be where a node listens for its
// peers, or returns "" if it can.
func syncAddrProblem(a netip.AddrPort) string {
	switch ip := a.Addr(); {
	case !a.IsValid():
		return "missing (an address:port is required)"
	case a.Port() == 0:
		return fmt.Sprintf("%s: 0 is not a port %s", a, portBounds)
	case ip.IsUnspecified():
		return fmt.Sprintf("%s is the unspecified address; give the specific address the nodes reach each other at", ip)
	case ip.IsMulticast():
		return fmt.Sprintf("%s is a multicast address", ip)
	case ip == broadcast:
		return fmt.Sprintf("%s is the broadcast address", ip)
	}
	return ""
}
