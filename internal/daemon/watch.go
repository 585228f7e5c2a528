package daemon

import (
	"context"
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
)

// alarming are the drop reasons an operator must hear about: the balancer
// is refusing connections for lack of room.
var alarming = []string{"drop_ports_exhausted", "drop_ct_full", "drop_no_neigh", "drop_no_route"}

// watchDrops logs, at most once per period, how many packets each alarming
// reason dropped since the last look. A log line per drop would drown the
// log exactly when things go wrong.
func (d *Daemon) watchDrops(ctx context.Context, period time.Duration) {
	last, _ := d.dp.Reasons()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := d.dp.Reasons()
		if err != nil {
			d.log.Warn("read datapath counters", "err", err)
			continue
		}
		for _, name := range alarming {
			r, _ := datapath.ReasonByName(name)
			if last != nil && now[r] > last[r] {
				d.log.Warn("datapath dropping packets", "reason", name, "count", now[r]-last[r], "period", period)
			}
		}
		last = now
	}
}
