package importer

import (
	"fmt"
	"math/bits"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/ident"
)

// virtualServer maps one virtual_server block: one service, or one per
// entry of the group it names.
func (m *kaMapper) virtualServer(n *Node) {
	var targets []netip.AddrPort
	var at []Pos
	switch {
	case len(n.Args) >= 1 && n.Args[0] == "fwmark":
		m.unmapped(n.Pos, n.Key, "firewall-mark services are not supported: xdplb matches VIP, port and protocol; "+
			"write one service per VIP and port")
		return
	case len(n.Args) >= 1 && n.Args[0] == "group":
		if len(n.Args) != 2 {
			m.unmapped(n.Pos, n.Key, "group expects one name")
			return
		}
		g, ok := m.groups[n.Args[1]]
		if !ok {
			m.unmapped(n.Pos, n.Key, "no virtual_server_group %s is defined; not imported", n.Args[1])
			return
		}
		targets, at = m.group(g)
	case len(n.Args) == 1:
		m.unmapped(n.Pos, n.Key, "a virtual server without a port (every port, persistent) is not supported: "+
			"xdplb balances one port per service; not imported")
		return
	case len(n.Args) == 2:
		vip, err := ipv4(n.Args[0])
		if err != nil {
			m.unmapped(n.Pos, n.Key, "%v; not imported", err)
			return
		}
		p, err := port(n.Args[1])
		if err != nil {
			m.unmapped(n.Pos, n.Key, "%v; not imported", err)
			return
		}
		targets, at = []netip.AddrPort{netip.AddrPortFrom(vip, p)}, []Pos{n.Pos}
	default:
		m.unmapped(n.Pos, n.Key, "expects IP PORT, fwmark N or group NAME, got %q; not imported", strings.Join(n.Args, " "))
		return
	}
	for i, t := range targets {
		m.service(n, t, at[i], len(targets) == 1)
	}
}

// group reads the entries of a virtual_server_group: each IP PORT is a
// service; ranges, entries without a port and fwmarks are reported.
func (m *kaMapper) group(g *Node) ([]netip.AddrPort, []Pos) {
	var out []netip.AddrPort
	var at []Pos
	for _, e := range g.Children {
		if e.Key == "fwmark" {
			m.unmapped(e.Pos, e.Key, "firewall-mark services are not supported: xdplb matches VIP, port and protocol")
			continue
		}
		if len(e.Args) != 1 || e.Block {
			m.unmapped(e.Pos, e.Key, "a group entry must be IP PORT; not imported")
			continue
		}
		vip, err := ipv4(e.Key)
		if err != nil {
			why := err.Error()
			if strings.ContainsAny(e.Key, "-/") {
				why = "address ranges are not supported: list the addresses one by one"
			}
			m.unmapped(e.Pos, e.Key, "%s; not imported", why)
			continue
		}
		p, err := port(e.Args[0])
		if err != nil {
			m.unmapped(e.Pos, e.Key, "%v; not imported", err)
			continue
		}
		out, at = append(out, netip.AddrPortFrom(vip, p)), append(at, e.Pos)
	}
	return out, at
}

// settings are the checker options a virtual server gives its real
// servers and a real server its checkers.
type settings struct {
	interval, timeout time.Duration // 0: keepalived's default
	retry             int           // -1: the checker's default
	alpha             bool
	host              string
}

// keepalived's defaults.
const (
	kaDelayLoop          = 60 * time.Second
	kaConnectTimeout     = 5 * time.Second
	kaPersistenceTimeout = 360 * time.Second
)

// setting applies a checker option of n to s and says whether n was one.
func (m *kaMapper) setting(n *Node, s *settings) bool {
	switch n.Key {
	case "delay_loop", "connect_timeout", "delay_before_retry", "warmup":
		if !m.nargs(n, 1, 1) {
			return true
		}
		d, err := timer(n.Args[0])
		if err != nil {
			m.unmapped(n.Pos, n.Key, "%v", err)
			return true
		}
		switch n.Key {
		case "delay_loop":
			if d < health.MinInterval {
				m.unmapped(n.Pos, n.Key, "%v is shorter than xdplb's minimum interval (%v); not imported", d, health.MinInterval)
				return true
			}
			s.interval = d
		case "connect_timeout":
			if d < health.MinTimeout {
				m.unmapped(n.Pos, n.Key, "%v is shorter than xdplb's minimum timeout (%v); not imported", d, health.MinTimeout)
				return true
			}
			s.timeout = d
		case "delay_before_retry":
			m.note(n.Pos, n.Key, "xdplb probes at the same interval after a failure; "+
				"a backend is taken out after fall (retry + 1) failed probes in a row, one interval apart")
		case "warmup":
			m.note(n.Pos, n.Key, "xdplb spreads the first probes at random over one interval")
		}
	case "retry", "nb_get_retry":
		if !m.nargs(n, 1, 1) {
			return true
		}
		r, err := count(n.Args[0])
		if err != nil {
			m.unmapped(n.Pos, n.Key, "%v", err)
			return true
		}
		s.retry = r
	case "alpha":
		on, err := boolean(n.Args)
		if err != nil {
			m.unmapped(n.Pos, n.Key, "%v", err)
			return true
		}
		s.alpha = on
	case "virtualhost":
		if m.nargs(n, 1, 1) {
			s.host = n.Args[0]
		}
	default:
		return false
	}
	return true
}

// nargs checks that n has min to max values, reporting it otherwise.
func (m *kaMapper) nargs(n *Node, min, max int) bool {
	if len(n.Args) < min || len(n.Args) > max {
		want := fmt.Sprintf("%d to %d values", min, max)
		switch {
		case min == 1 && max == 1:
			want = "one value"
		case min == max:
			want = fmt.Sprintf("%d values", min)
		}
		m.unmapped(n.Pos, n.Key, "expects %s, got %q; not imported", want, strings.Join(n.Args, " "))
		return false
	}
	return true
}

// vsWhy explains the virtual server keywords xdplb has no equivalent of.
var vsWhy = map[string]string{
	"persistence_engine":   "xdplb has no persistence engines",
	"sorry_server_inhibit": "xdplb does not health check the fallback",
	"quorum":               "xdplb has no quorum: the fallback takes over when no backend is up",
	"quorum_up":            "xdplb runs no scripts on quorum changes",
	"quorum_down":          "xdplb runs no scripts on quorum changes",
	"hysteresis":           "xdplb has no quorum",
	"omega":                "xdplb runs no notify scripts",
	"ha_suspend":           "xdplb checks backends whether or not the VIP is up (VRRP is separate)",
	"smtp_alert":           "xdplb sends no e-mail alerts; alert on its Prometheus metrics",
	"flag-1":               "scheduler flags have no xdplb equivalent",
	"flag-2":               "scheduler flags have no xdplb equivalent",
	"flag-3":               "scheduler flags have no xdplb equivalent",
	"sh-port":              "xdplb's sh hashes the client address only, never the port",
	"ops":                  "one-packet scheduling is not supported: xdplb keeps a flow per UDP client address and port",
}

// service maps the body of virtual server n for one VIP:port.
func (m *kaMapper) service(n *Node, vip netip.AddrPort, at Pos, single bool) {
	s := config.NewService()
	s.VIP, s.Port = vip.Addr(), vip.Port()
	d := settings{retry: -1}
	var servers []*Node
	mhPort := false
	var schedAt *Node // the scheduler keyword, if it was mapped
	var sorryAt *Node // the sorry server, if one was mapped
	var vsMethod, sorryMethod *method
	for _, c := range n.Children {
		if m.setting(c, &d) {
			continue
		}
		switch c.Key {
		case "real_server":
			servers = append(servers, c)
		case "lb_algo", "lvs_sched":
			if !m.nargs(c, 1, 1) {
				continue
			}
			sched, err := scheduler(c.Args[0])
			if err != nil {
				m.unmapped(c.Pos, c.Key, "%v", err)
			}
			s.Scheduler = sched
			if err == nil {
				schedAt = c
			}
		case "mh-port":
			mhPort = true
		case "sh-fallback", "mh-fallback":
			m.note(c.Pos, c.Key, "xdplb's hash rings leave out backends that are down, so a client whose backend "+
				"is down gets another one anyway")
		case "lb_kind", "lvs_method":
			f := m.kaMethod(c)
			vsMethod = &f
		case "sorry_server_lvs_method":
			f := m.kaMethod(c)
			sorryMethod = &f
		case "protocol":
			if !m.nargs(c, 1, 1) {
				continue
			}
			p, err := ident.ParseProtocol(c.Args[0])
			if err != nil {
				m.unmapped(c.Pos, c.Key, "%s is not supported: xdplb balances TCP and UDP; the virtual server was not imported", c.Args[0])
				return
			}
			s.Protocol = p
		case "persistence_granularity":
			if !m.nargs(c, 1, 1) {
				continue
			}
			bits, err := netmaskBits(c.Args[0])
			if err != nil {
				m.unmapped(c.Pos, c.Key, "%v", err)
				continue
			}
			s.PersistenceNetmask = bits
		case "persistence_timeout":
			if !m.nargs(c, 0, 1) {
				continue
			}
			if len(c.Args) == 0 {
				s.Persistence = kaPersistenceTimeout
				continue
			}
			secs, err := count(c.Args[0])
			if err != nil {
				m.unmapped(c.Pos, c.Key, "%v", err)
				continue
			}
			if secs > 86400 {
				m.unmapped(c.Pos, c.Key, "%d s is longer than xdplb's 24h; 24h is used", secs)
				secs = 86400
			}
			s.Persistence = time.Duration(secs) * time.Second
		case "sorry_server":
			if !m.nargs(c, 1, 2) {
				continue
			}
			fb, err := m.backendAddr(c)
			if err != nil {
				m.unmapped(c.Pos, c.Key, "%v; no fallback was imported", err)
				continue
			}
			s.Fallback, sorryAt = &fb, c
		case "inhibit_on_failure":
			m.note(c.Pos, c.Key, "xdplb takes a backend that fails its checks out of the ring (as weight 0) "+
				"and keeps its connections (on_backend_down: keep) whether or not this is set")
		case "snmp_name":
			if !m.nargs(c, 1, 1) {
				continue
			}
			if err := ident.ValidName(c.Args[0]); err != nil || !single {
				why := "the virtual server stands for several services, which cannot share a name"
				if err != nil {
					why = err.Error()
				}
				m.unmapped(c.Pos, c.Key, "not used as the service's name: %s", why)
				continue
			}
			s.Name = c.Args[0]
		case "ip_family":
			if !m.nargs(c, 1, 1) || c.Args[0] == "inet" {
				continue
			}
			m.unmapped(c.Pos, c.Key, "xdplb does not support IPv6 yet")
		default:
			if why, ok := vsWhy[c.Key]; ok {
				m.unmapped(c.Pos, c.Key, "%s", why)
				continue
			}
			m.unknown(c, "in virtual_server")
		}
	}
	if schedAt != nil {
		if note := schedulerNote(schedAt.Args[0], mhPort); note != "" {
			m.note(schedAt.Pos, schedAt.Key, "%s", note)
		}
	}
	var specs []*health.Spec
	var rsMethods []*method
	for _, rs := range servers {
		b, own, ok := m.realServer(rs, s.Port, d, vsMethod)
		if !ok {
			continue
		}
		s.Backends = append(s.Backends, b)
		specs = append(specs, b.HealthCheck)
		rsMethods = append(rsMethods, own)
	}
	if m.kaForwarding(&s, at, vsMethod, rsMethods, sorryMethod, sorryAt) && s.DSR() {
		m.dsrPort(sorryAt.Pos, sorryAt.Key, s.Fallback, s.Port)
	}
	// One check for all: the service's.
	if len(specs) > 0 && specs[0] != nil {
		same := true
		for _, sp := range specs[1:] {
			same = same && reflect.DeepEqual(sp, specs[0])
		}
		if same {
			s.HealthCheck = specs[0]
			for i := range s.Backends {
				s.Backends[i].HealthCheck = nil
			}
		}
	}
	m.collector.service(at, n.Key, s)
}

// backendAddr reads IP [PORT] from n (a real or sorry server); the port
// is 0 (the service's) if absent.
func (m *kaMapper) backendAddr(n *Node) (config.Backend, error) {
	b := config.NewBackend()
	a, err := ipv4(n.Args[0])
	if err != nil {
		return b, err
	}
	b.Address = a
	if len(n.Args) == 2 {
		if b.Port, err = port(n.Args[1]); err != nil {
			return b, err
		}
	}
	return b, nil
}

// rsWhy explains the real server keywords xdplb has no equivalent of.
var rsWhy = map[string]string{
	"notify_up":   "xdplb runs no notify scripts; watch its logs or metrics",
	"notify_down": "xdplb runs no notify scripts; watch its logs or metrics",
	"uthreshold":  "xdplb has no connection limits per backend",
	"lthreshold":  "xdplb has no connection limits per backend",
	"smtp_alert":  "xdplb sends no e-mail alerts; alert on its Prometheus metrics",
	"snmp_name":   "xdplb has no names for backends",
}

// realServer maps one real_server block of a service on servicePort
// whose virtual server forwards with vs (nil: NAT); own is the real
// server's own method, if it has one.
func (m *kaMapper) realServer(n *Node, servicePort uint16, d settings, vs *method) (b config.Backend, own *method, ok bool) {
	if !m.nargs(n, 1, 2) {
		return config.Backend{}, nil, false
	}
	b, err := m.backendAddr(n)
	if err != nil {
		m.unmapped(n.Pos, n.Key, "%v; not imported", err)
		return b, nil, false
	}
	var checks []*Node
	for _, c := range n.Children {
		if m.setting(c, &d) {
			continue
		}
		switch {
		case c.Key == "weight":
			if !m.nargs(c, 1, 1) {
				continue
			}
			w, err := count(c.Args[0])
			switch {
			case err != nil:
				m.unmapped(c.Pos, c.Key, "%v; the weight stays 1", err)
			case w > 65535:
				m.unmapped(c.Pos, c.Key, "%d is more than xdplb's 65535; 65535 is used", w)
				b.Weight = 65535
			default:
				b.Weight = uint32(w)
			}
		case c.Key == "lvs_method" || c.Key == "lb_kind":
			f := m.kaMethod(c)
			own = &f
		case c.Key == "inhibit_on_failure":
			m.note(c.Pos, c.Key, "xdplb takes a backend that fails its checks out of the ring (as weight 0) "+
				"and keeps its connections (on_backend_down: keep) whether or not this is set")
		case checkKinds[c.Key] != "" || otherChecks[c.Key] != "":
			checks = append(checks, c)
		case rsWhy[c.Key] != "":
			m.unmapped(c.Pos, c.Key, "%s", rsWhy[c.Key])
		default:
			m.unknown(c, "in real_server")
		}
	}
	eff := own
	if eff == nil {
		eff = vs
	}
	if eff != nil && eff.dsr() {
		m.dsrPort(n.Pos, n.Key, &b, servicePort)
	}
	p := b.Port
	if p == 0 {
		p = servicePort
	}
	var kept *Node
	for _, c := range checks {
		if why := otherChecks[c.Key]; why != "" {
			m.unmapped(c.Pos, c.Key, "%s", why)
			continue
		}
		if kept != nil {
			m.unmapped(c.Pos, c.Key, "xdplb runs one check per backend; the %s at %s is kept", kept.Key, kept.Pos)
			continue
		}
		if spec := m.check(c, d, b.Address, p); spec != nil {
			kept, b.HealthCheck = c, spec
		}
	}
	return b, own, true
}

// netmaskBits reads a persistence netmask as keepalived and ipvsadm take
// it (255.255.255.0, or a prefix length) into a prefix length.
func netmaskBits(s string) (uint8, error) {
	if n, err := strconv.Atoi(strings.TrimPrefix(s, "/")); err == nil && n >= 1 && n <= 32 {
		return uint8(n), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("%q is not an IPv4 netmask", s)
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := uint8(bits.OnesCount32(m))
	if ones == 0 || m != ^uint32(0)<<(32-ones) {
		return 0, fmt.Errorf("%q is not a contiguous netmask", s)
	}
	return ones, nil
}
