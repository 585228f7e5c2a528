package health

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestVIPProbePackets: the probe's SYN, bare and inside IPIP, is what
// gopacket (whose checksum code is independent) reads as valid, and an
// answer is matched on addresses, ports and acknowledgement only.
func TestVIPProbePackets(t *testing.T) {
	src, vip := netip.MustParseAddrPort("10.0.0.5:40000"), netip.MustParseAddrPort("10.0.0.10:80")
	syn := segment(src, vip, 1000, tcpSYN)
	outer := encapsulate(src.Addr(), netip.MustParseAddr("10.0.0.2"), 4, syn)

	pkt := gopacket.NewPacket(outer, layers.LayerTypeIPv4, gopacket.Default)
	ips := []*layers.IPv4{}
	for _, l := range pkt.Layers() {
		if ip, ok := l.(*layers.IPv4); ok {
			ips = append(ips, ip)
		}
	}
	if len(ips) != 2 || ips[0].Protocol != layers.IPProtocolIPv4 || ips[1].DstIP.String() != "10.0.0.10" {
		t.Fatalf("decoded %v, want IPv4 in IPv4 to 10.0.0.10", pkt)
	}
	for i, ip := range ips {
		hdr := outer[i*20 : i*20+20]
		if onesSum(0, hdr) != 0xffff {
			t.Errorf("IPv4 header %d: checksum %#04x does not verify", i, ip.Checksum)
		}
	}
	tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok || !tcp.SYN || tcp.ACK || tcp.Seq != 1000 || tcp.DstPort != 80 || tcp.SrcPort != 40000 {
		t.Fatalf("TCP layer %+v, want a SYN 40000 -> 80 seq 1000", tcp)
	}
	pseudo := make([]byte, 12)
	copy(pseudo, syn[12:20])
	pseudo[9] = 6
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(syn)-20))
	if onesSum(uint32(onesSum(0, pseudo)), syn[20:]) != 0xffff {
		t.Errorf("TCP checksum %#04x does not verify", tcp.Checksum)
	}

	answer := func(from, to netip.AddrPort, ack uint32, flags byte) []byte {
		p := segment(from, to, 5000, 0)
		binary.BigEndian.PutUint32(p[28:], ack)
		p[33] = flags
		return p
	}
	for _, c := range []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"the SYN-ACK", answer(vip, src, 1001, tcpSYN|tcpACK), true},
		{"a reset", answer(vip, src, 1001, tcpRST|tcpACK), true},
		{"another acknowledgement", answer(vip, src, 7, tcpSYN|tcpACK), false},
		{"from the backend's own address", answer(netip.MustParseAddrPort("10.0.0.2:80"), src, 1001, tcpSYN|tcpACK), false},
		{"to another port", answer(vip, netip.MustParseAddrPort("10.0.0.5:40001"), 1001, tcpSYN|tcpACK), false},
		{"truncated", answer(vip, src, 1001, tcpSYN|tcpACK)[:30], false},
	} {
		if _, ok := answerTo(c.pkt, vip, src, 1000); ok != c.ok {
			t.Errorf("%s: matched %v, want %v", c.name, ok, c.ok)
		}
	}
}

// TestVIPProbeDatagram: the UDP probe's datagram is valid to gopacket, and
// an answer is its payload only from the VIP's port to the probe's.
func TestVIPProbeDatagram(t *testing.T) {
	src, vip := netip.MustParseAddrPort("10.0.0.5:40000"), netip.MustParseAddrPort("10.0.0.10:53")
	d := datagram(src, vip, []byte("ping"))
	pkt := gopacket.NewPacket(d, layers.LayerTypeIPv4, gopacket.Default)
	udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if !ok || string(udp.Payload) != "ping" || udp.SrcPort != 40000 || udp.DstPort != 53 {
		t.Fatalf("decoded %v, want a UDP datagram 40000 -> 53 with ping", pkt)
	}
	if onesSum(0, d[:20]) != 0xffff {
		t.Error("IPv4 header checksum does not verify")
	}
	if onesSum(uint32(pseudoSum(src.Addr(), vip.Addr(), 17, len(d)-20)), d[20:]) != 0xffff {
		t.Errorf("UDP checksum %#04x does not verify", udp.Checksum)
	}
	answer := datagram(vip, src, []byte("pong"))
	if got, ok := datagramFrom(answer, vip, src); !ok || string(got) != "pong" {
		t.Errorf("the answer read as %q, %v; want pong", got, ok)
	}
	if _, ok := datagramFrom(datagram(netip.MustParseAddrPort("10.0.0.2:53"), src, nil), vip, src); ok {
		t.Error("a datagram from the backend's own address was taken for the VIP's")
	}
	if _, ok := datagramFrom(d, vip, src); ok {
		t.Error("the probe's own datagram was taken for the answer")
	}
}
