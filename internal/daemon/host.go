package daemon

import (
	"errors"
	"slices"

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
	return d.owned.update(func(o *owned) { o.Forwarding = forwarding })
}

// addAddresses makes the kernel answer ARP for the VIPs and local
// addresses. Addresses a predecessor added stay xdplb's; addresses it added
// that the config no longer names are removed.
func (d *Daemon) addAddresses() error {
	ifname := d.cfg.Interfaces[0]
	want := append(vips(d.cfg.Services), d.cfg.Local.Addresses...)
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

// restoreHost undoes prepareHost and addAddresses.
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
	return errors.Join(errs...)
}
