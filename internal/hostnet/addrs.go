package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// AddedAddr is an address this process put on an interface.
type AddedAddr struct {
	Link netlink.Link
	Addr netip.Addr
}

// HostHas reports whether addr is configured on any interface already.
func HostHas(addr netip.Addr) (bool, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return false, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			return true, nil
		}
	}
	return false, nil
}

// AddAddrs puts each address on the interface as a /32, so the kernel
// answers ARP for it, skipping those the host already has. It returns what
// it added, for RemoveAddrs.
func AddAddrs(ifname string, addrs []netip.Addr) ([]AddedAddr, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	var added []AddedAddr
	for _, a := range addrs {
		has, err := HostHas(a)
		if err != nil {
			return added, err
		}
		if has {
			continue
		}
		ipn := &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
			return added, fmt.Errorf("add %s to %s: %w", a, ifname, err)
		}
		added = append(added, AddedAddr{Link: l, Addr: a})
	}
	return added, nil
}

// RemoveAddrs takes away addresses AddAddrs added.
func RemoveAddrs(added []AddedAddr) error {
	var errs []error
	for _, a := range added {
		ipn := &net.IPNet{IP: a.Addr.AsSlice(), Mask: net.CIDRMask(a.Addr.BitLen(), a.Addr.BitLen())}
		if err := netlink.AddrDel(a.Link, &netlink.Addr{IPNet: ipn}); err != nil {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", a.Addr, a.Link.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}
