package daemon

import (
	"context"

	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/lb"
)

// collect runs the conntrack collector. After every sweep it publishes
// the per-backend connection counts for listings, and tells the owner,
// which frees the ids of removed backends no connection carries any more.
func (d *Daemon) collect(ctx context.Context) {
	gc := d.view().cfg.Conntrack.GCInterval
	d.collector.Run(ctx, gc, gc/10, func(r conntrack.Result) {
		d.lastSweep.Store(&r)
		nudge(d.sweepNudge)
	})
}

// retireIDs frees the ids of removed backends that no connection of the
// last sweep carried. Called on the owner goroutine.
func (d *Daemon) retireIDs() {
	r := d.lastSweep.Load()
	if r == nil {
		return
	}
	if freed := d.bal.Release(lb.Carried{Backends: r.PerBackend, Services: r.PerService, Started: r.Started}); freed > 0 {
		d.log.Debug("ids of removed services and backends released", "ids", freed)
	}
}
