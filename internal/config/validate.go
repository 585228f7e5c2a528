package config

import (
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/xdplb/xdplb/internal/ident"
	"github.com/xdplb/xdplb/internal/maglev"
)

// Accepted values of the enumerated fields, in the order messages list
// them.
var (
	schedulers = []string{"rr", "wrr", "maglev", "sh", "lc", "wlc"}
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
	// clientAddresses are the values of a service's client_address; ""
	// counts as none.
	clientAddresses = []string{ClientAddressNone, ClientAddressTOA}
)

// Bounds that the decoder and the validator both enforce; keeping the
// message text in one place means a value out of range reads the same
// whichever of them catches it.
const (
	portBounds   = "(1-65535)"
	weightBounds = "(0-65535)"
	// maxWeight keeps weights within what the datapath's scheduler
	// tables are sized for.
	maxWeight = 65535

	// PersistenceBounds is the range of a service's persistence, as
	// messages give it; the API's requests say it the same way.
	PersistenceBounds = "(0 for none, or 1s to 24h)"

	minConntrackCapacity = 1024
	maxConntrackCapacity = 16 << 20
)

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// Validate checks c against every rule and returns all problems at once
// as an *Error, or nil. It expects defaults to be applied already (Parse
// does that), so zero values count as missing.
func (c *Config) Validate() error {
	var ps problems
	ps.interfaces(c.Interfaces)
	if _, err := ident.ParseXDPMode(string(c.XDPMode)); err != nil {
		ps.add("xdp_mode", "%v", err)
	}
	locals, localFamilies := ps.local(c.Local)
	ps.services(c.Services, locals, localFamilies)
	if n := c.Conntrack.Capacity; n < minConntrackCapacity || n > maxConntrackCapacity {
		ps.add("conntrack.capacity", "%d is out of range (%d-%d)", n, minConntrackCapacity, maxConntrackCapacity)
	}
	if !slices.Contains(logLevels, c.Log.Level) {
		ps.add("log.level", "%q is not a log level (accepted: %s)", c.Log.Level, join(logLevels))
	}
	for _, t := range []struct {
		name string
		v    time.Duration
	}{
		{"syn_sent", c.Conntrack.Timeouts.SynSent}, {"established", c.Conntrack.Timeouts.Established},
		{"fin_wait", c.Conntrack.Timeouts.FinWait}, {"close", c.Conntrack.Timeouts.Close},
		{"udp", c.Conntrack.Timeouts.UDP},
	} {
		if t.v < time.Second/100 {
			ps.add("conntrack.timeouts."+t.name, "%s is too short (at least 10ms)", t.v)
		}
	}
	if g := c.Conntrack.GCInterval; g < time.Second/100 || g > time.Hour {
		ps.add("conntrack.gc_interval", "%s is out of range (10ms to 1h)", g)
	}
	ps.synProtection(c.SYNProtection)
	ps.dsr(c.DSR, c.Services, c.Local.Ports)
	if p := c.State.PinPath; p != "" && !filepath.IsAbs(p) {
		ps.add("state.pin_path", "%q is not an absolute path", p)
	} else if p != "" && filepath.Clean(p) != p {
		// xdplb removes what it pinned there: the path it removes from
		// must be the one it means, with no "." or ".." to reinterpret.
		ps.add("state.pin_path", "%q is not a clean path (write %q)", p, filepath.Clean(p))
	}
	if l := c.Metrics.Listen; l != "" {
		if _, port, err := net.SplitHostPort(l); err != nil || port == "" {
			ps.add("metrics.listen", "%q is not host:port (for example 127.0.0.1:9540)", l)
		}
	}
	if !filepath.IsAbs(c.API.Socket) {
		ps.add("api.socket", "%q is not an absolute path", c.API.Socket)
	}
	if !slices.Contains(logFormats, c.Log.Format) {
		ps.add("log.format", "%q is not a log format (accepted: %s)", c.Log.Format, join(logFormats))
	}
	ps.ha(c)
	ps.bgp(c)
	ps.sync(c)
	return ps.err()
}

func (ps *problems) interfaces(names []string) {
	if len(names) == 0 {
		ps.add("interfaces", "at least one interface is required")
	}
	if len(names) > MaxInterfaces {
		ps.add("interfaces", "%d interfaces, more than the %d the datapath can be attached to", len(names), MaxInterfaces)
	}
	first := map[string]int{}
	for i, name := range names {
		p := index("interfaces", i)
		if why := ifnameProblem(name); why != "" {
			ps.add(p, "%q is not a valid interface name: %s", name, why)
			continue
		}
		if j, dup := first[name]; dup {
			ps.add(p, "%q is already listed at interfaces[%d]", name, j)
			continue
		}
		first[name] = i
	}
}

// ifnameProblem mirrors the kernel's dev_valid_name(), so a name that
// passes here is one the kernel could actually have given a device.
func ifnameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > 15: // IFNAMSIZ (16) including the terminating NUL
		return "longer than 15 characters"
	case name == "." || name == "..":
		return "reserved name"
	case strings.ContainsAny(name, "/:"):
		return "contains '/' or ':'"
	case strings.ContainsAny(name, " \t\n\v\f\r"):
		return "contains whitespace"
	case strings.ContainsFunc(name, unicode.IsControl):
		// The kernel would take it, but no listing or log could show it.
		return "contains a control character"
	}
	return ""
}

// local validates the SNAT side and returns the index of each local
// address, for the VIP overlap check, and which families they have.
func (ps *problems) local(l Local) (map[netip.Addr]int, map[string]bool) {
	if len(l.Addresses) == 0 {
		ps.add("local.addresses", "at least one local address is required")
	}
	families := ps.localFamilies(l.Addresses)
	locals := map[netip.Addr]int{}
	for i, a := range l.Addresses {
		p := index("local.addresses", i)
		if why := unicastProblem(a); why != "" {
			ps.add(p, "%s", why)
			continue
		}
		if j, dup := locals[a]; dup {
			ps.add(p, "%s is already listed at local.addresses[%d]", a, j)
			continue
		}
		locals[a] = i
	}
	if why := l.Ports.problem(); why != "" {
		ps.add("local.ports", "%s", why)
	}
	return locals, families
}

func (ps *problems) services(services []Service, locals map[netip.Addr]int, localFamilies map[string]bool) {
	if len(services) > MaxServices {
		ps.add("services", "%d services, more than the maximum of %d", len(services), MaxServices)
	}
	total := 0
	byKey := map[ident.Service]int{}
	byName := map[string]int{}
	for i, s := range services {
		p := index("services", i)
		total += len(s.Backends)
		ps.service(p, s, locals, localFamilies)

		// Only complete keys can be compared; incomplete ones have
		// already been reported above.
		if s.VIP.IsValid() && s.Port != 0 {
			if j, dup := byKey[s.Key()]; dup {
				ps.add(p, "%s duplicates services[%d] (same vip, port and protocol)", s.Key(), j)
			} else {
				byKey[s.Key()] = i
			}
		}
		// The default name is the key, which is no valid name of its own.
		if s.Name != "" && s.Name != s.Key().String() {
			if err := ident.ValidName(s.Name); err != nil {
				ps.add(field(p, "name"), "%v", err)
			}
		}
		if s.Name != "" {
			if j, dup := byName[s.Name]; dup {
				// Two unnamed duplicates share a defaulted name too;
				// the duplicate-service problem above says it already.
				if services[j].Key() != s.Key() {
					ps.add(field(p, "name"), "%q is already the name of services[%d]", s.Name, j)
				}
			} else {
				byName[s.Name] = i
			}
		}
	}
	if total > MaxBackends {
		ps.add("services", "%d backends in total, more than the maximum of %d", total, MaxBackends)
	}
	ps.ringSpace(services)
}

// ringSpace checks that every service's ring fits in the datapath's ring
// array, with room for the largest to be rebuilt beside itself (a new ring
// is written before the old one is freed).
func (ps *problems) ringSpace(services []Service) {
	var total, largest int
	for _, s := range services {
		n := ringUpperBound(s)
		total += n
		largest = max(largest, n)
	}
	if total+largest > RingSlots {
		ps.add("services", "the schedulers' rings need up to %d slots (plus %d to rebuild the largest), more than the %d available; "+
			"each maglev or sh service takes %d", total, largest, RingSlots, maglev.DefaultSize)
	}
}

// ringUpperBound is the most slots a service's ring can take.
func ringUpperBound(s Service) int {
	n := len(s.Backends) + 1 // the fallback, when it is in use
	switch s.Scheduler {
	case "maglev", "sh":
		return int(maglev.DefaultSize)
	case "wrr":
		var sum int
		for _, b := range s.Backends {
			sum += int(b.Weight)
		}
		return min(max(sum, 1), MaxWRRRing) + 1
	}
	return n
}

func (ps *problems) service(path string, s Service, locals map[netip.Addr]int, localFamilies map[string]bool) {
	ps.healthProblems(field(path, "health_check"), s.HealthCheck)
	for i, b := range s.Backends {
		ps.healthProblems(field(index(field(path, "backends"), i), "health_check"), b.HealthCheck)
	}
	switch s.OnBackendDown {
	case "", KeepConnections, ExpireConnections:
	default:
		ps.add(field(path, "on_backend_down"), "%q is neither %q nor %q", s.OnBackendDown, KeepConnections, ExpireConnections)
	}
	if f := s.Fallback; f != nil {
		if why := unicastProblem(f.Address); why != "" {
			ps.add(field(field(path, "fallback"), "address"), "%s", why)
		}
		for _, b := range s.Backends {
			if b.Address == f.Address && b.Port == f.Port {
				ps.add(field(path, "fallback"), "%s is also a backend of the service", netip.AddrPortFrom(f.Address, f.Port))
			}
		}
	}
	if why := unicastProblem(s.VIP); why != "" {
		ps.add(field(path, "vip"), "%s", why)
	} else if j, isLocal := locals[s.VIP]; isLocal {
		// Replies from backends come back to the local addresses; a VIP
		// among them would make the datapath mistake them for new
		// client connections.
		ps.add(field(path, "vip"), "%s is also a local address (local.addresses[%d])", s.VIP, j)
	} else {
		ps.serviceFamily(path, s, localFamilies)
	}
	if s.Port == 0 {
		ps.add(field(path, "port"), "missing (a port %s is required)", portBounds)
	}
	if !slices.Contains(ident.Protocols, s.Protocol) {
		ps.add(field(path, "protocol"), "%d is not a protocol (accepted: tcp, udp)", s.Protocol)
	}
	if s.Persistence != 0 && (s.Persistence < time.Second || s.Persistence > 24*time.Hour) {
		ps.add(field(path, "persistence"), "%s is out of range %s", s.Persistence, PersistenceBounds)
	}
	if bits := prefixBits(s.VIP); s.PersistenceNetmask > bits {
		ps.add(field(path, "persistence_netmask"), "/%d is not a prefix length of an %s vip (1-%d)", s.PersistenceNetmask, family(s.VIP), bits)
	} else if s.PersistenceNetmask != 0 && s.Persistence == 0 {
		ps.add(field(path, "persistence_netmask"), "has no effect without persistence; set persistence too, or remove it")
	}
	if !slices.Contains(schedulers, s.Scheduler) {
		ps.add(field(path, "scheduler"), "%q is not a scheduler (accepted: %s)", s.Scheduler, join(schedulers))
	}
	ps.forwarding(path, s)
	ps.clientAddress(field(path, "client_address"), s)

	bp := field(path, "backends")
	if len(s.Backends) > MaxBackendsPerService {
		ps.add(bp, "%d backends, more than the maximum of %d per service", len(s.Backends), MaxBackendsPerService)
	}
	first := map[netip.AddrPort]int{}
	for i, b := range s.Backends {
		p := index(bp, i)
		if why := unicastProblem(b.Address); why != "" {
			ps.add(field(p, "address"), "%s", why)
		}
		// With the service port missing, the backend port defaulted to
		// nothing; that is the service's problem, reported above.
		if b.Port == 0 && s.Port != 0 {
			ps.add(field(p, "port"), "missing (a port %s is required)", portBounds)
		}
		if b.Weight > maxWeight {
			ps.add(field(p, "weight"), "%d is not a weight %s", b.Weight, weightBounds)
		}
		if b.Address.IsValid() && b.Port != 0 {
			ap := netip.AddrPortFrom(b.Address, b.Port)
			if j, dup := first[ap]; dup {
				ps.add(p, "%s duplicates backends[%d]", ap, j)
			} else {
				first[ap] = i
			}
		}
	}
}

// clientAddress checks the client_address of s, at path.
func (ps *problems) clientAddress(path string, s Service) {
	switch s.ClientAddress {
	case "", ClientAddressNone:
	case ClientAddressTOA:
		switch {
		case s.IPv6():
			ps.add(path, "toa carries an IPv4 address, and the vip %s is IPv6: toa for IPv6 services is not supported yet; "+
				"set none or remove it", s.VIP)
		case s.DSR():
			ps.add(path, "toa is for forwarding fullnat: with %s the backend already sees the client's address "+
				"(the packet reaches it as the client sent it); set none or remove it", s.Forwarding)
		case s.Protocol == ident.UDP:
			ps.add(path, "toa is for tcp services: it carries the client's address in a TCP option, and UDP has no options "+
				"(a UDP backend sees its clients' addresses only with direct server return: forwarding dsr-l2, "+
				"dsr-ipip or dsr-gue); set none or remove it")
		}
	default:
		ps.add(path, "%q is not a client address mode (accepted: %s)", s.ClientAddress, join(clientAddresses))
	}
}

func join[T ~string](values []T) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
