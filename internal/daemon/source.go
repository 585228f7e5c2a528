package daemon

import (
	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/ident"
	"github.com/xdplb/xdplb/internal/lb"
)

// The API and metrics read the owner's published snapshot and the
// datapath's counters; none of them waits for the owner.

// Status implements api.Source.
func (d *Daemon) Status() api.Status {
	v := d.view()
	t := v.cfg.Conntrack.Timeouts
	ports := localPortsPerBackend(v.cfg)
	return api.Status{Ready: v.ready, Interfaces: v.attachments, Services: len(v.services), Timeouts: api.Timeouts{
		SynSent: t.SynSent, Established: t.Established, FinWait: t.FinWait, Close: t.Close, UDP: t.UDP,
	}, LocalPortsPerBackend: ports, NewConnsCeiling: newConnsCeiling(v.cfg)}
}

// Services implements api.Editor.
func (d *Daemon) Services() []api.ServiceView {
	v := d.view()
	checked := d.checkedStates()
	out := make([]api.ServiceView, 0, len(v.cfg.Services))
	for _, s := range v.cfg.Services {
		sv := api.ServiceView{
			Name: s.Name, VIP: s.VIP.String(), Port: s.Port, Protocol: s.Protocol.String(),
			Scheduler: s.Scheduler, Persistence: s.Persistence, PersistenceNetmask: s.PersistenceNetmask,
			ClientAddress: s.ClientAddress, Forwarding: s.Forwarding,
		}
		for _, b := range s.Backends {
			bv := api.BackendView{Address: b.Address.String(), Port: b.Port, Weight: b.Weight, Up: true}
			if h, ok := checked[s.BackendKey(b)]; ok {
				bv.Up, bv.Since = h.Up, h.Since
				if !h.Up {
					bv.Reason = h.LastError
				}
			}
			sv.Backends = append(sv.Backends, bv)
		}
		if f := s.Fallback; f != nil {
			sv.Fallback = &api.BackendView{Address: f.Address.String(), Port: f.Port, Weight: f.Weight, Up: true}
		}
		out = append(out, sv)
	}
	return out
}

// checkedStates indexes the monitor's states by backend, read once per
// listing however many backends there are.
func (d *Daemon) checkedStates() map[ident.Backend]health.State {
	states := d.health.States()
	out := make(map[ident.Backend]health.State, len(states))
	for _, st := range states {
		out[st.Target.Backend()] = st
	}
	return out
}

// counted is one applied service with its counters and its backends'.
type counted struct {
	lb.ServiceInfo
	traffic  datapath.Traffic
	backends []datapath.Traffic // parallel to Backends
}

// readCounters reads the counters of every applied service.
func (d *Daemon) readCounters() (map[string]uint64, []counted, error) {
	reasons, err := d.dp.Reasons()
	if err != nil {
		return nil, nil, err
	}
	byName := make(map[string]uint64, len(reasons))
	for r, n := range reasons {
		byName[datapath.Reason(r).String()] = n
	}
	services := d.view().services
	out := make([]counted, len(services))
	for i, s := range services {
		c := counted{ServiceInfo: s, backends: make([]datapath.Traffic, len(s.Backends))}
		if c.traffic, err = d.dp.ServiceTraffic(s.ID); err != nil {
			return nil, nil, err
		}
		for j, b := range s.Backends {
			if c.backends[j], err = d.dp.BackendTraffic(b.ID); err != nil {
				return nil, nil, err
			}
		}
		out[i] = c
	}
	return byName, out, nil
}

// Stats implements api.Source. Connection counts per backend come from
// the collector's last sweep: a listing never walks the table.
func (d *Daemon) Stats() (api.Stats, error) {
	reasons, services, err := d.readCounters()
	if err != nil {
		return api.Stats{}, err
	}
	conns := d.connCounts()
	zeroed := d.zeroed.Load()
	if zeroed == nil {
		zeroed = &baselines{}
	}
	toa, err := d.dp.TOACounts()
	if err != nil {
		return api.Stats{}, err
	}
	st := api.Stats{Reasons: reasons, TOA: toa}
	for _, s := range services {
		ss := api.ServiceStats{
			Name: s.Name, Address: s.Key.AddrPort().String(), Protocol: s.Key.Proto.String(),
			Scheduler: s.Scheduler, Traffic: wireTraffic(since(s.traffic, zeroed.services[s.Key])),
		}
		for i, b := range s.Backends {
			c := conns[b.ID]
			base := zeroed.backends[ident.Backend{Service: s.Key, Addr: b.Addr}]
			ss.Backends = append(ss.Backends, api.BackendStats{
				Address: b.Addr.String(), Weight: b.Weight, Traffic: wireTraffic(since(s.backends[i], base)),
				ActiveConns: c.Active, InactiveConns: c.Inactive,
			})
		}
		st.Services = append(st.Services, ss)
	}
	return st, nil
}

// connCounts are the connections per backend id of the collector's last
// sweep (none before the first).
func (d *Daemon) connCounts() map[uint32]datapath.ConnCount {
	if r := d.lastSweep.Load(); r != nil {
		return r.PerBackend
	}
	return nil
}

// halfOpenCounts are the half-open connections per service id as of the
// collector's last sweep.
func (d *Daemon) halfOpenCounts() map[uint32]int {
	if r := d.lastSweep.Load(); r != nil {
		return r.HalfOpenPerService
	}
	return nil
}

func wireTraffic(t datapath.Traffic) api.Traffic {
	return api.Traffic{PacketsIn: t.PacketsIn, BytesIn: t.BytesIn, PacketsOut: t.PacketsOut, BytesOut: t.BytesOut, NewConns: t.NewConns}
}

// Connections implements api.Source.
func (d *Daemon) Connections() ([]api.Connection, error) {
	conns, err := conntrack.List(d.dp, timeouts(d.view().cfg.Conntrack.Timeouts))
	if err != nil {
		return nil, err
	}
	out := make([]api.Connection, len(conns))
	for i, c := range conns {
		out[i] = api.Connection{
			Protocol: c.Protocol, State: c.State, ExpiresIn: c.ExpiresIn,
			Client: c.Client, VIP: c.VIP, Local: c.Local, Backend: c.Backend, Origin: c.Origin, DSR: c.DSR,
		}
	}
	return out, nil
}
