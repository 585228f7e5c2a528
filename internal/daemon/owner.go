package daemon

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/lb"
)

// The balancer's state (the running configuration, the balancer and its
// rings, which backends are down, the host addresses) has one owner: the
// goroutine running own. Everything else asks it by message: the API's
// edits and reloads through do, health checks and the collector by
// nudges that carry no state (the owner reads the current state when it
// wakes, so a burst of nudges is one pass: level-triggered). Readers
// (listings, metrics) read the snapshot it publishes after every change
// and never wait for it.

// errStopping answers a request that arrives while the daemon stops.
var errStopping = errors.New("the daemon is stopping")

// call is one request for the owner: fn runs on its goroutine.
type call struct {
	fn   func() error
	done chan error
}

// snapshot is what the owner last published for readers. It is never
// changed once published.
type snapshot struct {
	cfg         *config.Config
	services    []lb.ServiceInfo
	attachments []api.Attachment
	ready       bool
	takenOver   []netip.Addr
}

// owner holds the channels of the owner goroutine and its published
// snapshot.
type owner struct {
	calls       chan call
	healthNudge chan struct{}
	sweepNudge  chan struct{}
	published   atomic.Pointer[snapshot]
	// stopped is closed when the owner goroutine has returned.
	stopped      chan struct{}
	attachments  []api.Attachment
	readyToServe bool
}

func newOwner() owner {
	return owner{
		calls:       make(chan call),
		healthNudge: make(chan struct{}, 1),
		sweepNudge:  make(chan struct{}, 1),
		stopped:     make(chan struct{}),
	}
}

// own serves the owner's messages until ctx ends.
func (d *Daemon) own(ctx context.Context) error {
	defer close(d.stopped)
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-d.calls:
			c.done <- c.fn()
		case <-d.healthNudge:
			d.applyHealth()
		case <-d.sweepNudge:
			d.afterSweep()
		}
	}
}

// do runs fn on the owner goroutine and returns its error. It is how the
// API changes anything.
func (d *Daemon) do(fn func() error) error {
	c := call{fn: fn, done: make(chan error, 1)}
	select {
	case d.calls <- c:
	case <-d.stopped:
		return errStopping
	}
	return <-c.done
}

// nudge wakes the owner for a pass of kind ch without blocking: one
// pending nudge stands for any number.
func nudge(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// publish makes the owner's current state visible to readers. Called on
// the owner goroutine (or before it starts) after every change.
func (d *Daemon) publish() {
	d.published.Store(&snapshot{
		cfg:         d.cfg.Clone(),
		services:    d.bal.Services(),
		attachments: d.attachments,
		ready:       d.readyToServe,
		takenOver:   slices.Clone(d.takenOver),
	})
	if d.bgp != nil {
		nudge(d.bgp.nudge)
	}
}

// view returns the last published snapshot.
func (d *Daemon) view() *snapshot { return d.published.Load() }
