package metrics

import (
	"net/netip"
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// Source is what the daemon exposes to the metrics collector. It is read
// once per scrape, possibly by concurrent scrapes, so its methods must be
// safe for concurrent use.
type Source interface {
	// Counters are the datapath's counters per service and backend, and
	// the count of every reason a packet left the program.
	Counters() (Counters, error)
	// Conntrack is the occupancy of the connection tracking table.
	Conntrack() (ConntrackStats, error)
	// Health is whether each backend of each service is up.
	Health() []BackendHealth
	// Collector is what the conntrack garbage collector has done so far.
	Collector() CollectorStats
	// Reloads counts configuration reloads that were applied (ok) and
	// rejected or rolled back (failed) since the daemon started.
	Reloads() (ok, failed uint64)
	// Cluster is the node's HA role and its connection sync.
	ClusterMetrics() ClusterStats
	// BGPMetrics is the BGP speaker's sessions and announcements.
	BGPMetrics() BGPStats
}

// Counters are the datapath's counters as the daemon reads them.
type Counters struct {
	// Reasons counts why packets left the program, by reason name.
	Reasons  map[string]uint64
	Services []ServiceCounters
	// LocalPortsPerBackend is how many local address:port pairs each
	// backend has for its connections: local addresses × ports.
	LocalPortsPerBackend uint64
	// TOA counts the client-address option's work by event name:
	// inserted, no_room, too_big (client packets) and mss_lowered
	// (backends' SYN-ACKs).
	TOA map[string]uint64
	// NewConnsCeiling is how many new connections a second each backend
	// sustains from distinct client ports: every closed connection holds
	// its local port for the FIN timeout, so LocalPortsPerBackend ÷
	// conntrack.timeouts.fin_wait.
	NewConnsCeiling float64
}

// ServiceCounters are one service's traffic and its backends'.
type ServiceCounters struct {
	Name    string
	Key     ident.Service
	Traffic datapath.Traffic
	// HalfOpen is how many of its TCP connections had not completed the
	// handshake at the collector's last sweep.
	HalfOpen uint64
	Backends []BackendCounters
}

// BackendCounters are one backend's traffic within a service, its
// connections as of the collector's last sweep, and its weight.
type BackendCounters struct {
	Addr             netip.AddrPort
	Traffic          datapath.Traffic
	Active, Inactive uint64
	Weight           uint32
}

// ConntrackStats is the occupancy of the connection tracking table.
type ConntrackStats struct {
	// Entries is the number of tracked connections: the forward halves
	// only, so a connection counts once although it has two entries.
	Entries uint64
	// HalfOpen is how many of them are TCP connections whose client has
	// not completed the handshake.
	HalfOpen uint64
	// Capacity is the most connections the table can track.
	Capacity uint64
	// PortsInUse is, per local (SNAT) address, how many of its source
	// ports tracked connections hold.
	PortsInUse map[string]uint64
}

// BackendHealth is whether one backend of one service is up.
type BackendHealth struct {
	Service string // service name, as in ServiceCounters.Name
	Backend netip.AddrPort
	Up      bool
}

// CollectorStats is what the conntrack garbage collector has done since
// the daemon started.
type CollectorStats struct {
	Runs    uint64 // completed runs
	Expired uint64 // entries removed because they idled out
	Orphans uint64 // halves removed because their other half was gone
	// LastDuration is how long the most recent run took.
	LastDuration time.Duration
}
