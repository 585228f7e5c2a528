package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/xdplb/xdplb/internal/ident"
)

// DSR is the node's side of direct server return: what services with
// forwarding dsr-ipip or dsr-gue need to tunnel their packets, and which
// other balancers' tunnelled packets this node takes in as a backend
// (co-located mode, where every server both balances and serves).
type DSR struct {
	// EncapSource is the outer source address of the IPIP and GUE
	// packets sent to backends; one of this node's IPv4 addresses.
	// Required when a service uses dsr-ipip or dsr-gue.
	EncapSource netip.Addr `yaml:"encap_source"`
	// GUEPort is the UDP destination port of GUE packets.
	GUEPort uint16 `yaml:"gue_port"`
	// DecapSources are the balancers (their encap_source) whose IPIP and
	// GUE packets this node decapsulates and passes to its own stack,
	// never balancing them again. Empty: none.
	DecapSources []netip.Addr `yaml:"decap_sources"`
}

// defaultDSR sends GUE to port 6080, where `xdplb backend-prep` opens the
// backends' GUE receivers unless told otherwise.
var defaultDSR = DSR{GUEPort: 6080}

// MaxDecapSources bounds dsr.decap_sources: the size of the datapath's
// allow-list (DECAP_MAX_SOURCES in bpf/lib/decap.h).
const MaxDecapSources = 1024

// forwardings are the values of a service's forwarding, in the order
// messages list them; "" counts as fullnat.
var forwardings = []string{ForwardingFullNAT, ForwardingDSRL2, ForwardingDSRIPIP, ForwardingDSRGUE}

// Tunnelled reports whether s sends its packets inside a tunnel, and so
// needs dsr.encap_source.
func (s Service) Tunnelled() bool {
	return s.Forwarding == ForwardingDSRIPIP || s.Forwarding == ForwardingDSRGUE
}

func (d *decoder) dsr(n *yaml.Node, path string, s *DSR) {
	d.mapping(n, path, fieldDecoders{
		"encap_source": func(v *yaml.Node, p string) {
			str, ok := d.str(v, p)
			switch {
			case !ok:
			case str == "": // unset, as yaml.Marshal writes an unset one
				s.EncapSource = netip.Addr{}
			default:
				a, err := netip.ParseAddr(str)
				if err != nil {
					d.add(p, "%q is not an IP address", str)
					return
				}
				s.EncapSource = a
			}
		},
		"gue_port": func(v *yaml.Node, p string) {
			if port, ok := d.port(v, p); ok {
				s.GUEPort = port
			}
		},
		"decap_sources": func(v *yaml.Node, p string) {
			s.DecapSources = nil
			d.list(v, p, func(item *yaml.Node, ip string) {
				a, _ := d.addr(item, ip)
				s.DecapSources = append(s.DecapSources, a)
			})
		},
	})
}

// forwarding checks the forwarding of s, at path, and the one thing the
// direct server return modes cannot do: change the port. (Nor can they
// carry TOA; clientAddress says so.)
func (ps *problems) forwarding(path string, s Service) {
	if s.Forwarding != "" && !slices.Contains(forwardings, s.Forwarding) {
		ps.add(field(path, "forwarding"), "%q is not a forwarding mode (accepted: %s)", s.Forwarding, join(forwardings))
		return
	}
	if s.DSR() && s.IPv6() {
		ps.add(field(path, "forwarding"), "%s: direct server return over IPv6 is not supported yet (the vip %s is IPv6); use %s",
			s.Forwarding, s.VIP, ForwardingFullNAT)
		return
	}
	if !s.DSR() || s.Port == 0 {
		return
	}
	samePort := func(p string, port uint16) {
		// Port 0 is reported as missing elsewhere.
		if port != 0 && port != s.Port {
			ps.add(field(p, "port"), "%d differs from the service's port %d: %s cannot rewrite ports "+
				"(the backend receives the packet as the client sent it); use port %d, or forwarding: %s",
				port, s.Port, s.Forwarding, s.Port, ForwardingFullNAT)
		}
	}
	for i, b := range s.Backends {
		samePort(index(field(path, "backends"), i), b.Port)
	}
	if s.Fallback != nil {
		samePort(field(path, "fallback"), s.Fallback.Port)
	}
}

// dsr checks the dsr section, and that it has what the services using
// it need.
func (ps *problems) dsr(d DSR, services []Service, ports PortRange) {
	if a := d.EncapSource; a.IsValid() {
		if why := unicastIPv4Problem(a); why != "" {
			ps.add("dsr.encap_source", "%s", why)
		}
	} else if users := tunnelUsers(services); users != "" {
		ps.add("dsr.encap_source", "missing (an IPv4 address of this node, the outer source of the tunnelled "+
			"packets, is required): %s", users)
	}
	if d.GUEPort == 0 {
		ps.add("dsr.gue_port", "0 is not a port %s", portBounds)
	}
	if n := len(d.DecapSources); n > MaxDecapSources {
		ps.add("dsr.decap_sources", "%d addresses, more than the maximum of %d", n, MaxDecapSources)
	}
	first := map[netip.Addr]int{}
	for i, a := range d.DecapSources {
		p := index("dsr.decap_sources", i)
		if why := unicastIPv4Problem(a); why != "" {
			ps.add(p, "%s", why)
			continue
		}
		if j, dup := first[a]; dup {
			ps.add(p, "%s is already listed at dsr.decap_sources[%d]", a, j)
			continue
		}
		first[a] = i
	}
	if len(d.DecapSources) > 0 && d.GUEPort != 0 {
		ps.guePortTaken(d.GUEPort, services, ports)
	}
}

// guePortTaken reports UDP traffic of the balancer's own on the GUE port:
// while decapsulation is on, every UDP packet to that port is taken for a
// tunnel first, and dropped unless it comes from a decap source.
func (ps *problems) guePortTaken(port uint16, services []Service, ports PortRange) {
	for i, s := range services {
		if s.Protocol == ident.UDP && s.Port == port {
			ps.add(field(index("services", i), "port"), "%d is dsr.gue_port, where this node takes UDP for GUE tunnels "+
				"(dsr.decap_sources is set): use another port for the service, or another dsr.gue_port", port)
		}
	}
	if ports.Min <= port && port <= ports.Max {
		ps.add("local.ports", "%s holds dsr.gue_port %d, where this node takes UDP for GUE tunnels "+
			"(dsr.decap_sources is set): UDP replies to that local port would be taken for tunnels", ports, port)
	}
}

// tunnelUsers names the services that tunnel their packets, for a
// message: "services[2] (web) uses dsr-ipip", "services[0] (a) uses
// dsr-gue and services[3] (b) uses dsr-ipip"; "" if none does.
func tunnelUsers(services []Service) string {
	var users []string
	for i, s := range services {
		if s.Tunnelled() {
			who := index("services", i)
			if s.Name != "" {
				who += " (" + s.Name + ")"
			}
			users = append(users, fmt.Sprintf("%s uses %s", who, s.Forwarding))
		}
	}
	switch len(users) {
	case 0:
		return ""
	case 1:
		return users[0]
	}
	return strings.Join(users[:len(users)-1], ", ") + " and " + users[len(users)-1]
}

// dsrSection renders the dsr section of c with the fields that differ
// from their defaults.
func dsrSection(c *Config) *yaml.Node {
	d, dd := c.DSR, defaultDSR
	m := mapping()
	setIf(m, "encap_source", d.EncapSource != dd.EncapSource, d.EncapSource.String())
	setIf(m, "gue_port", d.GUEPort != dd.GUEPort, strconv.FormatUint(uint64(d.GUEPort), 10))
	if len(d.DecapSources) > 0 {
		addrs := make([]string, len(d.DecapSources))
		for i, a := range d.DecapSources {
			addrs[i] = a.String()
		}
		set(m, "decap_sources", flow(addrs))
	}
	return m
}
