package daemon

import (
	"github.com/xdplb/xdplb/internal/metrics"
)

// Conntrack implements metrics.Source. The counts come from the last
// collection, not from a walk per scrape: a walk of a million entries is
// what the collector already pays once per gc_interval.
func (d *Daemon) Conntrack() (metrics.ConntrackStats, error) {
	last := d.collector.Totals().Last
	st := metrics.ConntrackStats{
		Entries:    uint64(last.Entries),
		Capacity:   uint64(d.dp.ConntrackCapacity()),
		PortsInUse: map[string]uint64{},
	}
	for addr, n := range last.PortsInUse {
		st.PortsInUse[addr.String()] = uint64(n)
	}
	return st, nil
}

// Health implements metrics.Source.
func (d *Daemon) Health() []metrics.BackendHealth {
	names := d.serviceNames()
	states := d.health.States()
	out := make([]metrics.BackendHealth, len(states))
	for i, s := range states {
		name, ok := names[s.Target.Service]
		if !ok {
			name = s.Target.Service
		}
		out[i] = metrics.BackendHealth{Service: name, Backend: s.Target.Addr.String(), Up: s.Up}
	}
	return out
}

// Collector implements metrics.Source.
func (d *Daemon) Collector() metrics.CollectorStats {
	t := d.collector.Totals()
	return metrics.CollectorStats{Runs: t.Runs, Expired: t.Expired, Orphans: t.Orphans, LastDuration: t.Last.Duration}
}

// Reloads implements metrics.Source.
func (d *Daemon) Reloads() (ok, failed uint64) {
	return d.reloads.ok.Load(), d.reloads.failed.Load()
}

// serviceNames maps each service's key to its configured name.
func (d *Daemon) serviceNames() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]string, len(d.cfg.Services))
	for _, s := range d.cfg.Services {
		out[s.Key()] = s.Name
	}
	return out
}
