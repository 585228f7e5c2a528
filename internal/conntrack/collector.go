package conntrack

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
)

// Table is the part of the datapath the collector works on.
type Table interface {
	WalkForward(fn func([]datapath.Forward) error) error
	WalkReverse(fn func([]datapath.Reverse) error) error
	DeleteForward(keys []datapath.FlowKey) error
	DeleteReverse(keys []datapath.FlowKey) error
}

// OrphanGrace is how old a half without its partner must be before it is
// removed. The datapath inserts the reverse half a moment before the
// forward one, so a young lone half may be a connection being born.
const OrphanGrace = 5 * time.Second

// Result is what one collection did.
type Result struct {
	Entries  int           // connections (forward halves) seen
	Expired  int           // connections removed for idleness
	Orphans  int           // halves removed for lack of a partner
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

// Totals returns what the collector has done so far.
func (c *Collector) Totals() Totals {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.totals
}

// Run collects every interval, and on Kick no more often than every
// minGap, until ctx ends.
func (c *Collector) Run(ctx context.Context, interval, minGap time.Duration) {
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
		} else if res.Expired+res.Orphans > 0 {
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

// reverseInfo is what a collection needs of a reverse half.
type reverseInfo struct {
	lastSeen uint64
	client   flowKey
	state    datapath.State
	matched  bool
}

// Collect walks both halves once, removes expired connections (both halves
// together) and orphaned halves, and reports what it did.
func (c *Collector) Collect() (Result, error) {
	start := time.Now()
	now := c.now()
	grace := uint64(OrphanGrace)
	revs := map[flowKey]reverseInfo{}
	err := c.table.WalkReverse(func(batch []datapath.Reverse) error {
		for _, r := range batch {
			revs[compact(r.Key)] = reverseInfo{lastSeen: r.LastSeen, client: compact(r.Client), state: r.State}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}

	var res Result
	var delFwd, delRev []datapath.FlowKey
	err = c.table.WalkForward(func(batch []datapath.Forward) error {
		for _, f := range batch {
			res.Entries++
			rk := f.ReverseKey()
			ck := compact(rk)
			r, ok := revs[ck]
			if !ok || r.client != compact(f.Key) {
				if age(now, f.LastSeen) > grace {
					delFwd = append(delFwd, f.Key)
					res.Orphans++
				}
				continue
			}
			r.matched = true
			revs[ck] = r
			last := max(f.LastSeen, r.lastSeen)
			if age(now, last) > uint64(c.timeouts.For(Phase(f.Key.Proto, f.State, r.state))) {
				delFwd = append(delFwd, f.Key)
				delRev = append(delRev, rk)
				res.Expired++
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	for k, r := range revs {
		if !r.matched && age(now, r.lastSeen) > grace {
			delRev = append(delRev, k.expand())
			res.Orphans++
		}
	}
	// Forward halves first: once a client's packets find nothing, no new
	// packet can refresh the reverse half being removed.
	if err := c.table.DeleteForward(delFwd); err != nil {
		return Result{}, fmt.Errorf("expire connections: %w", err)
	}
	if err := c.table.DeleteReverse(delRev); err != nil {
		return Result{}, fmt.Errorf("expire connections: %w", err)
	}
	res.Duration = time.Since(start)
	c.mu.Lock()
	c.totals.Runs++
	c.totals.Expired += uint64(res.Expired)
	c.totals.Orphans += uint64(res.Orphans)
	c.totals.Last = res
	c.mu.Unlock()
	return res, nil
}

func age(now, then uint64) uint64 {
	if then > now {
		return 0
	}
	return now - then
}
