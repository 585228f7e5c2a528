package decap

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// tunnel is how a test frame wraps its inner packet.
type tunnel int

const (
	plain tunnel = iota // no wrapping: the inner packet is the frame's
	ipip
	gue
)

// frame describes a test frame: Ethernet (with a tag if vlan is set), an
// outer IPv4 header with a tunnel, and the inner packet as given. The
// Ethernet header is written by hand: gopacket pads short frames to 60
// bytes, which would change the truncated inner packets the tests want.
type frame struct {
	vlan      uint16 // 0: untagged
	qinq      bool   // an 802.1AD tag instead of 802.1Q
	etherType uint16 // 0: IPv4
	tunnel    tunnel
	src, dst  netip.Addr
	udpPort   uint16 // the outer UDP destination port of gue
	options   bool   // the outer header has an option
	fragment  bool   // the outer header is a first fragment
	inner     []byte
	cut       int // > 0: the frame ends after cut bytes
}

var (
	dstMAC = []byte{0x02, 0, 0, 0, 0, 0x02}
	srcMAC = []byte{0x02, 0, 0, 0, 0, 0x01}
)

// l2 is the frame's Ethernet header, tag included.
func (f frame) l2() []byte {
	b := append(append([]byte{}, dstMAC...), srcMAC...)
	if f.vlan != 0 {
		tpid := uint16(0x8100)
		if f.qinq {
			tpid = 0x88a8
		}
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, f.vlan)
	}
	et := f.etherType
	if et == 0 {
		et = 0x0800
	}
	return binary.BigEndian.AppendUint16(b, et)
}

func (f frame) bytes(t testing.TB) []byte {
	t.Helper()
	b := f.wrapped(t)
	if f.cut > 0 {
		b = b[:f.cut]
	}
	return b
}

func (f frame) wrapped(t testing.TB) []byte {
	t.Helper()
	if f.tunnel == plain {
		return append(f.l2(), f.inner...)
	}
	ip := &layers.IPv4{
		Version: 4, TTL: 64, Id: 0x4242, Flags: layers.IPv4DontFragment,
		SrcIP: f.src.AsSlice(), DstIP: f.dst.AsSlice(),
	}
	if f.options {
		// Router alert: 4 bytes, so no padding.
		ip.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}}
	}
	if f.fragment {
		ip.Flags = layers.IPv4MoreFragments
	}
	stack := []gopacket.SerializableLayer{ip}
	if f.tunnel == ipip {
		ip.Protocol = layers.IPProtocolIPv4
	} else {
		ip.Protocol = layers.IPProtocolUDP
		// The balancer varies the source port per connection.
		u := &layers.UDP{SrcPort: 49152, DstPort: layers.UDPPort(f.udpPort)}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		stack = append(stack, u)
	}
	stack = append(stack, gopacket.Payload(f.inner))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, stack...); err != nil {
		t.Fatal(err)
	}
	return append(f.l2(), buf.Bytes()...)
}

// decapsulated is what the frame should be after decapsulation: its
// Ethernet header, then the inner packet.
func (f frame) decapsulated() []byte {
	return append(f.l2(), f.inner...)
}

// packet describes an inner packet: the client's, to a VIP.
type packet struct {
	src, dst netip.AddrPort
	tcp      bool
	ttl      uint8 // 0: 64
	payload  []byte
}

func (p packet) bytes(t testing.TB) []byte {
	t.Helper()
	ttl := p.ttl
	if ttl == 0 {
		ttl = 64
	}
	ip := &layers.IPv4{
		Version: 4, TTL: ttl, Id: 0x1234, Flags: layers.IPv4DontFragment,
		SrcIP: p.src.Addr().AsSlice(), DstIP: p.dst.Addr().AsSlice(),
	}
	var l4 interface {
		gopacket.SerializableLayer
		SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
	}
	if p.tcp {
		ip.Protocol = layers.IPProtocolTCP
		l4 = &layers.TCP{SrcPort: layers.TCPPort(p.src.Port()), DstPort: layers.TCPPort(p.dst.Port()),
			Seq: 1000, SYN: true, Window: 64240}
	} else {
		ip.Protocol = layers.IPProtocolUDP
		l4 = &layers.UDP{SrcPort: layers.UDPPort(p.src.Port()), DstPort: layers.UDPPort(p.dst.Port())}
	}
	if err := l4.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, l4, gopacket.Payload(p.payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ipv6Packet is a UDP datagram in IPv6, to put where IPv4 belongs.
func ipv6Packet(t testing.TB) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: netip.MustParseAddr("2001:db8::1").AsSlice(), DstIP: netip.MustParseAddr("2001:db8::100").AsSlice()}
	u := &layers.UDP{SrcPort: 40000, DstPort: 53}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, u, gopacket.Payload("query")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
