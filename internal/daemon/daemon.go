package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/hostnet"
	"github.com/xdplb/xdplb/internal/lb"
)

// neighbourWait bounds how long start-up waits for the backends' next hops
// to resolve before declaring itself ready anyway.
const neighbourWait = 3 * time.Second

// Daemon is one running balancer.
type Daemon struct {
	cfg   *config.Config
	log   *slog.Logger
	dp    *datapath.Datapath
	neigh *hostnet.Neighbours

	mu          sync.Mutex
	bal         *lb.Balancer
	attachments []api.Attachment
	ready       bool

	// What start-up changed on the host, undone by cleanup.
	added      []hostnet.AddedAddr
	forwarding map[string]string
}

// Run serves cfg until ctx ends, then removes everything it set up.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) (err error) {
	d := &Daemon{cfg: cfg, log: log, forwarding: map[string]string{}, neigh: hostnet.NewNeighbours(log)}
	defer func() {
		if cerr := d.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if err := d.start(ctx); err != nil {
		return err
	}

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	runCtx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { d.neigh.Run(runCtx, 5*time.Second) })
	wg.Go(func() { errc <- d.dp.ReadEvents(runCtx, d.onEvent) })
	wg.Go(func() { errc <- api.NewServer(d, log).Serve(runCtx, cfg.API.Socket) })

	d.setReady()
	log.Info("xdplb ready", "services", len(cfg.Services), "api", cfg.API.Socket)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-errc:
		return err
	}
}

func (d *Daemon) start(ctx context.Context) error {
	cfg := d.cfg
	links := make([]netlink.Link, len(cfg.Interfaces))
	for i, name := range cfg.Interfaces {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("interfaces[%d]: %s: %w", i, name, err)
		}
		links[i] = l
	}
	if err := checkPorts(cfg.Local); err != nil {
		return err
	}

	dp, err := datapath.Load(datapath.Options{ConntrackCapacity: uint32(cfg.Conntrack.Capacity)})
	if err != nil {
		return err
	}
	d.dp = dp
	if err := dp.SetLocal(cfg.Local.Addresses, cfg.Local.Ports.Min, cfg.Local.Ports.Max); err != nil {
		return err
	}
	d.bal = lb.New(dp)
	if err := d.bal.Apply(cfg.Services); err != nil {
		return err
	}

	for _, l := range links {
		name := l.Attrs().Name
		prev, err := hostnet.EnableForwarding(name)
		if err != nil {
			return err
		}
		d.forwarding[name] = prev
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
		d.log.Info("XDP attached", "interface", l.Attrs().Name, "mode", mode)
	}
	added, err := hostnet.AddAddrs(cfg.Interfaces[0], append(vips(cfg.Services), cfg.Local.Addresses...))
	d.added = added
	if err != nil {
		return err
	}
	for _, a := range added {
		d.log.Info("address added", "interface", a.Link.Attrs().Name, "address", a.Addr)
	}
	return nil
}

func (d *Daemon) cleanup() error {
	var errs []error
	if err := hostnet.RemoveAddrs(d.added); err != nil {
		errs = append(errs, err)
	}
	if d.dp != nil {
		if err := d.dp.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for name, prev := range d.forwarding {
		if err := hostnet.RestoreForwarding(name, prev); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Daemon) onEvent(e datapath.Event) {
	switch e.Type {
	case datapath.EventNoNeighbour:
		d.log.Debug("datapath: backend next hop unresolved", "backend", e.Addr)
		d.neigh.Kick()
	case datapath.EventPortsPressure:
		d.log.Debug("datapath: local port allocation under pressure", "backend", e.Addr)
	}
}

func (d *Daemon) setReady() {
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()
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

func backendAddrs(services []config.Service) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, s := range services {
		for _, b := range s.Backends {
			if !seen[b.Address] {
				seen[b.Address] = true
				out = append(out, b.Address)
			}
		}
	}
	return out
}
