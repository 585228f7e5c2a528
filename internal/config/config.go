package config

import (
	"net/netip"
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/ident"
)

// Limits imposed by the sizes of the datapath's BPF maps. They are
// checked here so that an oversized config fails at load time with a
// clear message instead of as a map update error halfway through
// programming the datapath.
const (
	MaxServices           = datapath.MaxServices
	MaxBackends           = datapath.MaxBackends // total across all services
	MaxBackendsPerService = 4096
	MaxLocalAddresses     = datapath.MaxLocalAddrs
	// MaxInterfaces is how many interfaces the program can be attached to.
	MaxInterfaces = datapath.MaxInterfaces
	// RingSlots is the size of the array every scheduler's ring lives in.
	RingSlots = datapath.RingSlots
	// MaxWRRRing is the longest weighted round-robin ring; longer ones
	// are scaled down.
	MaxWRRRing = 65536
)

// Config is the whole configuration file. After Load or Parse every
// optional field holds its final (defaulted) value.
type Config struct {
	// Interfaces the XDP program is attached to: at least one, unique.
	Interfaces []string      `yaml:"interfaces"`
	XDPMode    ident.XDPMode `yaml:"xdp_mode"`
	Local      Local         `yaml:"local"`
	Services   []Service     `yaml:"services"`
	Conntrack  Conntrack     `yaml:"conntrack"`
	// SYNProtection says when new TCP clients must prove their source
	// address first.
	SYNProtection SYNProtection `yaml:"syn_protection"`
	// DSR holds the node's settings for direct server return: the
	// tunnels' source and port, and the balancers it decapsulates for.
	DSR     DSR     `yaml:"dsr"`
	Log     Log     `yaml:"log"`
	API     API     `yaml:"api"`
	State   State   `yaml:"state"`
	Metrics Metrics `yaml:"metrics"`
	// HA and Sync make this node one of several that serve the same
	// VIPs; without them it is alone.
	HA   HA   `yaml:"ha"`
	Sync Sync `yaml:"sync"`
	// BGP announces the VIPs and local addresses to routers.
	BGP BGP `yaml:"bgp"`
}

// Metrics is the Prometheus endpoint.
type Metrics struct {
	// Listen is the address (host:port) serving /metrics; empty: off.
	Listen string `yaml:"listen"`
}

// API is the daemon's local control socket, used by the CLI.
type API struct {
	// Socket is the path of the unix socket; absolute.
	Socket string `yaml:"socket"`
}

// Local describes the balancer's own side of Full-NAT: the source
// addresses and ports it uses towards the backends.
type Local struct {
	// Addresses are the SNAT source addresses, IPv4 or IPv6: at least
	// one, and one of each family a Full-NAT service's VIP has; at most
	// MaxLocalAddresses of each family.
	Addresses []netip.Addr `yaml:"addresses"`
	// Ports is the SNAT source port range, shared by all addresses.
	Ports PortRange `yaml:"ports"`
}

// Conntrack sizes the connection tracking table and sets its timeouts.
type Conntrack struct {
	// Capacity is the maximum number of tracked connections.
	Capacity int `yaml:"capacity"`
	// Timeouts are the idle times after which a connection is forgotten.
	Timeouts Timeouts `yaml:"timeouts"`
	// GCInterval is how often expired connections are collected.
	GCInterval time.Duration `yaml:"gc_interval"`
}

// Timeouts per connection phase, as IPVS has them.
type Timeouts struct {
	SynSent     time.Duration `yaml:"syn_sent"`
	Established time.Duration `yaml:"established"`
	FinWait     time.Duration `yaml:"fin_wait"`
	Close       time.Duration `yaml:"close"`
	UDP         time.Duration `yaml:"udp"`
}

// State is where the datapath keeps what must outlive the daemon.
type State struct {
	// PinPath is a directory on the BPF filesystem holding the pinned maps
	// and attachments, so restarts keep every connection. Empty: nothing
	// is pinned and connections end with the daemon.
	PinPath string `yaml:"pin_path"`
}

// Log configures the daemon's logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // text or json
}

// Service is one virtual service: traffic to VIP:Port/Protocol is spread
// over Backends.
type Service struct {
	// Name identifies the service in logs and metrics. It defaults to
	// Key(), so it is never empty after Parse.
	Name      string         `yaml:"name"`
	VIP       netip.Addr     `yaml:"vip"`
	Port      uint16         `yaml:"port"`
	Protocol  ident.Protocol `yaml:"protocol"`
	Scheduler string         `yaml:"scheduler"`
	// Persistence, if non-zero, sends a client address back to the
	// backend it last got for this long after its last new connection.
	Persistence time.Duration `yaml:"persistence"`
	// PersistenceNetmask, if not 0, is the prefix length clients' addresses
	// are cut to for persistence: a whole subnet then sticks to one backend
	// (IPVS's persistence netmask): 1-32 for an IPv4 VIP, 1-128 for an
	// IPv6 one. 0, or the address's whole length: each address alone.
	PersistenceNetmask uint8 `yaml:"persistence_netmask,omitempty"`
	// Backends may be empty: the datapath then drops (and counts) new
	// connections, which lets an operator drain a service entirely.
	Backends []Backend `yaml:"backends"`
	// HealthCheck, if set, checks every backend (each may override it).
	HealthCheck *health.Spec `yaml:"health_check"`
	// OnBackendDown says what happens to the established connections of
	// a backend health checks take out: keep them (default), or expire
	// them at once: a TCP client's next packet is answered with a reset
	// (counted as fwd_reset), a UDP flow's next datagram goes to a
	// healthy backend.
	OnBackendDown string `yaml:"on_backend_down"`
	// Forwarding says how packets reach the backends: "fullnat" (the
	// default) rewrites both addresses and the backend answers through
	// the balancer; the direct server return modes leave the client's
	// packet as it was sent and the backend, holding the VIP itself,
	// answers the client directly: "dsr-l2" sends it to the backend's MAC
	// address, "dsr-ipip" inside an IPIP tunnel, "dsr-gue" inside a GUE
	// (UDP) tunnel. DSR cannot change the port, so every backend's port
	// is the service's.
	Forwarding string `yaml:"forwarding"`
	// ClientAddress says whether backends learn the client's address,
	// which Full-NAT replaces with a local address: "none" (the default)
	// or "toa", the client's address and port in a TCP option (kind 254,
	// LVS's and DPVS's TOA) of its handshake ACK, for a reader on the
	// backend to hand to accept(). TCP services only.
	ClientAddress string `yaml:"client_address"`
	// Fallback, if set, receives new connections while every backend is
	// down or drained (keepalived's sorry server); otherwise they are
	// dropped.
	Fallback *Backend `yaml:"fallback"`
}

// What OnBackendDown may say.
const (
	KeepConnections   = "keep"
	ExpireConnections = "expire"
)

// What ClientAddress may say.
const (
	ClientAddressNone = "none"
	ClientAddressTOA  = "toa"
)

// What Forwarding may say.
const (
	ForwardingFullNAT = "fullnat"
	ForwardingDSRL2   = "dsr-l2"
	ForwardingDSRIPIP = "dsr-ipip"
	ForwardingDSRGUE  = "dsr-gue"
)

// DSR reports whether s uses one of the direct server return modes: its
// backends answer clients directly, and never through the balancer.
func (s Service) DSR() bool {
	switch s.Forwarding {
	case ForwardingDSRL2, ForwardingDSRIPIP, ForwardingDSRGUE:
		return true
	}
	return false
}

// IPv6 reports whether s serves IPv6 clients: its VIP is an IPv6 address
// (an IPv4-mapped one is refused, and counts as IPv4 here).
func (s Service) IPv6() bool { return s.VIP.Is6() && !s.VIP.Is4In6() }

// NAT64 tells an IPv6 service whose backends are IPv4, as its first
// backend (or its fallback, without backends) is: the datapath
// translates the clients' packets (RFC 7915). Validation makes sure the
// others are of the same family.
func (s Service) NAT64() bool {
	if !s.IPv6() {
		return false
	}
	for _, b := range s.Backends {
		if b.Address.IsValid() {
			return b.Address.Is4()
		}
	}
	return s.Fallback != nil && s.Fallback.Address.Is4()
}

// Key identifies a service by what the datapath matches on.
func (s Service) Key() ident.Service {
	return ident.Service{VIP: s.VIP, Port: s.Port, Proto: s.Protocol}
}

// BackendKey identifies backend b of s.
func (s Service) BackendKey(b Backend) ident.Backend {
	return ident.Backend{Service: s.Key(), Addr: b.AddrPort()}
}

// AddrPort is where the backend is reached.
func (b Backend) AddrPort() netip.AddrPort { return netip.AddrPortFrom(b.Address, b.Port) }

// Backend is one real server behind a service.
type Backend struct {
	Address netip.Addr `yaml:"address"`
	// Port defaults to the service port.
	Port uint16 `yaml:"port"`
	// Weight defaults to 1. Zero is valid and means drained: existing
	// connections continue but no new ones are scheduled.
	Weight uint32 `yaml:"weight"`
	// HealthCheck overrides the service's check for this backend.
	HealthCheck *health.Spec `yaml:"health_check"`
}

// Check is the health check that applies to backend b of s, if any.
func (s Service) Check(b Backend) *health.Spec {
	if b.HealthCheck != nil {
		return b.HealthCheck
	}
	return s.HealthCheck
}
