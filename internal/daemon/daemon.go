package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ha"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/hostnet"
	"github.com/xdplb/xdplb/internal/lb"
	"github.com/xdplb/xdplb/internal/metrics"
)

// neighbourWait bounds how long start-up waits for the backends' next hops
// to resolve before declaring itself ready anyway.
const neighbourWait = 3 * time.Second

// Options change how the daemon starts and stops.
type Options struct {
	// ResetState discards pinned state (and every connection in it) that
	// an earlier run left, instead of adopting it.
	ResetState bool
	// KeepOnExit, when it reports true at shutdown, leaves the datapath,
	// its pinned state and the host addresses in place: the program keeps
	// forwarding while a new daemon (a restart, an upgrade) takes over.
	KeepOnExit *atomic.Bool
	// ConfigPath is the file the configuration came from: reloads read it
	// again, and changes made through the API are saved to it.
	ConfigPath string
	// LogLevel, if set, is the level of the daemon's logger; reloads
	// change it.
	LogLevel *slog.LevelVar
	// Reload delivers a value for every reload request (SIGHUP).
	Reload <-chan struct{}
}

// Daemon is one running balancer. The fields below owner are the owner
// goroutine's alone (see owner.go); the others are set up by start and
// read-only afterwards, or safe for concurrent use.
type Daemon struct {
	opts      Options
	log       *slog.Logger
	dp        *datapath.Datapath
	neigh     *hostnet.Neighbours
	collector *conntrack.Collector
	health    *health.Monitor
	owned     *ownedStore
	// Listeners are opened first, so a daemon that cannot have them (one
	// already runs) stops before it changes anything.
	apiLn, metricsLn net.Listener
	reloads          struct{ ok, failed atomic.Uint64 }
	// lastSweep is the collector's last result: connection counts per
	// backend for listings, and for releasing retired ids.
	lastSweep atomic.Pointer[conntrack.Result]
	// zeroed are the counters at the last `xdplb zero`.
	zeroed    atomic.Pointer[baselines]
	dropTasks dropQueue
	// cluster is this node's part in an HA pair or cluster; nil without
	// ha and sync sections.
	cluster   *cluster
	announcer *ha.Announcer
	// bgp announces the VIPs and local addresses; nil without a bgp
	// section.
	bgp *bgpNode
	// probes limits the neighbour probes for adopted connections' clients;
	// used by the event reader only.
	probes probeLimiter

	owner
	cfg *config.Config
	bal *lb.Balancer
	// role decides, in vrrp mode, whether this node owns the addresses.
	role ha.Role
	// takenOver are the local addresses of failed nodes this node holds.
	takenOver []netip.Addr
	// fileDigest is the configuration file's content as last read or
	// written: a write-back refuses to overwrite an edit made since.
	fileDigest [sha256.Size]byte
}

// Run serves cfg until ctx ends, then removes everything it set up (or, as
// opts.KeepOnExit says, leaves the datapath running).
func Run(ctx context.Context, cfg *config.Config, opts Options, log *slog.Logger) (err error) {
	if opts.KeepOnExit == nil {
		opts.KeepOnExit = new(atomic.Bool)
	}
	d := &Daemon{cfg: cfg, opts: opts, log: log, owner: newOwner()}
	d.dropTasks = dropQueue{wake: make(chan struct{}, 1), log: log}
	d.announcer = ha.NewAnnouncer(log)
	d.neigh = hostnet.NewNeighbours(log)
	d.health = health.New(health.Options{OnChange: func(health.Change) { nudge(d.healthNudge) }, Logger: log})
	// One daemon per pin path, for the daemon's whole life: released
	// last, once the datapath is removed or handed over.
	lock, err := datapath.LockPins(cfg.State.PinPath, cfg.API.Socket)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, lock.Release()) }()
	started := false
	defer func() { err = errors.Join(err, d.shutdown(started)) }()
	if err := d.start(ctx); err != nil {
		return err
	}
	// BGP before the start counts as done: a speaker that cannot start
	// leaves an adopted datapath running, as any other failed start does,
	// while the routers still hold its routes for the next attempt.
	if cfg.BGPEnabled() {
		if err := d.startBGP(ctx, d.dp.Adopted()); err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
	}
	started = true

	g, runCtx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.own(runCtx) })
	g.Go(func() error { d.neigh.Run(runCtx, 5*time.Second); return nil })
	g.Go(func() error { d.collect(runCtx); return nil })
	g.Go(func() error { d.watchDrops(runCtx, 10*time.Second); return nil })
	g.Go(func() error { d.watchHostAddrs(runCtx); return nil })
	g.Go(func() error { return d.dp.ReadEvents(runCtx, d.onEvent) })
	g.Go(func() error { return api.NewServer(d, log).ServeListener(runCtx, d.apiLn) })
	g.Go(func() error { return d.health.Run(runCtx) })
	if d.metricsLn != nil {
		g.Go(func() error { return metrics.NewServer(cfg.Metrics.Listen, d, log).ServeListener(runCtx, d.metricsLn) })
	}
	g.Go(func() error { d.serveReloads(runCtx); return nil })
	g.Go(func() error { d.dropTasks.run(runCtx); return nil })
	g.Go(func() error { d.rotateSYNKey(runCtx); return nil })
	if d.bgp != nil {
		g.Go(func() error { d.announce(runCtx); return nil })
	}
	if d.cluster != nil {
		d.cluster.setRole = func(to ha.Role, _ string) error { return d.setRole(runCtx, to) }
		g.Go(func() error { return d.cluster.run(runCtx, cfg.Sync.Refresh) })
	}

	log.Info("xdplb ready", "services", len(cfg.Services), "api", cfg.API.Socket)
	return g.Wait()
}

func (d *Daemon) start(ctx context.Context) (err error) {
	cfg := d.cfg
	defer func() {
		if err != nil {
			closeListener(d.apiLn)
			closeListener(d.metricsLn)
			if d.cluster != nil && d.cluster.node != nil {
				d.cluster.node.Close()
			}
		}
	}()
	links := make([]netlink.Link, len(cfg.Interfaces))
	for i, name := range cfg.Interfaces {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("interfaces[%d]: %s: %w", i, name, err)
		}
		links[i] = l
	}
	if d.fileDigest, err = d.configDigest(); err != nil {
		return err
	}
	if d.apiLn, err = api.Listen(cfg.API.Socket); err != nil {
		return err
	}
	if cfg.Metrics.Listen != "" {
		if d.metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
	}
	if cfg.HAEnabled() || cfg.SyncEnabled() {
		// The sync channel's sockets are opened now, so a node that
		// cannot have them stops before it changes anything.
		s := &syncer{log: d.log.With("part", "sync"), self: cfg.HA.NodeID, view: d.view}
		if d.cluster, err = newCluster(cfg, s, d.log); err != nil {
			return err
		}
	}
	if d.owned, err = openOwned(ownedPath(cfg.API.Socket)); err != nil {
		return err
	}
	prev := d.owned.snapshot()
	if err := checkPorts(cfg.Local, prev.hasAddress); err != nil {
		return err
	}
	if d.opts.ResetState && cfg.State.PinPath != "" {
		if err := datapath.RemovePins(cfg.State.PinPath); err != nil {
			return err
		}
		d.log.Warn("discarded pinned datapath state", "path", cfg.State.PinPath)
	}

	dp, err := datapath.Load(datapath.Options{ConntrackCapacity: uint32(cfg.Conntrack.Capacity), PinPath: cfg.State.PinPath})
	if err != nil {
		return err
	}
	d.dp = dp
	d.dropTasks.table = dp
	if persist, why := dp.PinsPersist(); !persist && cfg.State.PinPath != "" {
		d.log.Warn("pinned state will not outlive this daemon: a restart or upgrade loses every connection", "reason", why)
	}
	if names := dp.RestartedCounters(); len(names) > 0 {
		d.log.Warn("this version counts other things: these pinned counters restart from zero (connections are kept)", "maps", names)
	}
	if from, ok := dp.Migrated(); ok {
		d.log.Warn("upgraded the pinned datapath state", "from_layout", from, "to_layout", datapath.LayoutVersion,
			"connections_copied", dp.MigratedConns())
	}
	d.logCapacity()
	d.collector = conntrack.NewCollector(dp, timeouts(cfg.Conntrack.Timeouts), d.log)
	if err := d.setLocal(cfg.Local); err != nil {
		return err
	}
	if err := dp.SetSync(cfg.SyncEnabled(), cfg.HA.NodeID); err != nil {
		return err
	}
	if err := errors.Join(setSYNProtection(dp, cfg.SYNProtection), newSYNKey(dp)); err != nil {
		return err
	}
	if err := setDSR(dp, cfg.DSR, d.log); err != nil {
		return err
	}
	if d.cluster != nil {
		d.cluster.sync.dp = dp
		if err := d.startRole(); err != nil {
			return err
		}
	}
	// An adopted datapath's services keep their ids, rings and backend
	// ids; what the configuration no longer has goes (see lb.Adopt).
	held, err := lb.ReadHeld(dp)
	if err != nil {
		return err
	}
	if dp.Adopted() {
		d.log.Info("adopted pinned datapath state", "path", cfg.State.PinPath, "connections", held.Connections)
	}
	d.bal = lb.Adopt(dp, held)
	if err := d.bal.Apply(cfg.Services); err != nil {
		return err
	}
	d.audit(sourceStart, config.DiffServices(nil, cfg.Services))
	d.setHealthTargets()

	if err := d.prepareHost(); err != nil {
		return err
	}
	d.neigh.Adopt(prev.Neighbours, d.owned.addNeighbours)
	d.neigh.SetTargets(backendAddrs(cfg.Services))
	waitCtx, cancel := context.WithTimeout(ctx, neighbourWait)
	missing := d.neigh.WaitResolved(waitCtx)
	cancel()
	if len(missing) > 0 {
		d.log.Warn("backends without a resolved next hop; their first packets wait for resolution", "backends", missing)
	}

	// Attach before adding the addresses: from the moment the kernel
	// answers ARP for a VIP, the program must be there to take its packets.
	for _, l := range links {
		mode, err := dp.Attach(l.Attrs().Index, cfg.XDPMode)
		if err != nil {
			return fmt.Errorf("interface %s: %w", l.Attrs().Name, err)
		}
		d.attachments = append(d.attachments, api.Attachment{Name: l.Attrs().Name, Mode: string(mode)})
		d.log.Info("XDP attached", "interface", l.Attrs().Name, "mode", mode, "replaced_running_program", dp.Adopted())
	}
	// The old program, replaced everywhere now, opened connections in the
	// old maps until a moment ago.
	if n, err := dp.FinishMigration(); err != nil {
		d.log.Error("connections opened during the upgrade were not all copied; they break", "err", err)
	} else if n > 0 {
		d.log.Info("copied the connections opened during the upgrade", "connections", n)
	}
	if dp.VLANCheckOff() {
		d.log.Warn("more VLANs on the balancing interfaces than the datapath tells apart: frames of every VLAN are balanced", "max", datapath.MaxVLANs)
	}
	// A predecessor's taken-over addresses stay taken over until the
	// nodes they belong to are heard (see takeOverAddrs).
	d.takenOver = heldFor(d.owned.snapshot().Addresses, d.nodeAddrs(cfg))
	if err := d.addAddresses(); err != nil {
		return err
	}
	d.readyToServe = true
	d.publish()
	return nil
}

func (d *Daemon) logCapacity() {
	capacity := d.dp.ConntrackCapacity()
	mib := float64(capacity) * float64(datapath.ConntrackEntryBytes) / (1 << 20)
	d.log.Info("conntrack table", "capacity", capacity, "memory_mib", fmt.Sprintf("%.0f", mib))
}

// shutdown removes the datapath and undoes the host changes, or, when
// asked to keep them, only lets go of this process's handles. A daemon that
// failed to start after adopting a running datapath leaves it running: the
// connections in it are not this start's to break.
func (d *Daemon) shutdown(started bool) error {
	if d.dp == nil {
		return nil
	}
	// Routes first: a router must stop sending here before the datapath
	// goes, or keep them (a hand-over) for the next daemon.
	keep := d.opts.KeepOnExit.Load() && d.cfg.State.PinPath != ""
	persist, why := d.dp.PinsPersist()
	if err := d.stopBGP(keep && persist); err != nil {
		d.log.Warn("bgp: stop", "err", err)
	}
	if keep {
		if !persist {
			// The pins vanish with this process: pretending to hand
			// over would leave addresses behind and no datapath.
			d.log.Error("cannot keep the datapath running for the next daemon; removing everything instead", "reason", why)
			return errors.Join(d.restoreHost(), d.neigh.Forget(), d.dp.Remove(), d.owned.remove())
		}
		d.log.Info("exiting; the datapath keeps running for the next daemon", "pins", d.cfg.State.PinPath)
		return errors.Join(d.recordHandOver(), d.dp.Close())
	}
	if !started && d.dp.Adopted() {
		d.log.Warn("start failed; the datapath found running is left as it was", "pins", d.cfg.State.PinPath)
		return d.dp.Close()
	}
	d.log.Info("shutting down: detaching and removing what xdplb added")
	return errors.Join(d.restoreHost(), d.neigh.Forget(), d.dp.Remove(), d.owned.remove())
}

// eventBackend is the backend an event names: the IPv6 path's events
// carry no address (its 4 bytes hold an IPv4 one).
func eventBackend(e datapath.Event) string {
	if e.Addr.IsUnspecified() {
		return "an IPv6 backend"
	}
	return e.Addr.String()
}

func (d *Daemon) onEvent(e datapath.Event) {
	switch e.Type {
	case datapath.EventNoNeighbour:
		d.log.Debug("datapath: backend next hop unresolved", "backend", eventBackend(e))
		d.neigh.Kick()
	case datapath.EventNoClientNeighbour:
		if d.probes.due(e.Addr, time.Now()) {
			if err := hostnet.Probe(e.Addr); err != nil {
				d.log.Debug("datapath: client next hop not probed", "client", e.Addr, "err", err)
			}
		}
	case datapath.EventPortsPressure:
		d.log.Debug("datapath: local ports scarce; collecting early", "backend", eventBackend(e))
		d.collector.Kick()
	case datapath.EventHalfOpen:
		d.log.Debug("datapath: half-open connections at their bound; counting them again now")
		d.collector.Kick()
	case datapath.EventPoolFull:
		if e.Err != nil {
			d.log.Warn("datapath: a full port pool could not be made afresh; its backend has fewer local ports until the next change of local addresses", "err", e.Err)
		}
	}
}

func (d *Daemon) serveReloads(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.opts.Reload:
			d.reloadFrom(sourceSIGHUP, false)
		}
	}
}

// setLogLevel changes the level of the daemon's logger; the config's
// validation has already checked level.
func (d *Daemon) setLogLevel(level string) {
	var l slog.Level
	if d.opts.LogLevel != nil && l.UnmarshalText([]byte(level)) == nil {
		d.opts.LogLevel.Set(l)
	}
}

func closeListener(ln net.Listener) {
	if ln != nil {
		ln.Close()
	}
}

func timeouts(t config.Timeouts) conntrack.Timeouts {
	return conntrack.Timeouts{SynSent: t.SynSent, Established: t.Established, FinWait: t.FinWait, Close: t.Close, UDP: t.UDP}
}

func vips(services []config.Service) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, s := range services {
		if !seen[s.VIP] {
			seen[s.VIP] = true
			out = append(out, s.VIP)
		}
	}
	return out
}

// backendAddrs lists every address new connections may be sent to: the
// backends and the fallbacks.
func backendAddrs(services []config.Service) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, s := range services {
		all := s.Backends
		if s.Fallback != nil {
			all = append(slices.Clone(all), *s.Fallback)
		}
		for _, b := range all {
			if !seen[b.Address] {
				seen[b.Address] = true
				out = append(out, b.Address)
			}
		}
	}
	return out
}
