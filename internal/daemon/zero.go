package daemon

import (
	"fmt"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// baselines are the counters at the last `xdplb zero`, per service and
// backend identity: listings show the counters minus them, while the
// datapath's counters (and so Prometheus's) go on rising.
type baselines struct {
	services map[ident.Service]datapath.Traffic
	backends map[ident.Backend]datapath.Traffic
}

// Zero implements api.Editor.
func (d *Daemon) Zero(ref *ident.Ref) error {
	return d.do(func() error {
		_, services, err := d.readCounters()
		if err != nil {
			return err
		}
		next := baselines{services: map[ident.Service]datapath.Traffic{}, backends: map[ident.Backend]datapath.Traffic{}}
		if old := d.zeroed.Load(); old != nil {
			for k, v := range old.services {
				next.services[k] = v
			}
			for k, v := range old.backends {
				next.backends[k] = v
			}
		}
		found := false
		for _, s := range services {
			if ref != nil && !ref.Matches(s.Key, s.Name) {
				continue
			}
			found = true
			next.services[s.Key] = s.traffic
			for i, b := range s.Backends {
				next.backends[ident.Backend{Service: s.Key, Addr: b.Addr}] = s.backends[i]
			}
		}
		if ref != nil && !found {
			return fmt.Errorf("service %s not found: %w", ref, api.ErrNotFound)
		}
		d.zeroed.Store(&next)
		d.log.Info("counters zeroed for listings", "service", refString(ref))
		return nil
	})
}

func refString(ref *ident.Ref) string {
	if ref == nil {
		return "all"
	}
	return ref.String()
}

// since returns t minus the baseline of what it counts. A baseline larger
// than t is stale (the service or backend was removed and added again,
// and its counters restarted): t is shown whole.
func since(t, base datapath.Traffic) datapath.Traffic {
	if t.PacketsIn < base.PacketsIn || t.PacketsOut < base.PacketsOut || t.NewConns < base.NewConns {
		return t
	}
	return datapath.Traffic{
		PacketsIn: t.PacketsIn - base.PacketsIn, BytesIn: t.BytesIn - base.BytesIn,
		PacketsOut: t.PacketsOut - base.PacketsOut, BytesOut: t.BytesOut - base.BytesOut,
		NewConns: t.NewConns - base.NewConns,
	}
}
