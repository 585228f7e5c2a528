package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/ident"
)

// Change is one difference between two configurations, as an operator
// reads it: what (a service, a backend of one, or a setting), which field,
// and the value before and after ("" when it did not exist).
type Change struct {
	// What is "service NAME (VIP:PORT/PROTO)", "backend IP:PORT of
	// service NAME" or a top-level setting such as "local".
	What  string `json:"what"`
	Field string `json:"field,omitempty"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
	// Restart is true for a setting only a restart applies; a reload
	// leaves it as it runs.
	Restart bool `json:"needs_restart,omitempty"`
}

func (c Change) String() string {
	switch {
	case c.Field == "" && c.Old == "":
		return fmt.Sprintf("%s added", c.What)
	case c.Field == "" && c.New == "":
		return fmt.Sprintf("%s removed", c.What)
	}
	s := fmt.Sprintf("%s: %s %s -> %s", c.What, c.Field, orNone(c.Old), orNone(c.New))
	if c.Field == "" {
		s = fmt.Sprintf("%s: %s -> %s", c.What, orNone(c.Old), orNone(c.New))
	}
	if c.Restart {
		s += " (needs a restart)"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Diff lists what changes from old to new: services and backends added
// and removed, and every field that changed, in the order of new's file
// (removals first). Settings outside services are compared as wholes.
func Diff(old, new *Config) []Change {
	var out []Change
	for _, f := range []struct {
		name     string
		old, new any
		restart  bool
	}{
		{"interfaces", old.Interfaces, new.Interfaces, true},
		{"xdp_mode", old.XDPMode, new.XDPMode, true},
		{"local.addresses", old.Local.Addresses, new.Local.Addresses, false},
		{"local.ports", old.Local.Ports, new.Local.Ports, false},
		{"conntrack.capacity", old.Conntrack.Capacity, new.Conntrack.Capacity, true},
		{"conntrack.gc_interval", old.Conntrack.GCInterval, new.Conntrack.GCInterval, true},
		{"conntrack.timeouts.syn_sent", old.Conntrack.Timeouts.SynSent, new.Conntrack.Timeouts.SynSent, false},
		{"conntrack.timeouts.established", old.Conntrack.Timeouts.Established, new.Conntrack.Timeouts.Established, false},
		{"conntrack.timeouts.fin_wait", old.Conntrack.Timeouts.FinWait, new.Conntrack.Timeouts.FinWait, false},
		{"conntrack.timeouts.close", old.Conntrack.Timeouts.Close, new.Conntrack.Timeouts.Close, false},
		{"conntrack.timeouts.udp", old.Conntrack.Timeouts.UDP, new.Conntrack.Timeouts.UDP, false},
		// Settings of the running datapath, which a reload can change.
		{"syn_protection.mode", old.SYNProtection.Mode, new.SYNProtection.Mode, false},
		{"syn_protection.threshold", old.SYNProtection.Threshold, new.SYNProtection.Threshold, false},
		{"syn_protection.verified_for", old.SYNProtection.VerifiedFor, new.SYNProtection.VerifiedFor, false},
		{"syn_protection.half_open.max", old.SYNProtection.HalfOpen.Max, new.SYNProtection.HalfOpen.Max, false},
		{"syn_protection.half_open.max_per_service", old.SYNProtection.HalfOpen.MaxPerService, new.SYNProtection.HalfOpen.MaxPerService, false},
		{"syn_protection.half_open.action", old.SYNProtection.HalfOpen.Action, new.SYNProtection.HalfOpen.Action, false},
		{"dsr.encap_source", old.DSR.EncapSource, new.DSR.EncapSource, false},
		{"dsr.gue_port", old.DSR.GUEPort, new.DSR.GUEPort, false},
		{"dsr.decap_sources", old.DSR.DecapSources, new.DSR.DecapSources, false},
		{"log.level", old.Log.Level, new.Log.Level, false},
		{"log.format", old.Log.Format, new.Log.Format, true},
		{"api.socket", old.API.Socket, new.API.Socket, true},
		{"state.pin_path", old.State.PinPath, new.State.PinPath, true},
		{"metrics.listen", old.Metrics.Listen, new.Metrics.Listen, true},
		// The daemon starts the election and the sync channel once; a
		// SIGUSR2 hand-over starts them anew.
		{"ha.mode", old.HA.Mode, new.HA.Mode, true},
		{"ha.node_id", old.HA.NodeID, new.HA.NodeID, true},
		{"ha.nodes", old.HA.Nodes, new.HA.Nodes, true},
		{"ha.interface", old.HA.Interface, new.HA.Interface, true},
		{"ha.priority", old.HA.Priority, new.HA.Priority, true},
		{"ha.advert_interval", old.HA.AdvertInterval, new.HA.AdvertInterval, true},
		{"ha.preempt", old.HA.Preempt, new.HA.Preempt, true},
		{"ha.preempt_delay", old.HA.PreemptDelay, new.HA.PreemptDelay, true},
		{"ha.garp.repeat", old.HA.GARP.Repeat, new.HA.GARP.Repeat, true},
		{"ha.garp.delay", old.HA.GARP.Delay, new.HA.GARP.Delay, true},
		{"sync.listen", old.Sync.Listen, new.Sync.Listen, true},
		{"sync.peers", old.Sync.Peers, new.Sync.Peers, true},
		{"sync.key_file", old.Sync.KeyFile, new.Sync.KeyFile, true},
		{"sync.batch_interval", old.Sync.BatchInterval, new.Sync.BatchInterval, true},
		{"sync.refresh", old.Sync.Refresh, new.Sync.Refresh, true},
		{"sync.bulk_timeout", old.Sync.BulkTimeout, new.Sync.BulkTimeout, true},
		{"sync.cluster_id", old.Sync.ClusterID, new.Sync.ClusterID, true},
		{"bgp.asn", old.BGP.ASN, new.BGP.ASN, true},
		{"bgp.router_id", old.BGP.RouterID, new.BGP.RouterID, true},
		{"bgp.listen_port", old.BGP.ListenPort, new.BGP.ListenPort, true},
		{"bgp.peers", old.BGP.Peers, new.BGP.Peers, true},
		{"bgp.communities", old.BGP.Communities, new.BGP.Communities, true},
		{"bgp.graceful_restart", old.BGP.GracefulRestart, new.BGP.GracefulRestart, true},
		{"bgp.restart_time", old.BGP.RestartTime, new.BGP.RestartTime, true},
		{"bgp.shutdown_wait", old.BGP.ShutdownWait, new.BGP.ShutdownWait, true},
		{"bgp.min_up_backends", old.BGP.MinUpBackends, new.BGP.MinUpBackends, true},
		{"bgp.nodes", old.BGP.Nodes, new.BGP.Nodes, true},
	} {
		if !reflect.DeepEqual(f.old, f.new) {
			out = append(out, Change{What: f.name, Old: show(f.old), New: show(f.new), Restart: f.restart})
		}
	}
	return append(out, DiffServices(old.Services, new.Services)...)
}

// DiffServices lists what changes from the services old to new.
func DiffServices(old, new []Service) []Change {
	var out []Change
	byKey := map[ident.Service]Service{}
	for _, s := range old {
		byKey[s.Key()] = s
	}
	kept := map[ident.Service]bool{}
	for _, s := range new {
		kept[s.Key()] = true
	}
	for _, s := range old {
		if !kept[s.Key()] {
			out = append(out, Change{What: serviceWhat(s), Old: s.Key().String()})
		}
	}
	for _, s := range new {
		o, ok := byKey[s.Key()]
		if !ok {
			out = append(out, Change{What: serviceWhat(s), New: s.Key().String()})
			continue
		}
		out = append(out, serviceChanges(o, s)...)
	}
	return out
}

func serviceWhat(s Service) string {
	if s.Name == s.Key().String() {
		return "service " + s.Name
	}
	return fmt.Sprintf("service %s (%s)", s.Name, s.Key())
}

func serviceChanges(o, s Service) []Change {
	var out []Change
	what := serviceWhat(s)
	field := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, Change{What: what, Field: name, Old: show(a), New: show(b)})
		}
	}
	field("name", o.Name, s.Name)
	field("scheduler", o.Scheduler, s.Scheduler)
	field("persistence", o.Persistence, s.Persistence)
	field("persistence_netmask", o.PersistenceNetmask, s.PersistenceNetmask)
	field("health_check", o.HealthCheck, s.HealthCheck)
	field("on_backend_down", o.OnBackendDown, s.OnBackendDown)
	field("forwarding", o.Forwarding, s.Forwarding)
	field("client_address", o.ClientAddress, s.ClientAddress)
	field("fallback", o.Fallback, s.Fallback)
	old := map[string]Backend{}
	for _, b := range o.Backends {
		old[b.AddrPort().String()] = b
	}
	now := map[string]bool{}
	for _, b := range s.Backends {
		now[b.AddrPort().String()] = true
	}
	for _, b := range o.Backends {
		if !now[b.AddrPort().String()] {
			out = append(out, Change{What: backendWhat(b, s), Old: b.AddrPort().String()})
		}
	}
	for _, b := range s.Backends {
		ob, ok := old[b.AddrPort().String()]
		switch {
		case !ok:
			out = append(out, Change{What: backendWhat(b, s), New: b.AddrPort().String()})
		case ob.Weight != b.Weight:
			out = append(out, Change{What: backendWhat(b, s), Field: "weight", Old: show(ob.Weight), New: show(b.Weight)})
		}
		if ok && !reflect.DeepEqual(ob.HealthCheck, b.HealthCheck) {
			out = append(out, Change{What: backendWhat(b, s), Field: "health_check", Old: show(ob.HealthCheck), New: show(b.HealthCheck)})
		}
	}
	return out
}

func backendWhat(b Backend, s Service) string {
	return fmt.Sprintf("backend %s of service %s", b.AddrPort(), s.Name)
}

// show writes a value as an operator reads it: pointers followed, empty
// values empty.
func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return ""
		}
		v = rv.Elem().Interface()
	}
	switch x := v.(type) {
	case Backend:
		return x.AddrPort().String()
	case []string:
		return strings.Join(x, ", ")
	case []netip.Addr:
		if len(x) == 0 {
			return ""
		}
		return fmt.Sprint(x)
	case netip.Addr:
		if !x.IsValid() {
			return "" // not "invalid IP"
		}
		return x.String()
	case netip.AddrPort:
		if !x.IsValid() {
			return "" // not "invalid AddrPort"
		}
		return x.String()
	case []BGPPeer, []BGPNode:
		// As YAML says them, on one line.
		b, _ := yaml.Marshal(x)
		return strings.Join(strings.Fields(string(b)), " ")
	case health.Spec:
		n := healthNode(&x)
		n.Style = yaml.FlowStyle
		b, _ := yaml.Marshal(n)
		return strings.TrimSpace(string(b))
	}
	s := fmt.Sprint(v)
	if s == "0s" || s == "" {
		return ""
	}
	return strings.TrimPrefix(s, "&")
}
