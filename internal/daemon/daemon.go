package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/datapath"
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

// Daemon is one running balancer.
type Daemon struct {
	cfg       *config.Config
	opts      Options
	log       *slog.Logger
	dp        *datapath.Datapath
	neigh     *hostnet.Neighbours
	collector *conntrack.Collector
	health    *health.Monitor
	owned     owned
	// Listeners are opened first, so a daemon that cannot have them (one
	// already runs) stops before it changes anything.
	apiLn, metricsLn net.Listener
	reloads          struct{ ok, failed atomic.Uint64 }

	mu          sync.Mutex
	bal         *lb.Balancer
	attachments []api.Attachment
	ready       bool
}

// Run serves cfg until ctx ends, then removes everything it set up (or, as
// opts.KeepOnExit says, leaves the datapath running).
func Run(ctx context.Context, cfg *config.Config, opts Options, log *slog.Logger) (err error) {
	if opts.KeepOnExit == nil {
		opts.KeepOnExit = new(atomic.Bool)
	}
	d := &Daemon{cfg: cfg, opts: opts, log: log, neigh: hostnet.NewNeighbours(log)}
	d.health = health.New(health.Options{OnChange: d.onHealthChange, Logger: log})
	started := false
	defer func() { err = errors.Join(err, d.shutdown(started)) }()
	if err := d.start(ctx); err != nil {
		return err
	}
	started = true

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	runCtx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { d.neigh.Run(runCtx, 5*time.Second) })
	wg.Go(func() { d.collector.Run(runCtx, cfg.Conntrack.GCInterval, cfg.Conntrack.GCInterval/10) })
	wg.Go(func() { d.watchDrops(runCtx, 10*time.Second) })
	wg.Go(func() { errc <- d.dp.ReadEvents(runCtx, d.onEvent) })
	wg.Go(func() { errc <- api.NewServer(d, log).ServeListener(runCtx, d.apiLn) })
	wg.Go(func() { errc <- d.health.Run(runCtx) })
	if d.metricsLn != nil {
		wg.Go(func() { errc <- metrics.NewServer(cfg.Metrics.Listen, d, log).ServeListener(runCtx, d.metricsLn) })
	}
	wg.Go(func() { d.serveReloads(runCtx) })

	d.setReady()
	log.Info("xdplb ready", "services", len(cfg.Services), "api", cfg.API.Socket)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func (d *Daemon) start(ctx context.Context) (err error) {
	cfg := d.cfg
	defer func() {
		if err != nil {
			closeListener(d.apiLn)
			closeListener(d.metricsLn)
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
	if d.apiLn, err = api.Listen(cfg.API.Socket); err != nil {
		return err
	}
	if cfg.Metrics.Listen != "" {
		if d.metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
	}
	prev, err := readOwned(d.ownedPath())
	if err != nil {
		return err
	}
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
	d.logCapacity()
	d.collector = conntrack.NewCollector(dp, timeouts(cfg.Conntrack.Timeouts), d.log)
	if err := dp.SetLocal(cfg.Local.Addresses, cfg.Local.Ports.Min, cfg.Local.Ports.Max); err != nil {
		return err
	}
	d.bal = lb.New(dp)
	if err := d.bal.Apply(cfg.Services); err != nil {
		return err
	}
	if err := d.removeStaleServices(); err != nil {
		return err
	}
	d.setHealthTargets(d.healthTargetsChanged())

	if err := d.prepareHost(prev); err != nil {
		return err
	}
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
		mode, err := dp.Attach(l.Attrs().Index, datapath.Mode(cfg.XDPMode))
		if err != nil {
			return fmt.Errorf("interface %s: %w", l.Attrs().Name, err)
		}
		d.attachments = append(d.attachments, api.Attachment{Name: l.Attrs().Name, Mode: string(mode)})
		d.log.Info("XDP attached", "interface", l.Attrs().Name, "mode", mode, "replaced_running_program", dp.Adopted())
	}
	return d.addAddresses()
}

// removeStaleServices deletes services an adopted datapath still serves
// but the configuration no longer names (removed while no daemon ran).
func (d *Daemon) removeStaleServices() error {
	keys, err := d.dp.ServiceKeys()
	if err != nil {
		return err
	}
	want := map[datapath.ServiceKey]bool{}
	vipInUse := map[netip.Addr]bool{}
	for _, s := range d.bal.Services() {
		want[s.Key] = true
		vipInUse[s.Key.VIP] = true
	}
	for _, k := range keys {
		if want[k] {
			continue
		}
		if err := d.dp.DeleteService(k, vipInUse[k.VIP]); err != nil {
			return err
		}
		d.log.Info("removed a service the configuration no longer has", "service", k)
	}
	return nil
}

func (d *Daemon) logCapacity() {
	capacity := d.dp.ConntrackCapacity()
	mib := float64(capacity) * float64(datapath.ConntrackEntryBytes) / (1 << 20)
	if d.dp.Adopted() {
		var n int
		d.dp.WalkForward(func(b []datapath.Forward) error { n += len(b); return nil })
		d.log.Info("adopted pinned datapath state", "path", d.cfg.State.PinPath, "connections", n)
	}
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
	if d.opts.KeepOnExit.Load() && d.cfg.State.PinPath != "" {
		d.log.Info("exiting; the datapath keeps running for the next daemon", "pins", d.cfg.State.PinPath)
		return d.dp.Close()
	}
	if !started && d.dp.Adopted() {
		d.log.Warn("start failed; the datapath found running is left as it was", "pins", d.cfg.State.PinPath)
		return d.dp.Close()
	}
	d.log.Info("shutting down: detaching and removing what xdplb added")
	return errors.Join(d.restoreHost(), d.neigh.Forget(), d.dp.Remove())
}

func (d *Daemon) onEvent(e datapath.Event) {
	switch e.Type {
	case datapath.EventNoNeighbour:
		d.log.Debug("datapath: backend next hop unresolved", "backend", e.Addr)
		d.neigh.Kick()
	case datapath.EventPortsPressure:
		d.log.Debug("datapath: local ports scarce; collecting early", "backend", e.Addr)
		d.collector.Kick()
	}
}

func (d *Daemon) serveReloads(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.opts.Reload:
			d.Reload()
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

func (d *Daemon) setReady() {
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()
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
