package config

import (
	"net/netip"
	"time"
)

// HA says how this node shares the service with other xdplb nodes: who
// holds the VIPs (the election) and which local ports it may hand out.
type HA struct {
	// Mode says who decides whether this node is the master.
	Mode HAMode `yaml:"mode"`
	// NodeID identifies this node in the cluster, 1 to 255, unique among
	// the nodes. 0 means not set: a node that neither elects nor syncs
	// needs none.
	NodeID uint8 `yaml:"node_id,omitempty"`
	// Nodes is the cluster size: local.ports is cut into this many
	// slices, one per node id (see AllocPorts). It defaults to the
	// number of sync peers plus one, so 0 means not set.
	Nodes uint8 `yaml:"nodes,omitempty"`
	// Interface is where the VIPs and the floating local addresses are
	// added when this node becomes master, and where its gratuitous ARPs
	// go out. It defaults to the first of Interfaces.
	Interface string `yaml:"interface"`
	// Priority ranks the nodes in the election (1 to 254, higher wins),
	// as a VRRP priority does.
	Priority uint8 `yaml:"priority"`
	// AdvertInterval is how often the master says it is alive; the
	// others take over after three missed adverts. Peers are told it in
	// milliseconds.
	AdvertInterval time.Duration `yaml:"advert_interval"`
	// Preempt lets a node of higher priority take over from a running
	// master of lower priority.
	Preempt bool `yaml:"preempt"`
	// PreemptDelay makes a preempting node wait this long more, so a
	// node that flaps does not move the VIPs back and forth.
	PreemptDelay time.Duration `yaml:"preempt_delay"`
	// GARP is how a new master tells the network that the VIPs moved.
	GARP GARP `yaml:"garp"`
}

// HAMode says who decides whether a node is the master.
type HAMode string

// The values HA.Mode may take, in the order messages list them.
const (
	// HAModeNone: there is no election; the node always serves.
	HAModeNone HAMode = "none"
	// HAModeVRRP: the nodes elect a master among themselves with VRRP's
	// rules, over the sync channel.
	HAModeVRRP HAMode = "vrrp"
	// HAModeExternal: another program (keepalived, pacemaker) decides
	// and tells the daemon through its API.
	HAModeExternal HAMode = "external"
)

var haModes = []HAMode{HAModeNone, HAModeVRRP, HAModeExternal}

// GARP is the burst of gratuitous ARPs a new master sends, twice as
// keepalived does: switches and neighbours that missed the first burst
// (a port still coming up) catch the second.
type GARP struct {
	// Repeat is how many are sent in each burst.
	Repeat int `yaml:"repeat"`
	// Delay is the time between the two bursts; 0 sends only one.
	Delay time.Duration `yaml:"delay"`
}

// Sync is the channel over which the nodes copy their connections to
// each other (and over which the election runs), so that a node taking
// over keeps the connections established through another.
type Sync struct {
	// Listen is where this node receives its peers' updates (UDP) and
	// serves their requests for a full copy (TCP). Not set: no listen.
	Listen netip.AddrPort `yaml:"listen"`
	// Peers are the other nodes' Listen addresses. Sync is on when there
	// is at least one.
	Peers []netip.AddrPort `yaml:"peers"`
	// KeyFile holds the secret, shared by all nodes, that authenticates
	// every message.
	KeyFile string `yaml:"key_file"`
	// BatchInterval is the longest a connection's update waits to share
	// a datagram with others.
	BatchInterval time.Duration `yaml:"batch_interval"`
	// Refresh is how often a busy connection is sent again, so that a
	// peer whose copy missed an update does not let it expire.
	Refresh time.Duration `yaml:"refresh"`
	// BulkTimeout bounds the wait for a peer's full copy when this node
	// starts (or a peer restarts); the node does not take over until
	// every copy arrived or this passed.
	BulkTimeout time.Duration `yaml:"bulk_timeout"`
	// ClusterID tells apart clusters whose nodes share a network (and, by
	// mistake, a key): a node drops and counts another cluster's
	// messages. The same on every node of a cluster.
	ClusterID uint16 `yaml:"cluster_id,omitempty"`
}

// SyncEnabled reports whether connections are shared with peers.
func (c *Config) SyncEnabled() bool { return len(c.Sync.Peers) > 0 }

// HAEnabled reports whether an election (xdplb's or another program's)
// decides whether this node holds the VIPs.
func (c *Config) HAEnabled() bool { return c.HA.Mode != HAModeNone }

// AllocPorts is the part of local.ports this node hands out to new
// connections: the whole range for a node alone, otherwise the slice of
// its node id among ha.nodes contiguous slices (the last one takes what
// does not divide evenly). Two nodes that both believe they are master (a
// split brain) therefore never hand out the same local address and port.
// Replies must still be recognised on the whole of local.ports: the
// connections adopted from a peer use the peer's slice.
func (c *Config) AllocPorts() PortRange {
	n, id := int(c.HA.Nodes), int(c.HA.NodeID)
	// An id outside 1..n is a configuration Validate refuses.
	if n <= 1 || id < 1 || id > n {
		return c.Local.Ports
	}
	return c.Local.Ports.Slice(id-1, n)
}
