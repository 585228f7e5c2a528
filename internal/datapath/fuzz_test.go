package datapath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzFrames feeds arbitrary frames to the program. Whatever comes in, the
// verdict is one of the four it uses, a frame passed or dropped leaves
// unchanged, a forwarded one keeps its length, and an IPv4 header that
// arrived with a valid checksum leaves with one.
func FuzzFrames(f *testing.F) {
	fx := newFixture(f, 10000, 10999)
	for _, fr := range []frame{
		clientSYN(client, clientMAC, vip80),
		{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: netip.AddrPortFrom(vip, 53), udp: true, payload: []byte("q")},
		{srcMAC: rs1MAC, dstMAC: lbMAC, src: ap("172.19.0.2:80"), dst: ap("172.19.0.5:10000"), ack: true},
		{srcMAC: clientMAC, dstMAC: lbMAC, vlan: 7, src: client, dst: vip80, syn: true},
	} {
		f.Add(fr.bytes(f))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 || len(in) > 1500 {
			return // the kernel refuses frames shorter than Ethernet
		}
		var verdict uint32
		var out []byte
		var err error
		fx.nt.do(func() { verdict, out, _, err = fx.dp.Run(in, fx.lb0.ifindex, 1) })
		if err != nil {
			t.Fatalf("test run: %v", err)
		}
		switch verdict {
		case xdpPass, xdpDrop:
			if !bytes.Equal(in, out) {
				t.Fatalf("verdict %d changed the frame\n in: %x\nout: %x", verdict, in, out)
			}
		case xdpTX, xdpRedirect:
			if len(out) != len(in) {
				t.Fatalf("forwarded frame is %d bytes, was %d", len(out), len(in))
			}
			if l3 := ipv4Offset(in); l3 > 0 && ipv4HeaderValid(in[l3:]) && !ipv4HeaderValid(out[l3:]) {
				t.Fatalf("IPv4 checksum broken by the rewrite\n in: %x\nout: %x", in, out)
			}
		default:
			t.Fatalf("verdict %d", verdict)
		}
	})
}

// ipv4Offset is where the IPv4 header starts, 0 if the frame has none.
func ipv4Offset(b []byte) int {
	off, proto := 14, binary.BigEndian.Uint16(b[12:14])
	if proto == 0x8100 || proto == 0x88a8 {
		if len(b) < 18 {
			return 0
		}
		off, proto = 18, binary.BigEndian.Uint16(b[16:18])
	}
	if proto != 0x0800 || len(b) < off+20 {
		return 0
	}
	return off
}

// ipv4HeaderValid sums the header by RFC 791, independently of the
// program's incremental update.
func ipv4HeaderValid(h []byte) bool {
	ihl := int(h[0]&0x0f) * 4
	if ihl < 20 || len(h) < ihl {
		return false
	}
	var sum uint32
	for i := 0; i < ihl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}
