package bench

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

const (
	protoTCP = 6
	protoUDP = 17
)

// packet describes an untagged IPv4 TCP or UDP frame.
type packet struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.AddrPort
	proto          uint8
	flags          uint8 // TCP only
	payload        int   // bytes of payload
}

// bytes serialises the frame with valid IP and L4 checksums.
func (p packet) bytes() []byte {
	l4len := 20
	if p.proto == protoUDP {
		l4len = 8
	}
	b := make([]byte, 14+20+l4len+p.payload)
	copy(b[0:6], p.dstMAC)
	copy(b[6:12], p.srcMAC)
	binary.BigEndian.PutUint16(b[12:], 0x0800)

	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len+p.payload))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	ip[9] = p.proto
	s, d := p.src.Addr().As4(), p.dst.Addr().As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip, 0)))

	l4 := b[34:]
	for i := range l4[l4len:] {
		l4[l4len+i] = byte(i)
	}
	binary.BigEndian.PutUint16(l4[0:], p.src.Port())
	binary.BigEndian.PutUint16(l4[2:], p.dst.Port())
	csumAt := 16
	if p.proto == protoUDP {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		csumAt = 6
	} else {
		binary.BigEndian.PutUint32(l4[4:], 1)
		if p.flags&tcpACK != 0 {
			binary.BigEndian.PutUint32(l4[8:], 1000)
		}
		l4[12] = 5 << 4
		l4[13] = p.flags
		binary.BigEndian.PutUint16(l4[14:], 64240)
	}
	pseudo := sum(s[:], 0)
	pseudo = sum(d[:], pseudo)
	pseudo += uint32(p.proto) + uint32(len(l4))
	c := ^fold(sum(l4, pseudo))
	if c == 0 && p.proto == protoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[csumAt:], c)
	return b
}

// sum adds b as big-endian 16-bit words to acc (the Internet checksum
// before folding).
func sum(b []byte, acc uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}
