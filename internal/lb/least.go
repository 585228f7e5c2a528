package lb

import (
	"errors"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
)

// The least-connection schedulers (lc, wlc) choose in the datapath, by each
// backend's load: its connections as the last conntrack sweep counted them,
// weighted as IPVS does (datapath.LeastLoadActive per established one,
// LeastLoadInactive per other), plus what the datapath opened since. The
// balancer writes each backend's weight when its service changes, and the
// loads after every sweep (ApplyLoads).

// isLeast tells the schedulers that need backend loads.
func isLeast(scheduler string) bool { return scheduler == "lc" || scheduler == "wlc" }

// leastWeight is what the datapath divides a backend's load by: its
// effective weight for wlc, 1 for lc (every usable backend alike), 0 for
// one that takes no new connections.
func leastWeight(scheduler string, eff config.Backend) uint32 {
	switch {
	case eff.Weight == 0:
		return 0
	case scheduler == "lc":
		return 1
	}
	return eff.Weight
}

// writeWeights gives the datapath the weights of a service's backends
// (parallel to eff.Backends, eff being the service as its rings see it),
// where they changed; before its ring names them, so the datapath never
// sees a usable backend without its weight.
func (b *Balancer) writeWeights(backends []backend, eff config.Service) error {
	if !isLeast(eff.Scheduler) {
		return nil
	}
	var errs []error
	for i := range backends {
		be := &backends[i]
		w := leastWeight(eff.Scheduler, eff.Backends[i])
		if w == be.loadWeight {
			continue
		}
		if err := b.w.SetBackendLoad(be.id, w, be.load); err != nil {
			errs = append(errs, err)
			continue
		}
		be.loadWeight = w
	}
	return errors.Join(errs...)
}

// ApplyLoads writes the loads the last conntrack sweep counted for the
// backends of least-connection services (counts by backend id).
func (b *Balancer) ApplyLoads(counts map[uint32]datapath.ConnCount) error {
	var errs []error
	for _, s := range b.services {
		if !isLeast(s.cfg.Scheduler) {
			continue
		}
		for i := range s.backends {
			be := &s.backends[i]
			c := counts[be.id]
			be.load = c.Active*datapath.LeastLoadActive + c.Inactive*datapath.LeastLoadInactive
			if err := b.w.SetBackendLoad(be.id, be.loadWeight, be.load); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
