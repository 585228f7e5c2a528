package health

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The packets of the VIP probe (vip.go): built and read here, with
// checksums summed here, apart from the probe's logic.

// answerSocket is a packet socket that sees, on every interface, the IPv4
// packets of protocol proto (TCP or UDP) from vip to port: a classic BPF
// filter leaves the rest in the kernel.
func answerSocket(proto uint32, vip netip.AddrPort, port uint16) (int, error) {
	// Protocol 0 sees nothing until bound, which happens once the
	// filter is on: no unfiltered packet queues in between.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open a packet socket for the answer: %w", err)
	}
	a := vip.Addr().As4()
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: proto, SkipTrue: 7},
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
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP)})
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("filter the packet socket: %w", err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

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

// datagramFrom tells whether pkt (an IPv4 packet) is a UDP datagram from
// vip to self, and returns its payload.
func datagramFrom(pkt []byte, vip, self netip.AddrPort) ([]byte, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != unix.IPPROTO_UDP {
		return nil, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+8 {
		return nil, false
	}
	src, dst := netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20]))
	udp := pkt[ihl:]
	if src != vip.Addr() || dst != self.Addr() ||
		binary.BigEndian.Uint16(udp[0:]) != vip.Port() || binary.BigEndian.Uint16(udp[2:]) != self.Port() {
		return nil, false
	}
	end := min(int(binary.BigEndian.Uint16(udp[4:])), len(udp))
	if end < 8 {
		return nil, false
	}
	return udp[8:end], true
}

// datagram is an IPv4 UDP datagram from src to dst carrying payload,
// checksums included.
func datagram(src, dst netip.AddrPort, payload []byte) []byte {
	pkt := make([]byte, 28+len(payload))
	ip, udp := pkt[:20], pkt[20:]
	ipHeader(ip, src.Addr(), dst.Addr(), unix.IPPROTO_UDP, len(pkt))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	sum := ^onesSum(uint32(pseudoSum(src.Addr(), dst.Addr(), unix.IPPROTO_UDP, len(udp))), udp)
	if sum == 0 {
		sum = 0xffff // 0 would say "no checksum" (RFC 768)
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return pkt
}

// ipHeader writes a 20-byte IPv4 header with DF and TTL 64.
func ipHeader(ip []byte, src, dst netip.Addr, proto byte, total int) {
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	ip[9] = proto
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], ^onesSum(0, ip[:20]))
}

// pseudoSum is the folded sum of the TCP/UDP pseudo header.
func pseudoSum(src, dst netip.Addr, proto byte, length int) uint16 {
	pseudo := make([]byte, 12)
	s, d := src.As4(), dst.As4()
	copy(pseudo[0:], s[:])
	copy(pseudo[4:], d[:])
	pseudo[9] = proto
	binary.BigEndian.PutUint16(pseudo[10:], uint16(length))
	return onesSum(0, pseudo)
}

// segment is an IPv4 TCP segment with flags from src to dst with sequence
// seq and an MSS option, checksums included.
func segment(src, dst netip.AddrPort, seq uint32, flags byte) []byte {
	pkt := make([]byte, 20+24)
	ip, tcp := pkt[:20], pkt[20:]
	ipHeader(ip, src.Addr(), dst.Addr(), unix.IPPROTO_TCP, len(pkt))
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 6 << 4 // 24 bytes: the header and the MSS option
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	copy(tcp[20:], []byte{2, 4, 0x05, 0xb4}) // MSS 1460
	binary.BigEndian.PutUint16(tcp[16:], ^onesSum(uint32(pseudoSum(src.Addr(), dst.Addr(), unix.IPPROTO_TCP, len(tcp))), tcp))
	return pkt
}

// encapsulate puts inner behind an outer IPv4 header from src to dst, as
// the datapath does (DF copied from the inner header, TTL 64).
func encapsulate(src, dst netip.Addr, proto byte, inner []byte) []byte {
	pkt := make([]byte, 20, 20+len(inner))
	ipHeader(pkt, src, dst, proto, 20+len(inner))
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
