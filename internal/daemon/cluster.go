package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
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

	role atomic.Uint32 // ha.Role
	// pulled receives a value each time a bulk pull is done; readyNow
	// says whether the last one is.
	pulled   chan struct{}
	readyNow atomic.Bool
	// election decides the role in vrrp mode; driven by elect only, once
	// the daemon runs.
	election *ha.Election

	heard  chan ha.Advert
	status atomic.Pointer[ha.Status]

	// The bulk pulls: the latest one's generation and cancel, and every
	// one's goroutine.
	pullMu     sync.Mutex
	pullGen    uint64
	cancelPull context.CancelFunc
	pulls      sync.WaitGroup
}

// readKey reads the sync key, refusing one others may read or write:
// whoever has it can inject connections into this balancer. A link is
// followed (secrets are often mounted as links); the file it leads to is
// checked.
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sync.key_file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sync.key_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sync.key_file: %s is not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("sync.key_file: %s belongs to uid %d, not to root", path, st.Uid)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sync.key_file: %s is open to group or others (mode %04o); make it 0600: "+
			"whoever has the key can inject connections", path, fi.Mode().Perm())
	}
	key, err := io.ReadAll(io.LimitReader(f, 1<<16))
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
	c := &cluster{log: log, cfg: cfg.HA, sync: s, pulled: make(chan struct{}, 1), heard: make(chan ha.Advert, 16)}
	c.role.Store(uint32(ha.RoleInit))
	if cfg.HA.Mode == config.HAModeNone {
		// Active-active: every node carries traffic.
		c.role.Store(uint32(ha.RoleMaster))
	}
	if !cfg.SyncEnabled() {
		c.readyNow.Store(true)
		c.pulled <- struct{}{}
		return c, nil
	}
	key, err := readKey(cfg.Sync.KeyFile)
	if err != nil {
		return nil, err
	}
	s.heard = c.onHeartbeat
	s.active = c.active
	c.node, err = connsync.New(connsync.Config{
		NodeID: cfg.HA.NodeID, ClusterID: cfg.Sync.ClusterID, Key: key, Listen: cfg.Sync.Listen, Peers: cfg.Sync.Peers,
		BatchInterval: cfg.Sync.BatchInterval, BulkTimeout: cfg.Sync.BulkTimeout, Log: log,
	}, s)
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	s.node = c.node
	return c, nil
}

// isReady reports whether the last bulk pull is done.
func (c *cluster) isReady() bool { return c.readyNow.Load() }

// startPull starts a bulk pull (none without sync), cancelling one still
// running: its answer would be older. Only the latest pull, when done,
// makes the node ready.
func (c *cluster) startPull(parent context.Context) {
	if c.node == nil {
		return
	}
	c.pullMu.Lock()
	defer c.pullMu.Unlock()
	if c.cancelPull != nil {
		c.cancelPull()
	}
	ctx, cancel := context.WithCancel(parent)
	c.cancelPull = cancel
	c.pullGen++
	gen := c.pullGen
	c.readyNow.Store(false)
	select {
	case <-c.pulled: // an older pull's news
	default:
	}
	c.pulls.Go(func() {
		defer cancel()
		c.sync.pull(ctx, func() {
			c.pullMu.Lock()
			defer c.pullMu.Unlock()
			if gen != c.pullGen {
				return
			}
			c.readyNow.Store(true)
			select {
			case c.pulled <- struct{}{}:
			default:
			}
		})
	})
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
		c.startPull(ctx)
		defer c.pulls.Wait()
		g.Go(func() error { c.sync.repair(ctx, repairInterval(refresh)); return nil })
	}
	if c.cfg.Mode == config.HAModeVRRP {
		g.Go(func() error { c.elect(ctx); return nil })
	}
	if c.cfg.Mode == config.HAModeNone && c.node != nil {
		g.Go(func() error { c.beat(ctx); return nil })
	}
	return g.Wait()
}

// beat says every advert interval that this node is alive, for the peers
// that take over its local addresses when it falls silent (bgp.nodes):
// without an election nothing else is sent while no connection changes.
func (c *cluster) beat(ctx context.Context) {
	t := time.NewTicker(c.cfg.AdvertInterval)
	defer t.Stop()
	for {
		c.node.SendHeartbeat(connsync.Heartbeat{Role: ha.RoleMaster, Ready: c.isReady(), AdvertInterval: c.cfg.AdvertInterval})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// repairInterval spaces the bulk pulls that repair lost datagrams: a
// quarter of the refresh interval, at least 5 s.
func repairInterval(refresh time.Duration) time.Duration { return max(refresh/4, 5*time.Second) }
