package health

import (
	"bytes"
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

// vipProber proves the VIP answers on the backend, then runs then: for a
// TCP service a SYN to VIP:port, for a UDP one the check's own datagram
// (udp set), which then is the whole check.
type vipProber struct {
	backend netip.Addr
	path    VIPPath
	then    prober
	dial    DialFunc
	udp     *udpProber
}

func (p *vipProber) probe(ctx context.Context) error {
	var err error
	switch {
	case p.udp != nil && p.path.Local:
		return p.udp.probe(ctx)
	case p.udp != nil:
		err = p.exchange(ctx)
	case p.path.Local:
		err = (&tcpProber{addr: p.path.VIP.String(), dial: p.dial}).probe(ctx)
	default:
		err = p.synProbe(ctx)
	}
	if err != nil {
		return fmt.Errorf("the VIP %s on the backend: %w", p.path.VIP, err)
	}
	if p.udp != nil {
		return nil
	}
	return p.then.probe(ctx)
}

// self is this host's address the backend answers to, with a random port,
// and a random number.
func (p *vipProber) self() (netip.AddrPort, uint32, error) {
	src := p.path.Source
	if !src.IsValid() {
		s, err := sourceTowards(p.backend)
		if err != nil {
			return netip.AddrPort{}, 0, err
		}
		src = s
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return netip.AddrPort{}, 0, err
	}
	return netip.AddrPortFrom(src, 32768+binary.BigEndian.Uint16(rnd[:2])%28000), binary.BigEndian.Uint32(rnd[2:]), nil
}

// synProbe sends a SYN to the VIP along the clients' path and waits for
// the backend's answer from the VIP. The answer is read from a packet
// socket: where this host holds the VIP itself (a balancer announcing
// it), the kernel drops a packet from it as a martian before any IP
// socket could see it. A reset along the same path then closes the
// backend's half-open connection.
func (p *vipProber) synProbe(ctx context.Context) error {
	self, isn, err := p.self()
	if err != nil {
		return err
	}
	recv, err := answerSocket(unix.IPPROTO_TCP, p.path.VIP, self.Port())
	if err != nil {
		return err
	}
	defer unix.Close(recv)
	if err := p.send(segment(self, p.path.VIP, isn, tcpSYN), self.Addr()); err != nil {
		return err
	}
	err = await(ctx, recv, func(pkt []byte) (bool, error) {
		flags, ok := answerTo(pkt, p.path.VIP, self, isn)
		switch {
		case !ok:
			return false, nil
		case flags&tcpRST != 0:
			return true, fmt.Errorf("refused: nothing listens on port %d", p.path.VIP.Port())
		default:
			return flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK, nil
		}
	})
	if err == nil {
		err = p.send(segment(self, p.path.VIP, isn+1, tcpRST), self.Addr())
	}
	return err
}

// exchange sends the UDP check's datagram to the VIP along the clients'
// path and wants the backend's answer from the VIP, holding what the
// check expects. A UDP server that answers DSR clients is bound to the
// VIP (an answer from another address is not theirs): checking it at the
// backend's own address would fail or prove nothing.
func (p *vipProber) exchange(ctx context.Context) error {
	self, _, err := p.self()
	if err != nil {
		return err
	}
	recv, err := answerSocket(unix.IPPROTO_UDP, p.path.VIP, self.Port())
	if err != nil {
		return err
	}
	defer unix.Close(recv)
	if err := p.send(datagram(self, p.path.VIP, p.udp.payload), self.Addr()); err != nil {
		return err
	}
	return await(ctx, recv, func(pkt []byte) (bool, error) {
		payload, ok := datagramFrom(pkt, p.path.VIP, self)
		if ok && len(p.udp.expect) > 0 && !bytes.Contains(payload, p.udp.expect) {
			return true, fmt.Errorf("the reply does not contain %q", p.udp.expect)
		}
		return ok, nil
	})
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

// await reads what fd lets through until judge says it saw the answer
// (with its verdict), or ctx's deadline passes.
func await(ctx context.Context, fd int, judge func(pkt []byte) (bool, error)) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Second)
	}
	buf := make([]byte, 64<<10)
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
		if done, err := judge(buf[:n]); done {
			return err
		}
	}
}
