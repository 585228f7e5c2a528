package daemon

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/xdplb/xdplb/internal/hostnet"
)

func (d *Daemon) ownedPath() string {
	return filepath.Join(filepath.Dir(d.cfg.API.Socket), "xdplb.owned.json")
}

// prepareHost turns forwarding on for the balancing interfaces (remembering
// what it was, or taking over what a predecessor remembered) and records
// it.
func (d *Daemon) prepareHost(prev owned) error {
	d.owned = owned{Addresses: prev.Addresses, Forwarding: map[string]string{}}
	for _, name := range d.cfg.Interfaces {
		was, err := hostnet.EnableForwarding(name)
		if err != nil {
			return err
		}
		if before, ok := prev.Forwarding[name]; ok {
			was = before
		}
		d.owned.Forwarding[name] = was
	}
	return d.owned.write(d.ownedPath())
}

// addAddresses makes the kernel answer ARP for the VIPs and local
// addresses. Addresses a predecessor added stay xdplb's; addresses it added
// that the config no longer names are removed.
func (d *Daemon) addAddresses() error {
	ifname := d.cfg.Interfaces[0]
	want := append(vips(d.cfg.Services), d.cfg.Local.Addresses...)
	var keep []ownedAddr
	for _, a := range d.owned.Addresses {
		if a.Interface == ifname && contains(want, a.Address) {
			keep = append(keep, a)
			continue
		}
		if err := hostnet.RemoveAddr(a.Interface, a.Address); err != nil {
			return err
		}
		d.log.Info("address removed", "interface", a.Interface, "address", a.Address)
	}
	d.owned.Addresses = keep
	for _, a := range want {
		if d.owned.hasAddr(ifname, a) {
			continue
		}
		added, err := hostnet.AddAddr(ifname, a)
		if err != nil {
			return err
		}
		if added {
			d.owned.Addresses = append(d.owned.Addresses, ownedAddr{Interface: ifname, Address: a})
			d.log.Info("address added", "interface", ifname, "address", a)
		}
	}
	return d.owned.write(d.ownedPath())
}

// restoreHost undoes prepareHost and addAddresses.
func (d *Daemon) restoreHost() error {
	var errs []error
	for _, a := range d.owned.Addresses {
		if err := hostnet.RemoveAddr(a.Interface, a.Address); err != nil {
			errs = append(errs, err)
		}
	}
	for name, was := range d.owned.Forwarding {
		if err := hostnet.RestoreForwarding(name, was); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(d.ownedPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func contains(addrs []netip.Addr, a netip.Addr) bool {
	for _, x := range addrs {
		if x == a {
			return true
		}
	}
	return false
}
