package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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

// HostAddrs lists the IPv4 addresses configured on the host's interfaces.
func HostAddrs() ([]netip.Addr, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// AddAddr puts addr on the interface as a host route (/32 or /128), so
// the kernel answers ARP or neighbour solicitations for it. It does
// nothing and reports false if the host has the address already.
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

// hostAddr is a as a host route: /32, or /128 for IPv6. An IPv6 one skips
// duplicate address detection: the kernel would otherwise hold it
// tentative for a second or more, neither answering neighbour
// solicitations for it nor letting it be a source, and a VIP or local
// address is xdplb's to own, not one to negotiate.
func hostAddr(a netip.Addr) *netlink.Addr {
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}
	if a.Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	return addr
}

// Holder is an interface that has an address, with the prefix it has it
// with.
type Holder struct {
	Interface string
	Prefix    netip.Prefix
}

// Holders lists the interfaces that have addr, in any prefix length.
func Holders(addr netip.Addr) ([]Holder, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []Holder
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap() != addr {
			continue
		}
		ones, _ := a.Mask.Size()
		name := fmt.Sprintf("interface %d", a.LinkIndex)
		if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil {
			name = l.Attrs().Name
		}
		out = append(out, Holder{Interface: name, Prefix: netip.PrefixFrom(addr, ones)})
	}
	return out, nil
}

// AddAddrTo puts addr on the interface as a host route (/32 or /128),
// whatever other interfaces have: a DSR backend wants its VIPs on lo even
// where another interface has them too.
func AddAddrTo(ifname string, addr netip.Addr) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := netlink.AddrAdd(l, hostAddr(addr)); err != nil {
		return fmt.Errorf("add %s/%d to %s: %w", addr, addr.BitLen(), ifname, err)
	}
	return nil
}
