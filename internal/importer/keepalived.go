package importer

import (
	"strings"
	"time"
)

// Keepalived imports the keepalived configuration at path (and the files
// it includes). The error is for a configuration that cannot be read at
// all: a file missing, a brace that does not match, an include cycle.
func Keepalived(path string) (*Result, error) {
	toks, findings, err := LoadKeepalived(path)
	if err != nil {
		return nil, err
	}
	nodes, err := Parse(toks)
	if err != nil {
		return nil, err
	}
	return mapKeepalived(path, nodes, findings)
}

// mapKeepalived maps a parsed configuration; findings are the loader's.
func mapKeepalived(source string, nodes []*Node, findings []Finding) (*Result, error) {
	m := &kaMapper{collector: newCollector("keepalived", source), groups: map[string]*Node{}}
	for _, f := range findings {
		m.unmapped(f.Pos, f.Keyword, "%s", f.Why)
	}
	for _, n := range nodes {
		if n.Key == "virtual_server_group" && len(n.Args) == 1 {
			m.groups[n.Args[0]] = n
		}
	}
	for _, n := range nodes {
		switch {
		case n.Key == "virtual_server":
			m.virtualServer(n)
		case n.Key == "virtual_server_group":
			if len(n.Args) != 1 {
				m.unmapped(n.Pos, n.Key, "expects one name, got %d words", len(n.Args))
			}
			// Otherwise it is read by the virtual servers naming it.
		case n.Key == "global_defs":
			m.globalDefs(n)
		case n.Key == "lvs_timeouts":
			m.timeouts(n)
		case strings.HasPrefix(n.Key, "vrrp_"):
			m.unmapped(n.Pos, n.Key, "%s", vrrpWhy)
		default:
			m.unknown(n, "at the top level")
		}
	}
	return m.finish()
}

const vrrpWhy = "VRRP is not imported: for failover use xdplb's own pair (ha.mode: vrrp, with sync) or keep " +
	"keepalived owning the addresses with ha.mode: external (docs/ha.md)"

// topLevelWhy explains the top-level keywords that are not about LVS.
var topLevelWhy = map[string]string{
	"static_ipaddress": "static addresses are the host's business; xdplb adds only its VIPs and local addresses",
	"static_routes":    "static routes are the host's business",
	"static_rules":     "static rules are the host's business",
	"SSL": "xdplb's https checks present no client certificate and do not verify the backend's " +
		"(insecure_skip_verify: true) unless told to",
	"linkbeat_interfaces": "part of VRRP, which xdplb does not run", "interface_up_down_delays": "part of VRRP, which xdplb does not run",
	"track_file": "part of VRRP, which xdplb does not run", "track_process": "part of VRRP, which xdplb does not run",
	"garp_group": "part of VRRP, which xdplb does not run", "bfd_instance": "xdplb does not run BFD",
}

// unknown reports a keyword the mapping does not know where it is.
func (m *kaMapper) unknown(n *Node, where string) {
	switch {
	case strings.HasPrefix(n.Key, "@"):
		m.unmapped(n.Pos, n.Key, "conditional lines (@config-id) are not supported: keep the lines meant for this "+
			"balancer without their @ prefix, delete the others, and import again")
	case strings.HasPrefix(n.Key, "$"):
		m.unmapped(n.Pos, n.Key, "parameter substitution ($NAME) is not supported: write the values out and import again")
	case topLevelWhy[n.Key] != "" && where == "at the top level":
		m.unmapped(n.Pos, n.Key, "%s", topLevelWhy[n.Key])
	default:
		m.unmapped(n.Pos, n.Key, "not a keyword xdplb knows %s; not imported", where)
	}
}

type kaMapper struct {
	*collector
	groups map[string]*Node
}

// globalDefs maps lvs_timeouts and reports the rest.
func (m *kaMapper) globalDefs(n *Node) {
	for _, c := range n.Children {
		switch {
		case c.Key == "lvs_timeouts":
			m.timeouts(c)
		case c.Key == "lvs_sync_daemon" || c.Key == "lvs_sync_daemon_interface":
			m.unmapped(c.Pos, c.Key, "connection sync between balancers is not in xdplb yet "+
				"(xdplb keeps its connections across its own restarts, see state.pin_path)")
		case c.Key == "lvs_flush" || c.Key == "lvs_flush_onstop":
			m.note(c.Pos, c.Key, "xdplb always runs what its file says and removes what it added when it stops")
		case c.Key == "router_id":
			m.unmapped(c.Pos, c.Key, "names the host in keepalived's e-mails and VRRP; xdplb has no equivalent")
		case strings.HasPrefix(c.Key, "notification_email") || strings.HasPrefix(c.Key, "smtp_"):
			m.unmapped(c.Pos, c.Key, "xdplb sends no e-mail alerts; alert on its Prometheus metrics (metrics.listen)")
		case strings.HasPrefix(c.Key, "vrrp_"):
			m.unmapped(c.Pos, c.Key, "%s", vrrpWhy)
		case strings.HasPrefix(c.Key, "@") || strings.HasPrefix(c.Key, "$"):
			m.unknown(c, "in global_defs")
		default:
			m.unmapped(c.Pos, c.Key, "global setting without an xdplb equivalent")
		}
	}
}

// timeouts maps lvs_timeouts [tcp S] [tcpfin S] [udp S].
func (m *kaMapper) timeouts(n *Node) {
	t := &m.res.Config.Conntrack.Timeouts
	fields := map[string]*time.Duration{"tcp": &t.Established, "tcpfin": &t.FinWait, "udp": &t.UDP}
	names := map[string]string{"tcp": "established", "tcpfin": "fin_wait", "udp": "udp"}
	if len(n.Args) == 0 || len(n.Args)%2 != 0 {
		m.unmapped(n.Pos, n.Key, "expects pairs such as tcp 900 tcpfin 120 udp 300, got %q", strings.Join(n.Args, " "))
		return
	}
	for i := 0; i+1 < len(n.Args); i += 2 {
		which, value := strings.ToLower(n.Args[i]), n.Args[i+1]
		dst, ok := fields[which]
		if !ok {
			m.unmapped(n.Pos, n.Key, "%q is not tcp, tcpfin or udp", n.Args[i])
			continue
		}
		d, err := timer(value)
		switch {
		case err != nil:
			m.unmapped(n.Pos, n.Key, "%s: %v", which, err)
		case d == 0:
			m.note(n.Pos, n.Key, "%s 0 leaves the timeout as it was; xdplb keeps its default conntrack.timeouts.%s (%v)",
				which, names[which], *dst)
		case d < 10*time.Millisecond:
			m.unmapped(n.Pos, n.Key, "%s %s is shorter than xdplb's 10ms minimum; the default (%v) is kept", which, value, *dst)
		default:
			*dst = d
		}
	}
}
