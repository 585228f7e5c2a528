package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/connsync"
	"github.com/xdplb/xdplb/internal/ha"
)

// cluster is this node's part in an HA pair or cluster: the sync channel,
// and in vrrp mode the election that decides which node owns the VIPs.
// Without ha and sync sections there is none (Daemon.cluster is nil).
type cluster struct {
	log  *slog.Logger
	cfg  config.HA
	node *connsync.Node
	sync *syncer
	// setRole applies a role on the owner goroutine: addresses added or
	// removed, GARPs.
	setRole func(to ha.Role, reason string) error

	role  atomic.Uint32 // ha.Role
	ready chan struct{} // closed once the bulk pull is done
	// resume, in vrrp mode, starts the election as master: the daemon
	// before this one was master and left the addresses in place.
	resume bool

	heard  chan ha.Advert
	status atomic.Pointer[ha.Status]
}

// readKey reads the sync key, refusing one others may read: whoever has it
// can inject connections into this balancer.
func readKey(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("sync.key_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sync.key_file: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sync.key_file: %s is readable by group or others (mode %04o); make it 0600: "+
			"whoever has the key can inject connections", path, fi.Mode().Perm())
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sync.key_file: %w", err)
	}
	if len(key) < connsync.MinKeyLen {
		return nil, fmt.Errorf("sync.key_file: %s holds %d bytes, want at least %d (e.g. head -c 32 /dev/urandom > %s)",
			path, len(key), connsync.MinKeyLen, path)
	}
	return key, nil
}

// newCluster opens the sync channel (its socket errors surface now, before
// anything changed) for a node that has one.
func newCluster(cfg *config.Config, s *syncer, log *slog.Logger) (*cluster, error) {
	c := &cluster{log: log, cfg: cfg.HA, sync: s, ready: make(chan struct{}), heard: make(chan ha.Advert, 16)}
	c.role.Store(uint32(ha.RoleInit))
	if cfg.HA.Mode == config.HAModeNone {
		// Active-active: every node carries traffic.
		c.role.Store(uint32(ha.RoleMaster))
	}
	if !cfg.SyncEnabled() {
		close(c.ready)
		return c, nil
	}
	key, err := readKey(cfg.Sync.KeyFile)
	if err != nil {
		return nil, err
	}
	s.heard = c.onHeartbeat
	s.active = c.active
	c.node, err = connsync.New(connsync.Config{
		NodeID: cfg.HA.NodeID, Key: key, Listen: cfg.Sync.Listen, Peers: cfg.Sync.Peers,
		BatchInterval: cfg.Sync.BatchInterval, BulkTimeout: cfg.Sync.BulkTimeout, Log: log,
	}, s)
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	s.node = c.node
	return c, nil
}

// isReady reports whether the bulk pull is done.
func (c *cluster) isReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// Role is this node's role now.
func (c *cluster) Role() ha.Role { return ha.Role(c.role.Load()) }

// active says whether this node carries traffic, and so tells its peers
// about its connections.
func (c *cluster) active() bool { return c.Role() == ha.RoleMaster }

// run runs the sync channel, the bulk pull and, in vrrp mode, the
// election, until ctx ends.
func (c *cluster) run(ctx context.Context, refresh time.Duration) error {
	g, ctx := errgroup.WithContext(ctx)
	if c.node != nil {
		g.Go(func() error { return c.node.Run(ctx) })
		g.Go(func() error { return c.sync.emit(ctx) })
		g.Go(func() error { c.sync.refresh(ctx, refresh); return nil })
		g.Go(func() error { c.sync.pull(ctx, func() { close(c.ready) }); return nil })
	}
	if c.cfg.Mode == config.HAModeVRRP {
		g.Go(func() error { c.elect(ctx); return nil })
	}
	return g.Wait()
}

func (c *cluster) onHeartbeat(from uint8, hb connsync.Heartbeat) {
	a := ha.Advert{NodeID: from, Priority: hb.Priority, Role: ha.Role(hb.Role), Ready: hb.Ready, AdvertInterval: hb.AdvertInterval}
	select {
	case c.heard <- a:
	default:
		// The election is behind by a whole queue of adverts; the next
		// ones carry the same news.
	}
}

// elect drives the election: adverts out every interval and at once after
// a change, peers' adverts in, readiness when the bulk pull is done, and
// each role change applied on the owner before it is advertised.
func (c *cluster) elect(ctx context.Context) {
	e := ha.NewElection(ha.Config{NodeID: c.cfg.NodeID, Priority: c.cfg.Priority, AdvertInterval: c.cfg.AdvertInterval,
		Preempt: c.cfg.Preempt, PreemptDelay: c.cfg.PreemptDelay}, time.Now())
	if c.resume {
		e.Resume(time.Now())
	}
	advert := time.NewTicker(c.cfg.AdvertInterval)
	defer advert.Stop()
	ready := c.ready
	for {
		c.apply(ctx, e)
		timer := time.NewTimer(time.Until(e.Next()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case a := <-c.heard:
			e.Heard(time.Now(), a)
		case <-ready:
			ready = nil
			e.SetReady(time.Now(), true)
		case <-advert.C:
			c.advertise(e)
		case <-timer.C:
			e.Tick(time.Now())
		}
		timer.Stop()
	}
}

// apply carries out the election's role changes, then advertises at once
// if there were any, so the peers learn the new role without waiting an
// interval.
func (c *cluster) apply(ctx context.Context, e *ha.Election) {
	changes := e.Changes()
	for _, ch := range changes {
		c.log.Info("HA role changed", "from", ch.From, "to", ch.To, "reason", ch.Reason)
		if err := c.setRole(ch.To, ch.Reason); err != nil && ctx.Err() == nil {
			c.log.Error("HA role not fully applied", "role", ch.To, "err", err)
		}
		c.role.Store(uint32(ch.To))
	}
	if e.Reannounce() {
		c.log.Info("HA: another node may have claimed the addresses; announcing them again")
		if err := c.setRole(ha.RoleMaster, "reannounce"); err != nil && ctx.Err() == nil {
			c.log.Error("HA: addresses not announced", "err", err)
		}
	}
	st := e.Status()
	c.status.Store(&st)
	if len(changes) > 0 {
		c.advertise(e)
	}
}

func (c *cluster) advertise(e *ha.Election) {
	if c.node == nil {
		return
	}
	a := e.Advert()
	c.node.SendHeartbeat(connsync.Heartbeat{Priority: a.Priority, Role: connsync.Role(a.Role), Ready: a.Ready,
		AdvertInterval: a.AdvertInterval})
}
