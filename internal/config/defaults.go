package config

import (
	"net/netip"
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// Default values for optional fields.
const (
	defaultXDPMode           = ident.ModeAuto
	defaultConntrackCapacity = datapath.DefaultConntrackCapacity
	defaultLogLevel          = "info"
	defaultLogFormat         = "text"
	defaultProtocol          = ident.TCP
	defaultScheduler         = "rr"
	defaultWeight            = 1
	// DefaultAPISocket is where the daemon listens and the CLI connects
	// unless told otherwise.
	DefaultAPISocket = "/run/xdplb/xdplb.sock"
	// DefaultPinPath is where the datapath's maps are pinned.
	DefaultPinPath    = "/sys/fs/bpf/xdplb"
	defaultGCInterval = 10 * time.Second
)

// The election's defaults are keepalived's: VRRP's advert interval and
// priority, two bursts of five gratuitous ARPs five seconds apart. Sync
// batches for 10 ms as vc5 does (IPVS's sync daemon waits 20 ms), and its
// refresh fits well within half of the default established timeout.
var (
	defaultHA = HA{
		Mode:           HAModeNone,
		Priority:       100,
		AdvertInterval: time.Second,
		Preempt:        true,
		GARP:           GARP{Repeat: 5, Delay: 5 * time.Second},
	}
	defaultSync = Sync{
		BatchInterval: 10 * time.Millisecond,
		Refresh:       60 * time.Second,
		BulkTimeout:   30 * time.Second,
	}
)

// defaultTimeouts are IPVS's (established 900 s, after FIN 120 s, UDP
// 300 s, a reset connection 10 s) but for the half-open: 5 s, not IPVS's
// 60 s. Every half-open connection holds a local port; at 60 s a spoofed
// SYN flood of a thousand a second fills a 10,000-port range in under a
// minute, at 5 s (plus the wait for the next collection) it takes more. A client retransmitting its SYN later than
// that simply opens anew.
var defaultTimeouts = Timeouts{
	SynSent:     5 * time.Second,
	Established: 900 * time.Second,
	FinWait:     120 * time.Second,
	Close:       10 * time.Second,
	UDP:         300 * time.Second,
}

// defaultSYNProtection challenges only under a flood. Below the threshold
// every SYN opens a half-open connection, which holds a local port for
// syn_sent and until the next collection (about a second once ports run
// short): 1000 a second × about 6 s is 6,000, within the default
// local.ports of a single backend with margin. A verified source stays so
// for a minute: a client opening connection after connection pays the
// extra round trip once a minute at most. Legitimate half-open connections
// are few (the rate of new ones times a round trip: 100,000 a second at
// 50 ms is 5,000), so the half-open bounds leave room for busy services
// and stop a flood that stays under the threshold from holding one
// backend's default 10,000 local ports.
var defaultSYNProtection = SYNProtection{
	Mode:        SYNAuthAuto,
	Threshold:   1000,
	VerifiedFor: 60 * time.Second,
	HalfOpen:    HalfOpenBudget{Max: 100_000, MaxPerService: 10_000, Action: HalfOpenChallenge},
}

// defaultLocalPorts leaves 1-9999 to well-known and registered services
// and stays below the usual Linux ephemeral range (32768-60999), so SNAT
// ports do not collide with the host's own outgoing connections.
var defaultLocalPorts = PortRange{Min: 10000, Max: 19999}

// The decoder starts each struct from these values and overwrites only
// the fields present in the YAML. That way an absent field gets its
// default while an explicit zero (weight: 0 meaning "drained") survives,
// without needing pointer fields in the public types.

func defaultConfig() Config {
	return Config{
		XDPMode:       defaultXDPMode,
		Local:         Local{Ports: defaultLocalPorts},
		Conntrack:     Conntrack{Capacity: defaultConntrackCapacity, Timeouts: defaultTimeouts, GCInterval: defaultGCInterval},
		SYNProtection: defaultSYNProtection,
		DSR:           defaultDSR,
		Log:           Log{Level: defaultLogLevel, Format: defaultLogFormat},
		API:           API{Socket: DefaultAPISocket},
		State:         State{PinPath: DefaultPinPath},
		HA:            defaultHA,
		Sync:          defaultSync,
		BGP:           defaultBGP,
	}
}

// NewService returns a service with the defaults a file gives the fields
// it leaves out; FillDerived completes it once its own fields are set.
func NewService() Service {
	return Service{
		Protocol: defaultProtocol, Scheduler: defaultScheduler, OnBackendDown: KeepConnections,
		Forwarding: ForwardingFullNAT, ClientAddress: ClientAddressNone,
	}
}

// NewBackend returns a backend with the defaults a file gives the fields it
// leaves out; its port, if left 0, is the service's (see FillDerived).
func NewBackend() Backend {
	return Backend{Weight: defaultWeight}
}

func defaultService() Service { return NewService() }

func defaultBackend() Backend { return NewBackend() }

// FillDerived fills the defaults that depend on other fields: the name is
// the key, and a backend's port the service's. It also spells out an
// empty client_address or forwarding (written "" or cleared through the
// API) as none and fullnat, so views, diffs and the saved file show one
// value for each.
func (s *Service) FillDerived() {
	if s.ClientAddress == "" {
		s.ClientAddress = ClientAddressNone
	}
	if s.Forwarding == "" {
		s.Forwarding = ForwardingFullNAT
	}
	// Without a VIP the key would read "invalid IP:…"; leave the name
	// empty and let Validate report the missing VIP instead.
	if s.Name == "" && s.VIP.IsValid() {
		s.Name = s.Key().String()
	}
	// The decoder rejects an explicit port 0, so 0 here means absent.
	for j := range s.Backends {
		if s.Backends[j].Port == 0 {
			s.Backends[j].Port = s.Port
		}
	}
	if s.Fallback != nil && s.Fallback.Port == 0 {
		s.Fallback.Port = s.Port
	}
}

// applyDerivedDefaults fills the defaults that depend on other fields and
// so can only be set once the whole document is decoded.
func (c *Config) applyDerivedDefaults() {
	for i := range c.Services {
		c.Services[i].FillDerived()
	}
	c.HA.fillDerived(c.Interfaces, c.Sync.Peers)
}

// fillDerived fills the HA defaults that follow from other sections: the
// interface is the first of interfaces, and the cluster is this node and
// its sync peers. The decoder rejects an explicit nodes: 0, so 0 means
// absent.
func (h *HA) fillDerived(interfaces []string, peers []netip.AddrPort) {
	if h.Interface == "" && len(interfaces) > 0 {
		h.Interface = interfaces[0]
	}
	if h.Nodes == 0 {
		h.Nodes = derivedNodes(peers)
	}
}

// derivedNodes is the cluster size sync's peers imply. Beyond what a node
// id can number the peers are refused by Validate, which reports them
// rather than a cluster size no one wrote.
func derivedNodes(peers []netip.AddrPort) uint8 {
	return uint8(min(len(peers)+1, maxNodes))
}
