package daemon

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/hostnet"
	"github.com/xdplb/xdplb/internal/ident"
)

// The health monitor is the one place that knows whether a backend is
// up: it tells the owner only that something changed, and the owner
// reads the monitor's states and brings the balancer in line.

// healthTargets lists what the configuration asks to check: every backend
// of a service with a health check (its own or the service's). A DSR
// service's backends are checked on the VIP too, along the clients' path;
// local tells the backends that are this host.
func healthTargets(services []config.Service, dsr config.DSR, local func(netip.Addr) bool) []health.Target {
	out := []health.Target{} // none: the monitor must stop every check
	for _, s := range services {
		for _, b := range s.Backends {
			spec := s.Check(b)
			if spec == nil {
				continue
			}
			t := health.Target{Service: s.Key(), Addr: b.AddrPort(), Spec: *spec}
			if s.DSR() {
				t.VIPPath = &health.VIPPath{
					Mode: s.Forwarding, VIP: netip.AddrPortFrom(s.VIP, s.Port),
					Source: dsr.EncapSource, GUEPort: dsr.GUEPort, Local: local(b.Address),
				}
			}
			out = append(out, t)
		}
	}
	return out
}

// setHealthTargets hands the monitor the running configuration's targets
// and applies the states they start in. Called on the owner goroutine.
func (d *Daemon) setHealthTargets() {
	if err := d.health.SetTargets(healthTargets(d.cfg.Services, d.cfg.DSR, hostAddrSet())); err != nil {
		d.log.Error("health checks not updated", "err", err)
	}
	d.applyHealth()
}

// applyHealth takes the backends the monitor holds down out of their
// services' rings and puts those back that came up or lost their checks.
// Each service whose backends changed is rebuilt once, however many of
// them changed. Backends that went down in a service that expires their
// connections get a drop task; the table walk never runs here.
func (d *Daemon) applyHealth() {
	down := map[ident.Backend]bool{}
	// Only a probe's verdict ends connections: a backend that starts down
	// (initial: down, or a new daemon taking over) keeps those it has.
	probed := map[ident.Backend]bool{}
	for _, st := range d.health.States() {
		if !st.Up {
			down[st.Target.Backend()] = true
			probed[st.Target.Backend()] = !st.LastCheck.IsZero()
		}
	}
	before := d.bal.Down()
	if maps.Equal(down, before) {
		return
	}
	if err := d.bal.SetHealth(down); err != nil {
		d.log.Error("health states not all applied; retried at the next change", "err", err)
	}
	after := d.bal.Down()
	var changes []config.Change
	for b := range after {
		if !before[b] {
			changes = append(changes, config.Change{What: backendWhat(b), Field: "health", Old: "up", New: "down"})
		}
	}
	for b := range before {
		if !after[b] {
			changes = append(changes, config.Change{What: backendWhat(b), Field: "health", Old: "down", New: "up"})
		}
	}
	d.audit(sourceHealth, changes)
	for b := range after {
		if before[b] || !probed[b] {
			continue
		}
		if s, ok := d.service(b.Service); ok && s.OnBackendDown == config.ExpireConnections {
			if id, ok := d.bal.ServiceID(b.Service); ok {
				d.dropTasks.add(dropTask{service: s.Name, serviceID: id, backend: b.Addr})
			}
		}
	}
	d.publish()
}

func backendWhat(b ident.Backend) string {
	return fmt.Sprintf("backend %s of service %s", b.Addr, b.Service)
}

// service returns the running configuration's service with key k.
func (d *Daemon) service(k ident.Service) (config.Service, bool) {
	for _, s := range d.cfg.Services {
		if s.Key() == k {
			return s, true
		}
	}
	return config.Service{}, false
}

// hostAddrSet tells this host's own addresses, as they are now. If they
// cannot be listed, none is: the backend is then checked along the
// tunnel, and the check says what fails.
func hostAddrSet() func(netip.Addr) bool {
	addrs, _ := hostnet.HostAddrs()
	return func(a netip.Addr) bool { return slices.Contains(addrs, a.Unmap()) }
}
