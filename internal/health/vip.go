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
	"golang.org/x/net/bpf"
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

// answerSocket is a packet socket that sees, on every interface, the IPv4
// TCP segments from vip to port: a classic BPF filter leaves the rest in
// the kernel.
func answerSocket(vip netip.AddrPort, port uint16) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return -1, fmt.Errorf("open a packet socket for the answer: %w", err)
	}
	a := vip.Addr().As4()
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP, SkipTrue: 7},
		bpf.LoadAbsolute{Off: 12, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: binary.BigEndian.Uint32(a[:]), SkipTrue: 5},
		bpf.LoadMemShift{Off: 0},
		bpf.LoadIndirect{Off: 0, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(vip.Port()), SkipTrue: 2},
		bpf.LoadIndirect{Off: 2, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: 1500},
	})
	if err == nil {
		filter := make([]unix.SockFilter, len(prog))
		for i, in := range prog {
			filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
		}
		err = unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("filter the packet socket: %w", err)
	}
	return fd, nil
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

func htons(v uint16) uint16 { return v<<8 | v>>8 }

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

// answerTo tells whether pkt (an IPv4 packet) is the TCP segment from vip
// to self acknowledging isn, and returns its flags.
func answerTo(pkt []byte, vip, self netip.AddrPort, isn uint32) (flags byte, ok bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != unix.IPPROTO_TCP {
		return 0, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+20 {
		return 0, false
	}
	src, dst := netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20]))
	tcp := pkt[ihl:]
	if src != vip.Addr() || dst != self.Addr() ||
		binary.BigEndian.Uint16(tcp[0:]) != vip.Port() || binary.BigEndian.Uint16(tcp[2:]) != self.Port() ||
		binary.BigEndian.Uint32(tcp[8:]) != isn+1 {
		return 0, false
	}
	return tcp[13], true
}

// segment is an IPv4 TCP segment with flags from src to dst with sequence
// seq and an MSS option, checksums included.
func segment(src, dst netip.AddrPort, seq uint32, flags byte) []byte {
	pkt := make([]byte, 20+24)
	ip, tcp := pkt[:20], pkt[20:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	ip[9] = unix.IPPROTO_TCP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], ^onesSum(0, ip))

	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 6 << 4 // 24 bytes: the header and the MSS option
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	copy(tcp[20:], []byte{2, 4, 0x05, 0xb4}) // MSS 1460
	pseudo := make([]byte, 12)
	copy(pseudo[0:], s[:])
	copy(pseudo[4:], d[:])
	pseudo[9] = unix.IPPROTO_TCP
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], ^onesSum(uint32(onesSum(0, pseudo)), tcp))
	return pkt
}

// encapsulate puts inner behind an outer IPv4 header from src to dst, as
// the datapath does (DF copied from the inner header, TTL 64).
func encapsulate(src, dst netip.Addr, proto byte, inner []byte) []byte {
	pkt := make([]byte, 20, 20+len(inner))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(20+len(inner)))
	binary.BigEndian.PutUint16(pkt[6:], 0x4000)
	pkt[8] = 64
	pkt[9] = proto
	s, d := src.As4(), dst.As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint16(pkt[10:], ^onesSum(0, pkt))
	return append(pkt, inner...)
}

// onesSum adds b to sum as 16-bit words, folded (RFC 1071).
func onesSum(sum uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
