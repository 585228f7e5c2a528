package ha

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// ARP field values from RFC 826.
const (
	arpHardwareEthernet = 1
	arpOpRequest        = 1
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Announce sends one gratuitous ARP per IPv4 address in addrs out of ifname,
// so the neighbours on the segment point the address at this interface's
// MAC address. Each is an ARP request for the address itself (sender IP =
// target IP = addr, target MAC zero) to the broadcast address: a request
// rather than a reply because it is what RFC 5227 and keepalived send, and
// some hosts ignore unsolicited replies. Linux updates an entry it already
// has from either; it creates one only with arp_accept.
//
// IPv6 addresses are skipped: they need unsolicited neighbour
// advertisements, which are not implemented yet.
func Announce(ifname string, addrs []netip.Addr) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("gratuitous arp on %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("gratuitous arp on %s: not an Ethernet interface (hardware address %q)", ifname, ifi.HardwareAddr)
	}
	var v4 []netip.Addr
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, a)
		}
	}
	if len(v4) == 0 {
		return nil
	}

	// Protocol 0: the socket only sends, so the kernel queues nothing to it.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("gratuitous arp on %s: open packet socket: %w", ifname, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
	copy(to.Addr[:], broadcastMAC)

	var errs []error
	for _, a := range v4 {
		if err := unix.Sendto(fd, garpFrame(ifi.HardwareAddr, a), 0, to); err != nil {
			errs = append(errs, fmt.Errorf("gratuitous arp for %s on %s: %w", a, ifname, err))
		}
	}
	return errors.Join(errs...)
}

// garpFrame builds the Ethernet frame of a gratuitous ARP request for the
// IPv4 address addr from mac.
func garpFrame(mac net.HardwareAddr, addr netip.Addr) []byte {
	ip := addr.As4()
	f := make([]byte, 0, 42)
	f = append(f, broadcastMAC...)
	f = append(f, mac...)
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_ARP)
	f = binary.BigEndian.AppendUint16(f, arpHardwareEthernet)
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_IP)
	f = append(f, 6, 4) // hardware and protocol address lengths
	f = binary.BigEndian.AppendUint16(f, arpOpRequest)
	f = append(f, mac...)
	f = append(f, ip[:]...)
	f = append(f, 0, 0, 0, 0, 0, 0) // target MAC: unknown, as in any request
	f = append(f, ip[:]...)
	return f
}

// htons converts to network byte order, which sockaddr_ll's protocol field
// is in.
func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}
