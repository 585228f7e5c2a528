package daemon

import (
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
	"github.com/xdplb/xdplb/internal/metrics"
)

// Counters implements metrics.Source.
func (d *Daemon) Counters() (metrics.Counters, error) {
	reasons, services, err := d.readCounters()
	if err != nil {
		return metrics.Counters{}, err
	}
	toa, err := d.dp.TOACounts()
	if err != nil {
		return metrics.Counters{}, err
	}
	conns, halfOpen := d.connCounts(), d.halfOpenCounts()
	cfg := d.view().cfg
	perBackend := localPortsPerBackend(cfg)
	out := metrics.Counters{
		Reasons: reasons, Services: make([]metrics.ServiceCounters, len(services)),
		LocalPortsPerBackend: perBackend, TOA: toa,
		NewConnsCeiling: newConnsCeiling(cfg),
	}
	for i, s := range services {
		sc := metrics.ServiceCounters{Name: s.Name, Key: s.Key, Traffic: s.traffic, HalfOpen: uint64(halfOpen[s.ID])}
		for j, b := range s.Backends {
			c := conns[b.ID]
			sc.Backends = append(sc.Backends, metrics.BackendCounters{
				Addr: b.Addr, Traffic: s.backends[j], Active: c.Active, Inactive: c.Inactive, Weight: b.Weight,
			})
		}
		out.Services[i] = sc
	}
	return out, nil
}

// localPortsPerBackend is how many local address:port pairs each backend's
// connections can hold. A node of a cluster hands out only its slice of
// the ports.
func localPortsPerBackend(cfg *config.Config) uint64 {
	ports := cfg.AllocPorts()
	return uint64(len(cfg.Local.Addresses)) * uint64(ports.Max-ports.Min+1)
}

// newConnsCeiling is about how many new connections a second each backend
// sustains from distinct client ports: a closed connection keeps its local
// port for the FIN timeout.
func newConnsCeiling(cfg *config.Config) float64 {
	return float64(localPortsPerBackend(cfg)) / cfg.Conntrack.Timeouts.FinWait.Seconds()
}

// Conntrack implements metrics.Source. The counts come from the last
// collection, not from a walk per scrape: a walk of a million entries is
// what the collector already pays once per gc_interval.
func (d *Daemon) Conntrack() (metrics.ConntrackStats, error) {
	last := d.collector.Totals().Last
	st := metrics.ConntrackStats{
		Entries:    uint64(last.Entries),
		HalfOpen:   uint64(last.HalfOpen),
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
	names := map[ident.Service]string{}
	for _, s := range d.view().cfg.Services {
		names[s.Key()] = s.Name
	}
	states := d.health.States()
	out := make([]metrics.BackendHealth, len(states))
	for i, s := range states {
		name, ok := names[s.Target.Service]
		if !ok {
			name = s.Target.Service.String()
		}
		out[i] = metrics.BackendHealth{Service: name, Backend: s.Target.Addr, Up: s.Up}
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
