package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

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

// AddAddr puts addr on the interface as a host route (/32), so the kernel
// answers ARP for it. It does nothing and reports false if the host has the
// address already.
func AddAddr(ifname string, addr netip.Addr) (added bool, err error) {
	has, err := HostHas(addr)
	if err != nil || has {
		return false, err
	}
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := netlink.AddrAdd(l, hostAddr(addr)); err != nil {
		return false, fmt.Errorf("add %s to %s: %w", addr, ifname, err)
	}
	return true, nil
}

// RemoveAddr takes addr off the interface; an address already gone is not
// an error.
func RemoveAddr(ifname string, addr netip.Addr) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := netlink.AddrDel(l, hostAddr(addr)); err != nil && !errors.Is(err, errAddrNotAvail) {
		return fmt.Errorf("remove %s from %s: %w", addr, ifname, err)
	}
	return nil
}

func hostAddr(a netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}
}
