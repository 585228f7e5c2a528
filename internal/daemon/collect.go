package daemon

import (
	"context"

	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/lb"
)

// collect runs the conntrack collector. After every sweep it publishes
// the per-backend connection counts for listings, and tells the owner
// (see afterSweep).
func (d *Daemon) collect(ctx context.Context) {
	gc := d.view().cfg.Conntrack.GCInterval
	d.collector.Run(ctx, gc, gc/10, func(r conntrack.Result) {
		if d.cluster != nil && d.cluster.node != nil {
			d.cluster.sync.ended(r.Ended)
		}
		r.Ended = nil
		d.lastSweep.Store(&r)
		nudge(d.sweepNudge)
	})
}

// afterSweep hands the last sweep's counts to the balancer: the loads of
// least-connection services, and the ids of removed backends and services
// no connection carried any more, which are freed. Called on the owner
// goroutine.
func (d *Daemon) afterSweep() {
	r := d.lastSweep.Load()
	if r == nil {
		return
	}
	if err := d.bal.ApplyLoads(r.PerBackend); err != nil {
		d.log.Warn("backend loads for lc and wlc not written", "err", err)
	}
	if freed := d.bal.Release(lb.Carried{Backends: r.PerBackend, Services: r.PerService, Started: r.Started}); freed > 0 {
		d.log.Debug("ids of removed services and backends released", "ids", freed)
	}
}
