package importer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/xdplb/xdplb/internal/config"
)

// method is an LVS forwarding method as xdplb maps it, and where it was
// read.
type method struct {
	forwarding string // config.Forwarding*
	guePort    uint16 // dsr-gue: the port given; 0 if none
	pos        Pos
	keyword    string
}

// fullNAT is what NAT, FNAT and every method xdplb cannot map become.
func fullNAT(pos Pos, keyword string) method {
	return method{forwarding: config.ForwardingFullNAT, pos: pos, keyword: keyword}
}

// same says whether m and o forward the same way.
func (m method) same(o method) bool {
	return m.forwarding == o.forwarding && m.guePort == o.guePort
}

func (m method) String() string {
	if m.forwarding == config.ForwardingDSRGUE && m.guePort != 0 {
		return fmt.Sprintf("%s to port %d", m.forwarding, m.guePort)
	}
	return m.forwarding
}

func (m method) dsr() bool { return (config.Service{Forwarding: m.forwarding}).DSR() }

// natNote is how Full-NAT differs from IPVS's NAT.
const natNote = "imported as forwarding fullnat: backends see connections from local.addresses, not from the " +
	"clients, and need no route back through the balancer"

// oneMethodWhy is why a service's backends cannot be forwarded in
// different ways.
const oneMethodWhy = "xdplb has one forwarding mode per service, for all its backends and its fallback"

// tunnel maps an IPVS tunnel of type typ (ipip, gue or gre; "" is ipip)
// with port (0: none given) and checksum option csum ("" if none). why
// says what could not be mapped, note what xdplb does differently.
func tunnel(typ string, port uint16, csum string) (m method, why, note string) {
	m.forwarding = config.ForwardingDSRIPIP
	switch strings.ToLower(typ) {
	case "", "ipip":
		if port != 0 {
			why = "a port is for GUE tunnels; an IPIP tunnel has none, so it was ignored"
		}
	case "gue":
		m.forwarding, m.guePort = config.ForwardingDSRGUE, port
		if csum == "csum" || csum == "remcsum" {
			note = fmt.Sprintf("xdplb sends GUE packets without a UDP checksum (%s is not supported); "+
				"the inner packet keeps its own, and Linux's GUE receiver (ip fou add port N gue) takes them", csum)
		}
	case "gre":
		m.forwarding = config.ForwardingFullNAT
		why = "GRE tunnels are not supported: xdplb tunnels with IPIP (forwarding dsr-ipip) or GUE (dsr-gue); imported as fullnat"
	default:
		m.forwarding = config.ForwardingFullNAT
		why = fmt.Sprintf("%q is not a tunnel type (ipip, gue or gre); imported as fullnat", typ)
	}
	return m, why, note
}

// guePort makes port, read at pos, dsr.gue_port: one port for every
// service, so a second GUE service with another port is reported.
func (c *collector) guePort(pos Pos, keyword string, port uint16) {
	cur := &c.res.Config.DSR.GUEPort
	switch {
	case port == 0:
		c.unmapped(pos, keyword, "GUE without a port: xdplb sends GUE packets to dsr.gue_port (%d)", *cur)
	case c.gueAt == nil:
		*cur, c.gueAt = port, &pos
	case port != *cur:
		c.unmapped(pos, keyword, "GUE port %d: xdplb sends the GUE packets of every service to one port, "+
			"dsr.gue_port %d (from %s); this service's go there too", port, *cur, *c.gueAt)
	}
}

// setForwarding gives s the forwarding m, and the GUE port a dsr-gue one
// asks for.
func (c *collector) setForwarding(s *config.Service, m method) {
	s.Forwarding = m.forwarding
	if m.forwarding == config.ForwardingDSRGUE {
		c.guePort(m.pos, m.keyword, m.guePort)
	}
}

// dsrPort moves a backend of a DSR service on servicePort that names
// another port to the service's: IPVS leaves the packet's port as the
// client sent it with DR and TUN too, whatever the real server's says.
func (c *collector) dsrPort(pos Pos, keyword string, b *config.Backend, servicePort uint16) {
	if b.Port == 0 || b.Port == servicePort {
		return
	}
	c.note(pos, keyword, "with DR and TUN the packet keeps the port the client sent it to: the backend "+
		"%s is imported on the service's port %d (where it receives the traffic, and where xdplb checks it), not %d",
		b.Address, servicePort, b.Port)
	b.Port = servicePort
}

// tunnelled says whether a service of c tunnels its packets, and so
// needs dsr.encap_source.
func tunnelled(c *config.Config) bool {
	return slices.ContainsFunc(c.Services, config.Service.Tunnelled)
}

// kaMethod maps lb_kind or lvs_method n: NAT, DR, TUN [type ipip|gue|gre]
// [port N] [nocsum|csum|remcsum], or FNAT (a keepalived patched for
// Full-NAT).
func (m *kaMapper) kaMethod(n *Node) method {
	full := fullNAT(n.Pos, n.Key)
	if !m.nargs(n, 1, 8) {
		return full
	}
	switch kind := strings.ToUpper(n.Args[0]); kind {
	case "FNAT":
		return full
	case "NAT":
		m.note(n.Pos, n.Key, "%s", natNote)
		return full
	case "DR":
		if len(n.Args) > 1 {
			m.unmapped(n.Pos, n.Key, "DR takes no options; %q was ignored", strings.Join(n.Args[1:], " "))
		}
		return method{forwarding: config.ForwardingDSRL2, pos: n.Pos, keyword: n.Key}
	case "TUN":
		var typ, csum string
		var p uint16
		args := n.Args[1:]
		for i := 0; i < len(args); i++ {
			switch a := strings.ToLower(args[i]); {
			case (a == "type" || a == "port") && i+1 == len(args):
				m.unmapped(n.Pos, n.Key, "TUN %s expects a value", a)
			case a == "type":
				i++
				typ = args[i]
			case a == "port":
				i++
				v, err := port(args[i])
				if err != nil {
					m.unmapped(n.Pos, n.Key, "TUN port: %v", err)
					continue
				}
				p = v
			case a == "nocsum" || a == "csum" || a == "remcsum":
				csum = a
			default:
				m.unmapped(n.Pos, n.Key, "%q is not a TUN option (type, port, nocsum, csum, remcsum); ignored", args[i])
			}
		}
		t, why, note := tunnel(typ, p, csum)
		if why != "" {
			m.unmapped(n.Pos, n.Key, "%s", why)
		}
		if note != "" {
			m.note(n.Pos, n.Key, "%s", note)
		}
		t.pos, t.keyword = n.Pos, n.Key
		return t
	default:
		m.unmapped(n.Pos, n.Key, "%q is not NAT, DR or TUN; imported as fullnat", n.Args[0])
		return full
	}
}

// kaForwarding gives s (read from the virtual server at vsPos) one
// forwarding from its virtual server's method vs (nil: keepalived's
// default, NAT), its real servers' own (nil where they have none, index-
// aligned with s.Backends) and its sorry server's (sorry, nil: the virtual
// server's; sorryAt is the sorry server). Real servers that differ cannot
// be mapped: the virtual server's method is used for all of them. It
// reports whether the sorry server, if there is one, forwards as the
// backends do.
func (m *kaMapper) kaForwarding(s *config.Service, vsPos Pos, vs *method, rs []*method, sorry *method, sorryAt *Node) bool {
	base := fullNAT(vsPos, "virtual_server")
	if vs != nil {
		base = *vs
	}
	chosen, mixed := base, false
	for i, own := range rs {
		eff := base
		if own != nil {
			eff = *own
		}
		if i == 0 {
			chosen = eff
		} else if !eff.same(chosen) {
			mixed = true
		}
	}
	if mixed {
		chosen = base
		for _, own := range rs {
			if own != nil && !own.same(base) {
				m.unmapped(own.pos, own.keyword, "this real server's forwarding (%s) differs from its virtual server's (%s): "+
					"%s; imported as %s", own, base, oneMethodWhy, base)
			}
		}
	}
	m.setForwarding(s, chosen)
	if s.Fallback == nil {
		return false
	}
	fb := base
	fb.pos, fb.keyword = sorryAt.Pos, sorryAt.Key
	if sorry != nil {
		fb = *sorry
	}
	if !fb.same(chosen) {
		m.unmapped(fb.pos, fb.keyword, "the sorry server's forwarding (%s) differs from its backends' (%s): %s; "+
			"imported as %s", fb, chosen, oneMethodWhy, chosen)
		return false
	}
	return true
}
