package ha

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/xdplb/xdplb/internal/waitctx"
)

// burstGap separates the gratuitous ARPs of one burst, so that one dropped
// on a busy link or rate-limited by a switch does not take its copies with
// it.
const burstGap = 10 * time.Millisecond

// Announcer sends gratuitous ARPs for a new master in two bursts, as
// keepalived does (5 at once, 5 more after 5s): the first moves the
// neighbours at once, the second catches those that missed it, e.g. a switch
// port that was still coming up. At most one announcement runs at a time.
type Announcer struct {
	log  *slog.Logger
	send func(ifname string, addrs []netip.Addr) error // Announce; tests replace it

	mu     sync.Mutex
	cancel context.CancelFunc // of the running announcement, nil if none
	done   chan struct{}      // closed when it has stopped
}

// NewAnnouncer returns an Announcer that logs failed sends to log.
func NewAnnouncer(log *slog.Logger) *Announcer {
	return &Announcer{log: log, send: Announce}
}

// Start announces addrs on ifname in the background: repeat gratuitous ARPs
// per address now, and repeat more after delay unless delay is 0. It first
// stops an announcement still running, so a new Start cancels the previous
// one's second burst. The announcement also ends when ctx is done.
func (a *Announcer) Start(ctx context.Context, ifname string, addrs []netip.Addr, repeat int, delay time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopLocked()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	a.cancel, a.done = cancel, done
	addrs = slices.Clone(addrs) // the caller may reuse its slice
	go func() {
		defer close(done)
		if !a.burst(ctx, ifname, addrs, repeat) || delay <= 0 || !waitctx.Sleep(ctx, delay) {
			return
		}
		a.burst(ctx, ifname, addrs, repeat)
	}()
}

// Stop cancels the running announcement, if any, and waits for it to end.
func (a *Announcer) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopLocked()
}

func (a *Announcer) stopLocked() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	a.cancel, a.done = nil, nil
}

// burst sends repeat gratuitous ARPs per address, burstGap apart, and
// reports whether it ran to the end. A failed send is logged once per
// burst: the next ones would most likely fail the same way.
func (a *Announcer) burst(ctx context.Context, ifname string, addrs []netip.Addr, repeat int) bool {
	var firstErr error
	failed := 0
	for i := range repeat {
		if i > 0 && !waitctx.Sleep(ctx, burstGap) {
			return false
		}
		if err := a.send(ifname, addrs); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			failed++
		}
	}
	if firstErr != nil {
		a.log.Warn("gratuitous ARPs not sent", "interface", ifname, "failed", failed, "attempts", repeat, "err", firstErr)
	}
	return ctx.Err() == nil
}
