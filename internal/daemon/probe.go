package daemon

import (
	"net/netip"
	"time"
)

// probeLimiter lets one neighbour probe per address through per second:
// every reply to an unresolved client reports it, and the kernel needs
// one nudge, not thousands.
type probeLimiter struct {
	last map[netip.Addr]time.Time
}

// probeLimit bounds the addresses remembered; past it the memory is reset,
// which at worst lets a second probe through early.
const probeLimit = 4096

func (p *probeLimiter) due(a netip.Addr, now time.Time) bool {
	if p.last == nil || len(p.last) >= probeLimit {
		p.last = map[netip.Addr]time.Time{}
	}
	if t, ok := p.last[a]; ok && now.Sub(t) < time.Second {
		return false
	}
	p.last[a] = now
	return true
}
