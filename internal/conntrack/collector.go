package conntrack

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
)

// Table is the part of the datapath the collector and listings work on.
type Table interface {
	Sweep(now, grace uint64, expired datapath.ExpiryFunc, full bool) (datapath.SweepResult, error)
	WalkForward(fn func([]datapath.Forward) error) error
	WalkReverse(fn func([]datapath.Reverse) error) error
}

// OrphanGrace is how old a half without its partner must be before it is
// removed. The datapath inserts the reverse half a moment before the
// forward one, so a young lone half may be a connection being born.
const OrphanGrace = 5 * time.Second

// Result is what one collection did.
type Result struct {
	Entries  int // connections (forward halves) seen
	HalfOpen int // of them, TCP connections whose client has not completed the handshake
	// HalfOpenPerService splits HalfOpen by service id.
	HalfOpenPerService map[uint32]int
	Expired            int  // connections removed for idleness
	Orphans            int  // halves removed for lack of a partner
	Full               bool // both tables were read (see FullSweepEvery)
	// PortsInUse counts connections per local address, as seen.
	PortsInUse map[netip.Addr]int
	// PerBackend counts connections per backend id, as seen.
	PerBackend map[uint32]datapath.ConnCount
	// PerService counts connections per service id, as seen.
	PerService map[uint32]int
	// Ended are the expired connections, while sync is on (for the
	// peers); Totals.Last leaves them out.
	Ended []datapath.Ended
	// Started is when the collection began: a connection opened after it
	// may be missing from the counts.
	Started  time.Time
	Duration time.Duration // wall time of the collection
}

// Totals accumulate over a collector's life.
type Totals struct {
	Runs, Expired, Orphans uint64
	Last                   Result
}

// Collector expires connections from a Table.
type Collector struct {
	table    Table
	timeouts Timeouts
	log      *slog.Logger
	now      func() uint64
	kick     chan struct{}

	mu     sync.Mutex
	totals Totals
}

// NewCollector returns a collector for table with the given timeouts.
func NewCollector(table Table, timeouts Timeouts, log *slog.Logger) *Collector {
	return &Collector{table: table, timeouts: timeouts, log: log, now: datapath.Now, kick: make(chan struct{}, 1)}
}

// Kick asks for a collection now rather than at the next period, e.g. when
// the datapath reports that local ports are getting scarce.
func (c *Collector) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// SetTimeouts changes the timeouts from the next collection on.
func (c *Collector) SetTimeouts(t Timeouts) {
	c.mu.Lock()
	c.timeouts = t
	c.mu.Unlock()
}

// Totals returns what the collector has done so far.
func (c *Collector) Totals() Totals {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.totals
}

// Run collects every interval, and on Kick no more often than every
// minGap, until ctx ends; after each collection it hands the result to
// done (which may be nil).
func (c *Collector) Run(ctx context.Context, interval, minGap time.Duration, done func(Result)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		res, err := c.Collect()
		if err != nil {
			c.log.Warn("conntrack collection failed", "err", err)
		} else if done != nil {
			done(res)
		}
		if err == nil && res.Expired+res.Orphans > 0 {
			c.log.Debug("conntrack collected", "entries", res.Entries, "expired", res.Expired,
				"orphans", res.Orphans, "duration", res.Duration)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(minGap):
		}
	}
}

// FullSweepEvery is how many collections pass between two full sweeps,
// the only ones that find reverse halves whose forward half is gone (rare:
// a daemon killed halfway through removing a connection leaves one).
const FullSweepEvery = 30

// Collect sweeps the table once: connections idle for longer than their
// phase allows go (both halves together), and so do halves whose partner
// is gone. The first collection, and every FullSweepEvery-th, is full.
func (c *Collector) Collect() (Result, error) {
	start := time.Now()
	c.mu.Lock()
	full := c.totals.Runs%FullSweepEvery == 0
	timeouts := c.timeouts
	c.mu.Unlock()
	sw, err := c.table.Sweep(c.now(), uint64(OrphanGrace), func(proto uint8, fwd, rev datapath.State, idle uint64) bool {
		return idle > uint64(timeouts.For(Phase(proto, fwd, rev)))
	}, full)
	if err != nil {
		return Result{}, fmt.Errorf("collect connections: %w", err)
	}
	res := Result{
		Entries: sw.Entries, HalfOpen: sw.HalfOpen, HalfOpenPerService: sw.HalfOpenPerService,
		Expired: sw.Expired, Orphans: sw.Orphans, Full: full,
		PortsInUse: sw.PortsInUse, PerBackend: sw.PerBackend, PerService: sw.PerService, Started: start, Duration: time.Since(start),
	}
	c.mu.Lock()
	c.totals.Runs++
	c.totals.Expired += uint64(res.Expired)
	c.totals.Orphans += uint64(res.Orphans)
	c.totals.Last = res
	c.mu.Unlock()
	res.Ended = sw.Ended
	return res, nil
}

func age(now, then uint64) uint64 {
	if then > now {
		return 0
	}
	return now - then
}
