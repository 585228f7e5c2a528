package daemon

import (
	"net/netip"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/lb"
)

// healthTargets lists what the configuration asks to check: every backend
// of a service with a health check (its own or the service's).
func healthTargets(services []config.Service) []health.Target {
	var out []health.Target
	for _, s := range services {
		for _, b := range s.Backends {
			if spec := s.Check(b); spec != nil {
				out = append(out, health.Target{Service: s.Key(), Addr: netip.AddrPortFrom(b.Address, b.Port), Spec: *spec})
			}
		}
	}
	return out
}

// healthTargetsChanged marks backends that lost their checks up again and
// returns the targets to hand the monitor. Called with d.mu held; the
// caller calls setHealthTargets after releasing it (the monitor may be
// waiting for d.mu in onHealthChange).
func (d *Daemon) healthTargetsChanged() []health.Target {
	targets := healthTargets(d.cfg.Services)
	if targets == nil {
		targets = []health.Target{} // none: the monitor must stop every check
	}
	checked := map[string]bool{}
	for _, t := range targets {
		checked[t.Service+" "+t.Addr.String()] = true
	}
	for _, s := range d.cfg.Services {
		for _, b := range s.Backends {
			addr := netip.AddrPortFrom(b.Address, b.Port)
			if !checked[s.Key()+" "+addr.String()] {
				d.bal.SetDown(lb.Key(s), addr, false)
			}
		}
	}
	return targets
}

// setHealthTargets hands the monitor its targets, then takes out of the
// rings those that start down (initial: down), which no change reports.
func (d *Daemon) setHealthTargets(targets []health.Target) {
	if err := d.health.SetTargets(targets); err != nil {
		d.log.Error("health checks not updated", "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, st := range d.health.States() {
		if !st.Up {
			d.setDown(st.Target.Service, st.Target.Addr)
		}
	}
}

// setDown takes a backend of the service with key k out of its ring.
func (d *Daemon) setDown(k string, addr netip.AddrPort) {
	for _, s := range d.cfg.Services {
		if s.Key() == k {
			if err := d.bal.SetDown(lb.Key(s), addr, true); err != nil {
				d.log.Error("health state not applied", "service", s.Name, "backend", addr, "err", err)
			}
		}
	}
}

// onHealthChange takes a backend out of its service's ring when its checks
// fail and puts it back when they pass again.
func (d *Daemon) onHealthChange(c health.Change) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.cfg.Services {
		if s.Key() != c.Target.Service {
			continue
		}
		if err := d.bal.SetDown(lb.Key(s), c.Target.Addr, !c.Up); err != nil {
			d.log.Error("health change not applied", "service", s.Name, "backend", c.Target.Addr, "err", err)
			return
		}
		if !c.Up && s.OnBackendDown == config.ExpireConnections {
			n, err := conntrack.DropBackend(d.dp, d.serviceID(lb.Key(s)), c.Target.Addr)
			if err != nil {
				d.log.Error("connections of a down backend not expired", "backend", c.Target.Addr, "err", err)
			}
			d.log.Info("expired the connections of a down backend", "service", s.Name, "backend", c.Target.Addr, "connections", n)
		}
	}
}

// serviceID is the datapath's id of the service with key k.
func (d *Daemon) serviceID(k datapath.ServiceKey) uint32 {
	for _, s := range d.bal.Services() {
		if s.Key == k {
			return s.ID
		}
	}
	return ^uint32(0)
}

// checkedStates indexes the monitor's states by service key and backend,
// read once per listing however many backends there are.
func (d *Daemon) checkedStates() map[string]health.State {
	states := d.health.States()
	out := make(map[string]health.State, len(states))
	for _, st := range states {
		out[st.Target.Service+" "+st.Target.Addr.String()] = st
	}
	return out
}
