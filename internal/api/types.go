package api

import (
	"net/netip"
	"time"

	"github.com/xdplb/xdplb/internal/ident"
)

// Status says whether the daemon is serving and how it is attached.
type Status struct {
	Ready      bool         `json:"ready"`
	Interfaces []Attachment `json:"interfaces"`
	Services   int          `json:"services"`
	// Timeouts are the conntrack idle timeouts in force.
	Timeouts Timeouts `json:"timeouts"`
	// LocalPortsPerBackend is how many local address:port pairs each
	// backend's connections can hold (this node's slice in a cluster);
	// NewConnsCeiling is how many new connections a second each backend
	// sustains from distinct client ports: that ÷ the FIN timeout.
	LocalPortsPerBackend uint64  `json:"local_ports_per_backend"`
	NewConnsCeiling      float64 `json:"new_conns_ceiling_per_backend"`
}

// Timeouts are how long a connection may stay idle in each phase before
// it is forgotten; durations are nanoseconds, as everywhere in the API.
type Timeouts struct {
	SynSent     time.Duration `json:"syn_sent_ns"`
	Established time.Duration `json:"established_ns"`
	FinWait     time.Duration `json:"fin_wait_ns"`
	Close       time.Duration `json:"close_ns"`
	UDP         time.Duration `json:"udp_ns"`
}

// Attachment is the XDP program on one interface.
type Attachment struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
}

// Stats are the datapath's counters.
type Stats struct {
	// Reasons counts why packets left the program, by reason name.
	Reasons  map[string]uint64 `json:"reasons"`
	Services []ServiceStats    `json:"services"`
	// TOA counts the client-address option's work by event (inserted,
	// no_room, too_big, forged, mss_lowered): docs/client-address.md.
	TOA map[string]uint64 `json:"toa"`
}

// ServiceStats is one service's traffic and its backends'.
type ServiceStats struct {
	Name      string         `json:"name"`
	Address   string         `json:"address"` // VIP:port
	Protocol  string         `json:"protocol"`
	Scheduler string         `json:"scheduler"`
	Traffic   Traffic        `json:"traffic"`
	Backends  []BackendStats `json:"backends"`
}

// BackendStats is one backend's traffic within a service.
type BackendStats struct {
	Address string  `json:"address"` // IP:port
	Weight  uint32  `json:"weight"`
	Traffic Traffic `json:"traffic"`
	// ActiveConns and InactiveConns count the backend's connections as
	// ipvsadm's ActiveConn and InActConn do: established, and any other
	// state, as of the collector's last sweep.
	ActiveConns   uint64 `json:"active_conns"`
	InactiveConns uint64 `json:"inactive_conns"`
}

// Traffic counts packets and bytes in both directions ("in" is client to
// backend) and new connections.
type Traffic struct {
	PacketsIn  uint64 `json:"packets_in"`
	BytesIn    uint64 `json:"bytes_in"`
	PacketsOut uint64 `json:"packets_out"`
	BytesOut   uint64 `json:"bytes_out"`
	NewConns   uint64 `json:"new_conns"`
}

// Connection is one tracked connection (`xdplb conn list`).
type Connection struct {
	Protocol  ident.Protocol `json:"protocol"`
	State     string         `json:"state"`
	ExpiresIn time.Duration  `json:"expires_in_ns"`
	Client    netip.AddrPort `json:"client"`
	VIP       netip.AddrPort `json:"vip"`
	Local     netip.AddrPort `json:"local"`
	Backend   netip.AddrPort `json:"backend"`
	// Origin is the node id (ha.node_id) of the balancer that opened the
	// connection; 0 without HA.
	Origin uint8 `json:"origin,omitempty"`
	// DSR: direct server return, the backend answers the client itself;
	// there is no Local.
	DSR bool `json:"dsr,omitempty"`
}

// Error is the body of every failed request.
type Error struct {
	Message string `json:"error"`
	// Problems lists what is wrong with a request or the configuration
	// it would make, each located by a path such as "port" or
	// "backends[1].weight".
	Problems []Problem `json:"problems,omitempty"`
}

// Problem is one thing wrong with a request or configuration.
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}
