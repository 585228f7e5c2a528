package datapath

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/ident"
)

// DSR services of the tests, on top of the fixture's: their ids and ring
// slots follow the fixture's.
const (
	dsrSvcBase  = 40
	dsrSlotBase = 200
	dsrIDBase   = 200
	guePort     = 6080
)

var (
	encapSource = localAddr
	offLink     = ap("198.51.100.7:95") // routed through rs2: not on a link
)

type dsrService struct {
	port     uint16
	mode     Forwarding
	backends []netip.AddrPort
	index    Index
}

var dsrServices = []dsrService{
	{port: 90, mode: DSRIPIP, backends: []netip.AddrPort{ap("172.19.0.2:90")}},
	{port: 91, mode: DSRGUE, backends: []netip.AddrPort{ap("172.19.0.2:91")}},
	{port: 92, mode: DSRL2, backends: []netip.AddrPort{ap("172.19.0.2:92")}},
	{port: 93, mode: DSRGUE, backends: []netip.AddrPort{netip.AddrPortFrom(localAddr, 93)}},
	{port: 95, mode: DSRL2, backends: []netip.AddrPort{offLink}},
	{port: 96, mode: DSRIPIP, backends: []netip.AddrPort{ap("172.19.0.2:96"), ap("172.19.0.3:96")}, index: IndexTupleHash},
}

// newDSRFixture is the fixture with the DSR services above, this host's
// address (localAddr) known as such, and a route to offLink's network
// through rs2.
func newDSRFixture(t testing.TB, decapFrom ...netip.Addr) *fixture {
	t.Helper()
	f := newFixture(t, 10000, 60000)
	if err := f.dp.SetHostAddrs([]netip.Addr{localAddr}); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.SetDSR(DSRSettings{EncapSource: encapSource, GUEPort: guePort, DecapSources: decapFrom}); err != nil {
		t.Fatal(err)
	}
	var err error
	f.nt.do(func() {
		_, dst, _ := net.ParseCIDR("198.51.100.0/24")
		err = netlink.RouteAdd(&netlink.Route{LinkIndex: f.lb0.ifindex, Dst: dst, Gw: net.IP{172, 19, 0, 3}})
	})
	if err != nil {
		t.Fatal(err)
	}
	id, slot := uint32(dsrIDBase), uint32(dsrSlotBase)
	for i, s := range dsrServices {
		svcID := uint32(dsrSvcBase + i)
		var ids []uint32
		for _, b := range s.backends {
			if err := f.dp.SetBackend(id, svcID, b, false); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
			id++
		}
		if err := f.dp.WriteRing(slot, ids); err != nil {
			t.Fatal(err)
		}
		key := ident.Service{VIP: vip, Port: s.port, Proto: ident.TCP}
		if err := f.dp.SetService(key, Service{ID: svcID, Ring: Ring{Offset: slot, Len: uint32(len(ids))}, Index: s.index, Forwarding: s.mode}); err != nil {
			t.Fatal(err)
		}
		slot += uint32(len(ids))
	}
	return f
}

// encapsulated is inner (an IPv4 packet, and the frame's padding after
// it, which stays where it was) inside an outer IPv4 header from
// encapSource to dst, and for GUE a UDP header from sport, as the frame
// leaves for dstMAC. The checksums are gopacket's.
func encapsulated(t *testing.T, dstMAC net.HardwareAddr, dst netip.Addr, gue bool, sport uint16, inner []byte) []byte {
	t.Helper()
	return encapsulatedTagged(t, 0, dstMAC, dst, gue, sport, inner)
}

// encapsulatedTagged is encapsulated in a frame tagged for VLAN vlan (0:
// untagged).
func encapsulatedTagged(t *testing.T, vlan uint16, dstMAC net.HardwareAddr, dst netip.Addr, gue bool, sport uint16, inner []byte) []byte {
	t.Helper()
	padding := inner[min(int(binary.BigEndian.Uint16(inner[2:])), len(inner)):]
	inner = inner[:len(inner)-len(padding)]
	payload := inner
	proto := layers.IPProtocolIPv4
	if gue {
		proto = layers.IPProtocolUDP
		udp := make([]byte, 8, 8+len(inner))
		binary.BigEndian.PutUint16(udp[0:], sport)
		binary.BigEndian.PutUint16(udp[2:], guePort)
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(inner)))
		payload = append(udp, inner...) // checksum 0: none
	}
	outer := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: proto,
		SrcIP: encapSource.AsSlice(), DstIP: dst.AsSlice()}
	return append(serialize(t, vlan, lbMAC, dstMAC, outer, gopacket.Payload(payload)), padding...)
}

// serialize is an Ethernet frame from src to dst, tagged for vlan if not
// 0, with the layers after it; gopacket fills in lengths and checksums.
func serialize(t *testing.T, vlan uint16, src, dst net.HardwareAddr, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	stack := []gopacket.SerializableLayer{eth}
	if vlan != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		stack = append(stack, &layers.Dot1Q{VLANIdentifier: vlan, Type: layers.EthernetTypeIPv4})
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, append(stack, ls...)...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dsrSYN is a client's SYN to the VIP's port, and the IPv4 packet in it.
func dsrSYN(t *testing.T, c netip.AddrPort, port uint16) (in, inner []byte) {
	t.Helper()
	in = clientSYN(c, clientMAC, netip.AddrPortFrom(vip, port)).bytes(t)
	return in, in[14:]
}

func (f *fixture) dsrForward(t *testing.T, c netip.AddrPort, port uint16) xdplbCtFwd {
	t.Helper()
	return f.forwardTo(t, c, port)
}

// TestDSRTunnels: IPIP and GUE leave the client's packet as it was inside
// an outer header from the encapsulation source to the backend; GUE's
// source port comes from the flow's hash, so one flow keeps one port. The
// connection has its forward half only, and no local port.
func TestDSRTunnels(t *testing.T) {
	f := newDSRFixture(t)
	c := clientN(1)

	in, inner := dsrSYN(t, c, 90)
	f.run(t, in, f.lb0.ifindex, xdpTX, encapsulated(t, rs1MAC, rs1HTTP.Addr(), false, 0, inner), "fwd_encap")
	fwd := f.dsrForward(t, c, 90)
	if Forwarding(fwd.Flags&xdplbCtFwdFlagsCT_FWD_MODE) != DSRIPIP || fwd.LocalAddr != 0 || fwd.LocalPort != 0 {
		t.Errorf("forward half %+v: want mode dsr-ipip and no local address:port", fwd)
	}
	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: c, dst: netip.AddrPortFrom(vip, 90), ack: true, seq: 101, payload: []byte("GET /")}
	ackIn := ack.bytes(t)
	f.run(t, ackIn, f.lb0.ifindex, xdpTX, encapsulated(t, rs1MAC, rs1HTTP.Addr(), false, 0, ackIn[14:]), "fwd_encap")
	if got := f.dsrForward(t, c, 90); State(got.State) != StateEstablished {
		t.Errorf("state after the client's ACK: %s, want ESTABLISHED", State(got.State))
	}
	var rev xdplbCtRev
	var rk xdplbCtKey
	if it := f.dp.objs.CtReverse.Iterate(); it.Next(&rk, &rev) {
		t.Errorf("a DSR connection made a reverse half %+v", rk)
	}

	in, inner = dsrSYN(t, c, 91)
	sport := uint16(49152 + refFlowHash(c, netip.AddrPortFrom(vip, 91), TCP, false)&16383)
	f.run(t, in, f.lb0.ifindex, xdpTX, encapsulated(t, rs1MAC, rs1HTTP.Addr(), true, sport, inner), "fwd_encap")
	other := clientN(2)
	in, inner = dsrSYN(t, other, 91)
	otherPort := uint16(49152 + refFlowHash(other, netip.AddrPortFrom(vip, 91), TCP, false)&16383)
	if otherPort == sport {
		t.Fatalf("test flows hash alike (%d): pick other clients", sport)
	}
	f.run(t, in, f.lb0.ifindex, xdpTX, encapsulated(t, rs1MAC, rs1HTTP.Addr(), true, otherPort, inner), "fwd_encap")
}

// TestDSRL2: dsr-l2 changes the MACs and takes one from the TTL (a packet
// with none left is dropped), nothing else; a backend behind a router is
// refused, as the router would send the packet back to the VIP.
func TestDSRL2(t *testing.T) {
	f := newDSRFixture(t)
	syn := clientSYN(clientN(1), clientMAC, netip.AddrPortFrom(vip, 92))
	want := syn
	want.srcMAC, want.dstMAC = lbMAC, rs1MAC // and one hop less
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_dsr_l2")
	last := syn
	last.src, last.ttl = clientN(3), 1
	f.run(t, last.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_ttl")

	in, _ := dsrSYN(t, clientN(2), 95)
	f.run(t, in, f.lb0.ifindex, xdpDrop, nil, "drop_dsr_not_onlink")
}

// TestDSRLocalBackend: a backend that is this host gets the packet through
// the host's stack, unchanged (co-located mode), established or new.
func TestDSRLocalBackend(t *testing.T) {
	f := newDSRFixture(t)
	c := clientN(1)
	in, _ := dsrSYN(t, c, 93)
	f.run(t, in, f.lb0.ifindex, xdpPass, nil, "pass_local_backend")
	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: c, dst: netip.AddrPortFrom(vip, 93), ack: true, seq: 101}
	f.run(t, ack.bytes(t), f.lb0.ifindex, xdpPass, nil, "pass_local_backend")
	if fwd := f.dsrForward(t, c, 93); fwd.Flags&xdplbCtFwdFlagsCT_FWD_LOCAL == 0 {
		t.Errorf("forward half %+v is not marked local", fwd)
	}

	// This host's address changes: the backend is not local any more.
	if err := f.dp.SetHostAddrs(nil); err != nil {
		t.Fatal(err)
	}
	var be xdplbBackend
	if err := f.dp.objs.Backends.Lookup(uint32(dsrIDBase+3), &be); err != nil {
		t.Fatal(err)
	}
	if be.Addr != mustBE32(localAddr) || be.Flags&xdplbBackendFlagsBACKEND_LOCAL != 0 {
		t.Errorf("backend %+v after SetHostAddrs(nil): want %s, not local", be, localAddr)
	}
}

// TestDSRMidStream: a DSR service with a hash scheduler takes up a TCP
// segment that is no SYN when it has no connection (another balancer saw
// its start), where Full-NAT drops it, and sends it to the backend the
// start got. The entry starts half-open and is established by the next
// segment. A reset opens nothing, and neither does a segment to a DSR
// service without a hash scheduler.
func TestDSRMidStream(t *testing.T) {
	f := newDSRFixture(t)
	c := clientN(7)
	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: c, dst: netip.AddrPortFrom(vip, 96), ack: true, seq: 5000}
	in := ack.bytes(t)
	slot := refFlowHash(c, netip.AddrPortFrom(vip, 96), TCP, false) % 2
	backend := dsrServices[5].backends[slot]
	dstMAC := rs1MAC
	if slot == 1 {
		dstMAC = rs2MAC
	}
	want := encapsulated(t, dstMAC, backend.Addr(), false, 0, in[14:])
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_encap")
	if fwd := f.dsrForward(t, c, 96); State(fwd.State) != StateSynSent {
		t.Errorf("state of a connection taken up mid-stream: %s, want SYN_SENT", State(fwd.State))
	}
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_encap")
	if fwd := f.dsrForward(t, c, 96); State(fwd.State) != StateEstablished {
		t.Errorf("state after its next segment: %s, want ESTABLISHED", State(fwd.State))
	}

	rst := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: clientN(8), dst: netip.AddrPortFrom(vip, 96), rst: true, seq: 5000}
	f.run(t, rst.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_conn")
	rr := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: clientN(8), dst: netip.AddrPortFrom(vip, 90), ack: true, seq: 5000}
	f.run(t, rr.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_conn")
}

// TestDSRTooBig: a packet that no longer fits the MTU with the outer
// header is answered, with DF, by an ICMP "fragmentation needed" to its
// sender that quotes it and gives the MTU left inside the tunnel
// (RFC 1191); without DF (XDP cannot fragment) it is dropped and counted,
// never sent to be dropped unseen.
func TestDSRTooBig(t *testing.T) {
	f := newDSRFixture(t)
	c := clientN(3)
	in, _ := dsrSYN(t, c, 90)
	f.run(t, in, f.lb0.ifindex, xdpTX, encapsulated(t, rs1MAC, rs1HTTP.Addr(), false, 0, in[14:]), "fwd_encap")
	// 1500 bytes of IPv4: the MTU exactly, 1520 with the outer header.
	big := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: c, dst: netip.AddrPortFrom(vip, 90), ack: true, seq: 101,
		payload: make([]byte, 1500-40)}
	bigIn := big.bytes(t)
	f.run(t, bigIn, f.lb0.ifindex, xdpTX, fragNeeded(t, 0, bigIn[14:14+28], 1500-20, c.Addr()), "fwd_frag_needed")

	big.moreFragments = false
	noDF := big.bytes(t)
	noDF[14+6] &^= 0x40 // DF off
	binary.BigEndian.PutUint16(noDF[14+10:], 0)
	binary.BigEndian.PutUint16(noDF[14+10:], ipChecksum(noDF[14:34]))
	f.run(t, noDF, f.lb0.ifindex, xdpDrop, nil, "drop_too_big")

	// A tunnel whose device is gone since its next hop was looked up has
	// no MTU to tell (0): its packets are not measured until the next
	// lookup, rather than all dropped.
	fk := xdplbCtKey{Saddr: mustBE32(c.Addr()), Daddr: mustBE32(vip), Sport: be16(c.Port()), Dport: be16(90), Proto: TCP}
	fwd := f.dsrForward(t, c, 90)
	fwd.LocalAddr, fwd.HopIfindex = 0, 9999
	if err := f.dp.objs.CtForward.Put(fk, fwd); err != nil {
		t.Fatal(err)
	}
	f.run(t, bigIn, f.lb0.ifindex, xdpRedirect, encapsulated(t, rs1MAC, rs1HTTP.Addr(), false, 0, bigIn[14:]), "fwd_encap")
}

// TestDSRTagged: a VLAN-tagged frame keeps its tag in front of the outer
// header, and the MTU is that of the packet, not of the tagged frame: the
// size the answer announces fits, one byte more does not.
func TestDSRTagged(t *testing.T) {
	f := newDSRFixture(t)
	if err := f.dp.addVLAN(f.lb0.ifindex, 100); err != nil {
		t.Fatal(err)
	}
	c := clientN(3)
	syn := clientSYN(c, clientMAC, netip.AddrPortFrom(vip, 91))
	syn.vlan = 100
	in := syn.bytes(t)
	sport := uint16(49152 + refFlowHash(c, netip.AddrPortFrom(vip, 91), TCP, false)&16383)
	f.run(t, in, f.lb0.ifindex, xdpTX, encapsulatedTagged(t, 100, rs1MAC, rs1HTTP.Addr(), true, sport, in[18:]), "fwd_encap")

	fits := frame{srcMAC: clientMAC, dstMAC: lbMAC, vlan: 100, src: c, dst: netip.AddrPortFrom(vip, 91), ack: true, seq: 101,
		payload: make([]byte, 1500-28-40)}
	fitsIn := fits.bytes(t)
	f.run(t, fitsIn, f.lb0.ifindex, xdpTX, encapsulatedTagged(t, 100, rs1MAC, rs1HTTP.Addr(), true, sport, fitsIn[18:]), "fwd_encap")
	fits.payload = append(fits.payload, 0)
	bigIn := fits.bytes(t)
	f.run(t, bigIn, f.lb0.ifindex, xdpTX, fragNeeded(t, 100, bigIn[18:18+28], 1500-28, c.Addr()), "fwd_frag_needed")
}

// fragNeeded is the ICMP "fragmentation needed" the balancer sends from
// the VIP to the client: quote (the packet's IPv4 header and 8 bytes),
// the MTU in the second half of the rest-of-header word.
func fragNeeded(t *testing.T, vlan uint16, quote []byte, mtu uint16, client netip.Addr) []byte {
	t.Helper()
	return fragNeededFrom(t, vlan, lbMAC, clientMAC, vip, client, quote, mtu)
}

// fragNeededFrom is the balancer's own "fragmentation needed" (TTL 64, id
// 0) from src to dst.
func fragNeededFrom(t *testing.T, vlan uint16, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, quote []byte, mtu uint16) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded), Seq: mtu}
	return serialize(t, vlan, srcMAC, dstMAC, ip, icmp, gopacket.Payload(quote))
}

// TestDecapNeverBalances: with decapsulation on, IPIP and GUE from an
// allowed balancer are stripped and passed to the host, even when the
// inner packet is for a service (the loop rule: one balancing decision per
// packet); other sources are dropped; an inner packet that is not whole is
// dropped.
func TestDecapNeverBalances(t *testing.T) {
	peer := netip.MustParseAddr("172.19.0.3")
	f := newDSRFixture(t, peer)
	c := clientN(4)
	in, inner := dsrSYN(t, c, 90)
	tunnelled := func(from netip.Addr, gue bool, body []byte) []byte {
		b := encapsulated(t, lbMAC, localAddr, gue, 50000, body)
		copy(b[0:6], lbMAC)
		copy(b[6:12], rs2MAC)
		ip := b[14:34]
		copy(ip[12:16], from.AsSlice())
		copy(ip[16:20], localAddr.AsSlice())
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
		return b
	}
	stripped := append(append([]byte(nil), in[:14]...), inner...)
	copy(stripped[0:6], lbMAC)
	copy(stripped[6:12], rs2MAC)

	f.run(t, tunnelled(peer, false, inner), f.lb0.ifindex, xdpPass, stripped, "pass_decap")
	f.run(t, tunnelled(peer, true, inner), f.lb0.ifindex, xdpPass, stripped, "pass_decap")
	k := xdplbCtKey{Saddr: mustBE32(c.Addr()), Daddr: mustBE32(vip), Sport: be16(c.Port()), Dport: be16(90), Proto: TCP}
	var v xdplbCtFwd
	if err := f.dp.objs.CtForward.Lookup(k, &v); err == nil {
		t.Errorf("a decapsulated packet was balanced: entry %+v", v)
	}
	f.run(t, tunnelled(netip.MustParseAddr("172.19.0.2"), false, inner), f.lb0.ifindex, xdpDrop, nil, "drop_decap_source")
	f.run(t, tunnelled(peer, false, inner[:30]), f.lb0.ifindex, xdpDrop, nil, "drop_decap_malformed")

	// Decapsulation off: the same tunnel packet is the host's business.
	if err := f.dp.SetDSR(DSRSettings{EncapSource: encapSource, GUEPort: guePort}); err != nil {
		t.Fatal(err)
	}
	f.run(t, tunnelled(peer, false, inner), f.lb0.ifindex, xdpPass, nil, "pass_not_l4")
}

// TestDSRSweep: a DSR connection, with no reverse half, is no orphan: it
// lives out its state's idle timeout and then goes.
func TestDSRSweep(t *testing.T) {
	f := newDSRFixture(t)
	c := clientN(5)
	in, inner := dsrSYN(t, c, 90)
	f.run(t, in, f.lb0.ifindex, xdpTX, encapsulated(t, rs1MAC, rs1HTTP.Addr(), false, 0, inner), "fwd_encap")
	const second = uint64(1e9)
	expiry := func(limit uint64) ExpiryFunc {
		return func(proto uint8, fwd, rev State, idle uint64) bool { return idle > limit }
	}
	now := Now()
	for _, full := range []bool{false, true} {
		res, err := f.dp.Sweep(now, 0, expiry(60*second), full)
		if err != nil {
			t.Fatal(err)
		}
		if res.Orphans != 0 || res.Expired != 0 {
			t.Fatalf("sweep (full %v) of a fresh DSR connection: %d orphans, %d expired", full, res.Orphans, res.Expired)
		}
	}
	res, err := f.dp.Sweep(now+120*second, 0, expiry(60*second), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 1 {
		t.Errorf("sweep after its timeout: %d expired, want 1", res.Expired)
	}
}

// BenchmarkEstablishedDSR: a client's data segment on an established
// connection, for each DSR mode, next to BenchmarkEstablishedToBackend
// (Full-NAT).
func BenchmarkEstablishedDSR(b *testing.B) {
	for _, m := range []struct {
		name string
		port uint16
		want uint32
	}{{"ipip", 90, xdpTX}, {"gue", 91, xdpTX}, {"l2", 92, xdpTX}, {"local", 93, xdpPass}} {
		b.Run(m.name, func(b *testing.B) {
			f := newDSRFixture(b)
			c := clientN(1)
			var verdict uint32
			var err error
			f.nt.do(func() {
				verdict, _, _, err = f.dp.Run(clientSYN(c, clientMAC, netip.AddrPortFrom(vip, m.port)).bytes(b), f.lb0.ifindex, 1)
			})
			if err != nil || verdict != m.want {
				b.Fatalf("SYN: verdict %d err %v", verdict, err)
			}
			data := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: c, dst: netip.AddrPortFrom(vip, m.port), ack: true, seq: 101, payload: make([]byte, 64)}
			f.benchRepeat(b, data.bytes(b), m.want)
		})
	}
}

// BenchmarkNewConnectionDSR: a new connection's SYN through dsr-gue, next
// to BenchmarkNewConnection (Full-NAT): one conntrack insert, no port.
func BenchmarkNewConnectionDSR(b *testing.B) {
	f := newDSRFixture(b)
	var total time.Duration
	opened := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if opened == 4000 { // the fixture's table holds 4096
			b.StopTimer()
			clearConntrack(b, f.dp)
			opened = 0
			b.StartTimer()
		}
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%50000))
		frame := clientSYN(c, clientMAC, netip.AddrPortFrom(vip, 91)).bytes(b)
		var verdict uint32
		var d time.Duration
		var err error
		f.nt.do(func() { verdict, _, d, err = f.dp.Run(frame, f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			b.Fatalf("SYN %d: verdict %d err %v", i, verdict, err)
		}
		total += d
		opened++
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/packet")
}

// TestAdoptKeepsDSR: a peer's record never turns this node's DSR
// connection into a Full-NAT one, nor takes a port for it; a record
// without a local address (a DSR connection, which peers do not send)
// is dropped.
func TestAdoptKeepsDSR(t *testing.T) {
	f := newDSRFixture(t)
	c := clientN(1)
	in, inner := dsrSYN(t, c, 90)
	f.run(t, in, f.lb0.ifindex, xdpTX, encapsulated(t, rs1MAC, rs1HTTP.Addr(), false, 0, inner), "fwd_encap")
	svc := netip.AddrPortFrom(vip, 90)
	res, err := f.dp.Adopt([]Adopted{
		{SyncRecord: SyncRecord{Client: FlowKey{Src: c, Dst: svc, Proto: TCP}, Local: ap("172.19.0.5:10500"),
			Backend: ap("172.19.0.2:90"), FwdState: StateEstablished, RevState: StateEstablished},
			ServiceID: dsrSvcBase, BackendID: dsrIDBase, LastSeen: Now() + 1e9},
		{SyncRecord: SyncRecord{Client: FlowKey{Src: clientN(2), Dst: svc, Proto: TCP},
			Backend: ap("172.19.0.2:90"), FwdState: StateEstablished, RevState: StateEstablished},
			ServiceID: dsrSvcBase, BackendID: dsrIDBase, LastSeen: Now()},
	})
	if err != nil || res.Stale != 2 || res.Created+res.Updated+res.Replaced != 0 {
		t.Fatalf("adopt: %+v, %v; want both records dropped as stale", res, err)
	}
	if fwd := f.dsrForward(t, c, 90); Forwarding(fwd.Flags&xdplbCtFwdFlagsCT_FWD_MODE) != DSRIPIP {
		t.Errorf("the DSR connection became %+v", fwd)
	}
	var rk xdplbCtKey
	var rev xdplbCtRev
	if it := f.dp.objs.CtReverse.Iterate(); it.Next(&rk, &rev) {
		t.Errorf("adoption left a reverse half %+v", rk)
	}
}
