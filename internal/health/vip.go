package health

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VIPPath is how a direct-server-return service's packets reach a backend:
// addressed to the VIP, which the backend must hold itself. A backend
// without it would still pass checks sent to its own address while the
// clients' packets, to the VIP, go nowhere. So a check of such a backend
// first sends a SYN to VIP:port along the clients' path and wants the
// backend's SYN-ACK from the VIP; then the check's own kind runs.
type VIPPath struct {
	// Mode is "dsr-l2", "dsr-ipip" or "dsr-gue" (config.Forwarding*).
	Mode string
	// VIP is the address the SYN is sent to, with the service's port.
	VIP netip.AddrPort
	// Source is this host's address the backend answers to: the
	// tunnels' outer source, or for dsr-l2 the host's address towards
	// the backend when unset.
	Source netip.Addr
	// GUEPort is dsr-gue's UDP port.
	GUEPort uint16
	// Local: the backend is this host, which gets the clients' packets
	// through its own stack; the SYN goes to the VIP the same way.
	Local bool
}

// vipProber proves the VIP answers on the backend, then runs then.
type vipProber struct {
	backend netip.Addr
	path    VIPPath
	then    prober
	dial    DialFunc
}

func (p *vipProber) probe(ctx context.Context) error {
	var err error
	if p.path.Local {
		err = (&tcpProber{addr: p.path.VIP.String(), dial: p.dial}).probe(ctx)
	} else {
		err = p.synProbe(ctx)
	}
	if err != nil {
		return fmt.Errorf("the VIP %s on the backend: %w", p.path.VIP, err)
	}
	return p.then.probe(ctx)
}

// synProbe sends a SYN to the VIP along the clients' path and waits for
// the backend's answer from the VIP. The answer is read from a packet
// socket: where this host holds the VIP itself (a balancer announcing
// it), the kernel drops a packet from it as a martian before any IP
// socket could see it. A reset along the same path then closes the
// backend's half-open connection.
func (p *vipProber) synProbe(ctx context.Context) error {
	src := p.path.Source
	if !src.IsValid() {
		s, err := sourceTowards(p.backend)
		if err != nil {
			return err
		}
		src = s
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	sport := 32768 + binary.BigEndian.Uint16(rnd[:2])%28000
	isn := binary.BigEndian.Uint32(rnd[2:])
	self := netip.AddrPortFrom(src, sport)
	recv, err := answerSocket(p.path.VIP, sport)
	if err != nil {
		return err
	}
	defer unix.Close(recv)
	if err := p.send(segment(self, p.path.VIP, isn, tcpSYN), src); err != nil {
		return err
	}
	err = awaitSYNACK(ctx, recv, p.path.VIP, self, isn)
	if err == nil {
		err = p.send(segment(self, p.path.VIP, isn+1, tcpRST), src)
	}
	return err
}

// send sends a segment as the datapath sends a client's packet.
func (p *vipProber) send(syn []byte, src netip.Addr) error {
	switch p.path.Mode {
	case "dsr-ipip":
		return sendIPv4(encapsulate(src, p.backend, unix.IPPROTO_IPIP, syn), p.backend)
	case "dsr-gue":
		udp := make([]byte, 8, 8+len(syn))
		binary.BigEndian.PutUint16(udp[0:], 49152+binary.BigEndian.Uint16(syn[20:])%16384)
		binary.BigEndian.PutUint16(udp[2:], p.path.GUEPort)
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(syn)))
		return sendIPv4(encapsulate(src, p.backend, unix.IPPROTO_UDP, append(udp, syn...)), p.backend)
	default:
		return sendToMAC(syn, p.backend)
	}
}

// sourceTowards is the address the kernel would send from to addr.
func sourceTowards(addr netip.Addr) (netip.Addr, error) {
	routes, err := netlink.RouteGet(addr.AsSlice())
	if err != nil || len(routes) == 0 {
		return netip.Addr{}, fmt.Errorf("no route to the backend %s: %v", addr, err)
	}
	src, ok := netip.AddrFromSlice(routes[0].Src)
	if !ok {
		return netip.Addr{}, fmt.Errorf("the route to the backend %s has no source address", addr)
	}
	return src.Unmap(), nil
}

// sendIPv4 sends a whole IPv4 packet, header included, routed by the
// kernel towards dst.
func sendIPv4(pkt []byte, dst netip.Addr) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("open a raw socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return fmt.Errorf("send to %s: %w", dst, err)
	}
	return nil
}

// sendToMAC sends the IPv4 packet pkt (to the VIP) to the backend's MAC,
// as dsr-l2 does. The backend must be on a link of this host, its
// neighbour entry resolved (the daemon keeps the backends' resolved).
func sendToMAC(pkt []byte, backend netip.Addr) error {
	routes, err := netlink.RouteGet(backend.AsSlice())
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("no route to the backend %s: %v", backend, err)
	}
	if routes[0].Gw != nil {
		return fmt.Errorf("the backend %s is behind the router %s: dsr-l2 needs it on a link of this host", backend, routes[0].Gw)
	}
	ifindex := routes[0].LinkIndex
	neighs, err := netlink.NeighList(ifindex, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list neighbours: %w", err)
	}
	var mac net.HardwareAddr
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == backend && len(n.HardwareAddr) == 6 &&
			n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
			mac = n.HardwareAddr
		}
	}
	if mac == nil {
		return fmt.Errorf("the backend %s's MAC address is not resolved yet", backend)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open a packet socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifindex, Halen: 6}
	copy(to.Addr[:], mac)
	if err := unix.Sendto(fd, pkt, 0, to); err != nil {
		return fmt.Errorf("send to %s (%s): %w", backend, mac, err)
	}
	return nil
}

// awaitSYNACK reads TCP segments until the one from vip to self that
// answers the SYN of sequence isn: a SYN-ACK passes, a reset means nothing
// listens on the VIP's port.
func awaitSYNACK(ctx context.Context, fd int, vip, self netip.AddrPort, isn uint32) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Second)
	}
	buf := make([]byte, 1500)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("no answer from the VIP: is it configured on the backend (xdplb backend-prep)?")
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read the answer: %w", err)
		}
		flags, ok := answerTo(buf[:n], vip, self, isn)
		switch {
		case !ok:
		case flags&tcpRST != 0:
			return fmt.Errorf("refused: nothing listens on port %d", vip.Port())
		case flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
			return nil
		}
	}
}

const (
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)
