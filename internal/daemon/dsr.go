package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/hostnet"
)

// setDSR writes the node's direct server return settings to the datapath,
// and this host's addresses, which tell the backends a DSR service passes
// to the host's own stack (co-located mode) from the ones it sends on.
func setDSR(dp *datapath.Datapath, c config.DSR, log *slog.Logger) error {
	addrs, err := hostnet.HostAddrs()
	if err != nil {
		return fmt.Errorf("find this host's addresses for DSR: %w", err)
	}
	if c.EncapSource.IsValid() && !slices.Contains(addrs, c.EncapSource) {
		log.Warn("dsr.encap_source is not an address of this host: backends answer health checks to it, "+
			"and their decapsulators allow it, so tunnels and checks fail unless it is added", "encap_source", c.EncapSource)
	}
	if err := dp.SetHostAddrs(addrs); err != nil {
		return err
	}
	return dp.SetDSR(datapath.DSRSettings{EncapSource: c.EncapSource, GUEPort: c.GUEPort, DecapSources: c.DecapSources})
}

// watchHostAddrs follows the host's addresses: a co-located node's own
// backend is told by its address, which may come or go after the start
// (DHCP, boot order, an operator). A burst of changes is applied once.
func (d *Daemon) watchHostAddrs(ctx context.Context) {
	updates := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) { d.log.Warn("following the host's addresses", "err", err) },
	})
	if err != nil {
		d.log.Warn("cannot follow the host's addresses: DSR backends on this host are recognised at start and reload only", "err", err)
		return
	}
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-updates:
			if !ok {
				return
			}
			settle = time.After(200 * time.Millisecond)
		case <-settle:
			settle = nil
			if err := d.do(d.refreshHostAddrs); err != nil && !errors.Is(err, errStopping) {
				d.log.Warn("apply the host's addresses to DSR backends", "err", err)
			}
		}
	}
}

// refreshHostAddrs marks again the backends that are this host, and
// checks them as such, if any service uses DSR. Called on the owner
// goroutine.
func (d *Daemon) refreshHostAddrs() error {
	if !slices.ContainsFunc(d.cfg.Services, config.Service.DSR) {
		return nil
	}
	addrs, err := hostnet.HostAddrs()
	if err != nil {
		return err
	}
	if err := d.dp.SetHostAddrs(addrs); err != nil {
		return err
	}
	d.setHealthTargets()
	return nil
}
