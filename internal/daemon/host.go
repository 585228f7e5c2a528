package daemon

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ha"
	"github.com/xdplb/xdplb/internal/hostnet"
)

// prepareHost turns forwarding on for the balancing interfaces, remembering
// what it was, or taking over what a predecessor remembered.
func (d *Daemon) prepareHost() error {
	prev := d.owned.snapshot().Forwarding
	forwarding := map[string]string{}
	for _, name := range d.cfg.Interfaces {
		was, err := hostnet.EnableForwarding(name)
		if err != nil {
			return err
		}
		if before, ok := prev[name]; ok {
			was = before
		}
		forwarding[name] = was
	}
	if err := d.owned.update(func(o *owned) { o.Forwarding = forwarding }); err != nil {
		return err
	}
	return d.prepareIPv6()
}

// prepareIPv6 turns IPv6 forwarding on for the balancing interfaces once
// an IPv6 service is configured, as prepareHost does IPv4's, remembering
// what it changed (accept_ra too) or taking over what a predecessor
// remembered. It stays on until the daemon exits, whatever services go.
func (d *Daemon) prepareIPv6() error {
	if !slices.ContainsFunc(d.cfg.Services, config.Service.IPv6) {
		return nil
	}
	prev := d.owned.snapshot().IPv6Forwarding
	// What a predecessor changed stays recorded, to be put back, also
	// for interfaces not balanced any more.
	changed := maps.Clone(prev)
	if changed == nil {
		changed = map[string]hostnet.IPv6Forwarding{}
	}
	for _, name := range d.cfg.Interfaces {
		was, err := hostnet.EnableIPv6Forwarding(name)
		if err != nil {
			// What was changed before the failure is recorded all
			// the same, so that it is put back.
			return errors.Join(fmt.Errorf("IPv6 services need IPv6 forwarding on the balancing interfaces: %w", err),
				d.owned.update(func(o *owned) { o.IPv6Forwarding = changed }))
		}
		if _, ok := prev[name]; !ok {
			changed[name] = was
		}
	}
	return d.owned.update(func(o *owned) { o.IPv6Forwarding = changed })
}

// addAddresses makes the kernel answer ARP for the VIPs and local
// addresses this node should own (see wantAddresses). Addresses a
// predecessor added stay xdplb's; addresses it added that are not wanted
// any more are removed.
func (d *Daemon) addAddresses() error {
	ifname := d.addrInterface()
	want := d.wantAddresses()
	var keep []ownedAddr
	for _, a := range d.owned.snapshot().Addresses {
		if a.Interface == ifname && slices.Contains(want, a.Address) {
			keep = append(keep, a)
			continue
		}
		if err := hostnet.RemoveAddr(a.Interface, a.Address); err != nil {
			return err
		}
		d.log.Info("address removed", "interface", a.Interface, "address", a.Address)
	}
	if err := d.owned.update(func(o *owned) { o.Addresses = keep }); err != nil {
		return err
	}
	for _, a := range want {
		if slices.ContainsFunc(keep, func(o ownedAddr) bool { return o.Interface == ifname && o.Address == a }) {
			continue
		}
		added, err := hostnet.AddAddr(ifname, a)
		if err != nil {
			return err
		}
		if !added {
			continue
		}
		// Recorded before anything else happens, so a daemon killed now
		// leaves a record its successor can finish from.
		if err := d.owned.update(func(o *owned) {
			o.Addresses = append(o.Addresses, ownedAddr{Interface: ifname, Address: a})
		}); err != nil {
			return err
		}
		d.log.Info("address added", "interface", ifname, "address", a)
	}
	return nil
}

// setLocal writes the local addresses and ports to the datapath: replies
// are recognised on the whole port range, new connections get this node's
// slice of it (config.AllocPorts: the whole range without a cluster).
func (d *Daemon) setLocal(l config.Local) error {
	c := *d.cfg
	c.Local = l
	alloc := c.AllocPorts()
	return d.dp.SetLocal(l.Addresses, datapath.Ports{Min: l.Ports.Min, Max: l.Ports.Max},
		datapath.Ports{Min: alloc.Min, Max: alloc.Max})
}

// wantAddresses are the VIPs and local addresses, unless a peer may own
// them: in vrrp mode only the master has them, and in external mode
// keepalived adds and removes them itself.
func (d *Daemon) wantAddresses() []netip.Addr {
	switch {
	case d.cfg.HA.Mode == config.HAModeExternal:
		return nil
	case d.cfg.HA.Mode == config.HAModeVRRP && d.role != ha.RoleMaster:
		return nil
	}
	return slices.Concat(vips(d.cfg.Services), d.cfg.Local.Addresses, d.takenOver)
}

// addrInterface is where the addresses go: the HA interface (which
// defaults to the first one) when HA is on.
func (d *Daemon) addrInterface() string {
	if d.cfg.HAEnabled() {
		return d.cfg.HA.Interface
	}
	return d.cfg.Interfaces[0]
}

// restoreHost undoes prepareHost, prepareIPv6 and addAddresses.
func (d *Daemon) restoreHost() error {
	var errs []error
	rec := d.owned.snapshot()
	for _, a := range rec.Addresses {
		if err := hostnet.RemoveAddr(a.Interface, a.Address); err != nil {
			errs = append(errs, err)
		}
	}
	for name, was := range rec.Forwarding {
		if err := hostnet.RestoreForwarding(name, was); err != nil {
			errs = append(errs, err)
		}
	}
	for name, was := range rec.IPv6Forwarding {
		if err := hostnet.RestoreIPv6Forwarding(name, was); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
