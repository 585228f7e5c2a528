package datapath

import (
	"bytes"
	"cmp"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// frame describes a test packet. It is serialised by gopacket, whose
// checksum code is independent of the datapath's incremental updates, so an
// expected frame built here checks the program's checksums byte for byte.
type frame struct {
	srcMAC, dstMAC net.HardwareAddr
	vlan           uint16 // 0: untagged
	src, dst       netip.AddrPort
	udp            bool
	syn, ack, fin  bool
	rst            bool
	seq            uint32
	payload        []byte
	ipOptions      []layers.IPv4Option
	moreFragments  bool
	fragOffset     uint16
	zeroUDPCsum    bool
	ttl            uint8 // 0: 64, or 63 in a frame from the balancer (forwarded: one hop less)
	psh            bool
	ackNum         uint32 // with ack: 0 means 1000
	tcpOptions     []layers.TCPOption
}

// network is the IP layer of f, IPv4 or IPv6 as its addresses are, with
// the EtherType that announces it and a setter of its upper protocol.
func (f frame) network() (gopacket.NetworkLayer, layers.EthernetType, func(layers.IPProtocol)) {
	ttl := uint8(64)
	if bytes.Equal(f.srcMAC, lbMAC) || bytes.Equal(f.srcMAC, lb1MAC) {
		ttl = 63
	}
	if f.src.Addr().Is6() {
		ip := &layers.IPv6{
			Version: 6, HopLimit: cmp.Or(f.ttl, ttl), FlowLabel: 0x12345,
			SrcIP: f.src.Addr().AsSlice(), DstIP: f.dst.Addr().AsSlice(),
		}
		return ip, layers.EthernetTypeIPv6, func(p layers.IPProtocol) { ip.NextHeader = p }
	}
	ip := &layers.IPv4{
		Version: 4, TTL: cmp.Or(f.ttl, ttl), Id: 0x1234,
		SrcIP: f.src.Addr().AsSlice(), DstIP: f.dst.Addr().AsSlice(),
		Options: f.ipOptions, FragOffset: f.fragOffset,
	}
	if f.moreFragments {
		ip.Flags = layers.IPv4MoreFragments
	} else {
		ip.Flags = layers.IPv4DontFragment
	}
	return ip, layers.EthernetTypeIPv4, func(p layers.IPProtocol) { ip.Protocol = p }
}

func (f frame) bytes(t testing.TB) []byte {
	t.Helper()
	ip, ethType, setProto := f.network()
	eth := &layers.Ethernet{SrcMAC: f.srcMAC, DstMAC: f.dstMAC, EthernetType: ethType}
	var stack []gopacket.SerializableLayer
	if f.vlan != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		stack = append(stack, eth, &layers.Dot1Q{VLANIdentifier: f.vlan, Type: ethType})
	} else {
		stack = append(stack, eth)
	}
	stack = append(stack, ip.(gopacket.SerializableLayer))
	if f.udp {
		setProto(layers.IPProtocolUDP)
		u := &layers.UDP{SrcPort: layers.UDPPort(f.src.Port()), DstPort: layers.UDPPort(f.dst.Port())}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		stack = append(stack, u)
	} else {
		setProto(layers.IPProtocolTCP)
		tcp := &layers.TCP{
			SrcPort: layers.TCPPort(f.src.Port()), DstPort: layers.TCPPort(f.dst.Port()),
			Seq: f.seq, SYN: f.syn, ACK: f.ack, FIN: f.fin, RST: f.rst, PSH: f.psh, Window: 64240,
			Options: f.tcpOptions,
		}
		if f.ack {
			tcp.Ack = cmp.Or(f.ackNum, 1000)
		}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		stack = append(stack, tcp)
	}
	stack = append(stack, gopacket.Payload(f.payload))
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, stack...); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if f.udp && f.zeroUDPCsum {
		l4 := len(out) - len(f.payload) - 8
		out[l4+6], out[l4+7] = 0, 0
	}
	return out
}

func mac(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
