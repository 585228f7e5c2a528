package daemon

import (
	"net/netip"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/datapath"
)

// Status implements api.Source.
func (d *Daemon) Status() api.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return api.Status{Ready: d.ready, Interfaces: d.attachments, Services: len(d.bal.Services())}
}

// Stats implements api.Source.
func (d *Daemon) Stats() (api.Stats, error) {
	reasons, err := d.dp.Reasons()
	if err != nil {
		return api.Stats{}, err
	}
	st := api.Stats{Reasons: map[string]uint64{}}
	for r, n := range reasons {
		st.Reasons[datapath.Reason(r).String()] = n
	}
	d.mu.Lock()
	services := d.bal.Services()
	d.mu.Unlock()
	for _, s := range services {
		t, err := d.dp.ServiceTraffic(s.ID)
		if err != nil {
			return api.Stats{}, err
		}
		ss := api.ServiceStats{
			Name: s.Name, Address: netip.AddrPortFrom(s.Key.VIP, s.Key.Port).String(), Protocol: protoName(s.Key.Proto),
			Scheduler: s.Scheduler, Traffic: t,
		}
		for _, b := range s.Backends {
			bt, err := d.dp.BackendTraffic(b.ID)
			if err != nil {
				return api.Stats{}, err
			}
			ss.Backends = append(ss.Backends, api.BackendStats{Address: b.Addr.String(), Weight: b.Weight, Traffic: bt})
		}
		st.Services = append(st.Services, ss)
	}
	return st, nil
}

func protoName(p uint8) string {
	if p == datapath.UDP {
		return "udp"
	}
	return "tcp"
}

// Connections implements api.Source.
func (d *Daemon) Connections() ([]conntrack.Conn, error) {
	d.mu.Lock()
	t := timeouts(d.cfg.Conntrack.Timeouts)
	d.mu.Unlock()
	return conntrack.List(d.dp, t)
}
