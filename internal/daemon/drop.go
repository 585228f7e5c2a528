package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/xdplb/xdplb/internal/conntrack"
)

// dropTask ends the connections of a backend health checks took out.
type dropTask struct {
	service   string
	serviceID uint32
	backend   netip.AddrPort
}

// dropQueue runs drop tasks one at a time on their own goroutine: ending
// a backend's connections walks the whole conntrack table, which must not
// hold up the owner.
type dropQueue struct {
	mu      sync.Mutex
	pending []dropTask
	wake    chan struct{}
	table   conntrack.Ender
	log     *slog.Logger
}

func (q *dropQueue) add(t dropTask) {
	q.mu.Lock()
	q.pending = append(q.pending, t)
	q.mu.Unlock()
	nudge(q.wake)
}

// run works through the queue until ctx ends.
func (q *dropQueue) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		q.mu.Lock()
		tasks := q.pending
		q.pending = nil
		q.mu.Unlock()
		for _, t := range tasks {
			n, err := conntrack.DropBackend(q.table, t.serviceID, t.backend)
			if err != nil {
				q.log.Error("connections of a down backend not expired", "service", t.service, "backend", t.backend, "err", err)
				continue
			}
			q.log.Info("expired the connections of a down backend", "service", t.service, "backend", t.backend, "connections", n)
		}
	}
}
