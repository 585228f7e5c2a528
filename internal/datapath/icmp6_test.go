package datapath

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
)

// icmp6Message builds an ICMPv6 message from src to dst: type, code, the
// 32 bits after the checksum (rest: the MTU of a "packet too big") and the
// quote, with the checksum gopacket computes over the pseudo header.
func icmp6Message(t *testing.T, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, hop, typ, code uint8,
	rest uint32, quote []byte) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: hop, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	body := binary.BigEndian.AppendUint32(nil, rest)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv6},
		ip, icmp, gopacket.Payload(append(body, quote...)))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// packetTooBig is the balancer's answer to a packet too big: from the
// address the packet was sent to, back to its sender's MAC, quoting its
// first 48 bytes.
func packetTooBig(t *testing.T, in []byte, mtu uint32) []byte {
	t.Helper()
	ip6 := in[14:]
	src := netip.AddrFrom16([16]byte(ip6[8:24]))
	dst := netip.AddrFrom16([16]byte(ip6[24:40]))
	return icmp6Message(t, in[0:6], in[6:12], dst, src, 64, layers.ICMPv6TypePacketTooBig, 0, mtu, ip6[:48])
}

// establish6 opens client6's connection to the IPv6 web service (to rs1
// from local [fd00:19::5]:10000) through the handshake.
func establish6(t *testing.T, f *fixture) {
	t.Helper()
	f.runOK(t, frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), syn: true, seq: 100}.bytes(t),
		f.lb0.ifindex, xdpTX)
	f.runOK(t, frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: netip.AddrPortFrom(rs1Addr6, 80),
		dst: netip.AddrPortFrom(localAddr6, 10000), syn: true, ack: true, seq: 5000, ackNum: 101}.bytes(t),
		f.lb0.ifindex, xdpTX)
	f.runOK(t, frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), ack: true, seq: 101,
		ackNum: 5001}.bytes(t), f.lb0.ifindex, xdpTX)
}

// TestNAT66TooBig: a packet too big for the way on gets a "packet too
// big" with the MTU, built in XDP, both ways: the client's for the
// route's MTU towards the backend, the backend's (from the local address)
// for the device's towards the client. IPv6 has no DF: every such packet
// is answered.
func TestNAT66TooBig(t *testing.T) {
	f := newFixture6(t)
	var err error
	f.nt.do(func() {
		_, dst, _ := net.ParseCIDR("fd00:19::2/128")
		// Locked, as for IPv4: the kernel's forwarding, and the FIB
		// lookup with it, applies only a locked route MTU.
		err = netlink.RouteAdd(&netlink.Route{LinkIndex: f.lb0.ifindex, Dst: dst, MTU: 1400, MTULock: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	f.runOK(t, frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), syn: true, seq: 100}.bytes(t),
		f.lb0.ifindex, xdpTX)
	// The handshake's ACK, full size: its state change asks the FIB again.
	big := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), ack: true, seq: 101,
		ackNum: 5001, payload: make([]byte, 1440)}
	in := big.bytes(t)
	f.run(t, in, f.lb0.ifindex, xdpTX, packetTooBig(t, in, 1400), "fwd_frag_needed")
	big.payload = make([]byte, 1400-60)
	f.runOK(t, big.bytes(t), f.lb0.ifindex, xdpTX)

	// The way back: lb0's own MTU, measured per packet.
	f.setMTU(t, "lb0", 1280)
	reply := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: netip.AddrPortFrom(rs1Addr6, 80),
		dst: netip.AddrPortFrom(localAddr6, 10000), ack: true, seq: 5001, ackNum: 101, payload: make([]byte, 1300)}
	rin := reply.bytes(t)
	f.run(t, rin, f.lb0.ifindex, xdpTX, packetTooBig(t, rin, 1280), "fwd_frag_needed")

	// Measured before it moves the connection on: a FIN too big leaves
	// it established.
	fin := big
	fin.fin, fin.seq, fin.payload = true, 101+1340, make([]byte, 1300)
	fin.ack = true
	finIn := fin.bytes(t)
	f.run(t, finIn, f.lb0.ifindex, xdpTX, packetTooBig(t, finIn, 1280), "fwd_frag_needed")
	if fwd := f.forward6(t, client6, 80); State(fwd.State) != StateEstablished {
		t.Errorf("state after a FIN answered as too big: %s, want ESTABLISHED", State(fwd.State))
	}
}

// forward6 is the forward half of client's IPv6 connection to the VIP's
// port.
func (f *fixture) forward6(t *testing.T, client netip.AddrPort, port uint16) xdplbCt6Fwd {
	t.Helper()
	k, err := FlowKey{Src: client, Dst: vip6Port(port), Proto: TCP}.wire6()
	if err != nil {
		t.Fatal(err)
	}
	var v xdplbCt6Fwd
	if err := f.dp.objs.Ct6Forward.Lookup(k, &v); err != nil {
		t.Fatalf("forward entry of %s: %v", client, err)
	}
	return v
}

var router6 = netip.MustParseAddr("fd00:19::1")

// TestICMP6Errors: errors about balanced IPv6 connections go to the other
// side, translated: a "packet too big" from a router on the backends'
// side reaches the client from the VIP, quoting the client's own segment
// (the quoted TCP checksum and ICMPv6's, pseudo header included, as
// gopacket computes them); one from the client's side reaches the
// backend from the local address, unless its MTU is below IPv6's
// minimum; a backend's port unreachable reaches the client. Errors about
// nothing here, and neighbour discovery, are the host's.
func TestICMP6Errors(t *testing.T) {
	f := newFixture6(t)
	establish6(t, f)
	local := netip.AddrPortFrom(localAddr6, 10000)
	rs1 := netip.AddrPortFrom(rs1Addr6, 80)

	sent := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: local, dst: rs1, ack: true, seq: 101, ackNum: 5001}.bytes(t)[14:]
	in := icmp6Message(t, rs1MAC, lbMAC, router6, localAddr6, 64, layers.ICMPv6TypePacketTooBig, 0, 1400, sent)
	orig := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), ack: true, seq: 101,
		ackNum: 5001, ttl: 63}.bytes(t)[14:]
	want := icmp6Message(t, lbMAC, clientMAC, vip6, client6.Addr(), 63, layers.ICMPv6TypePacketTooBig, 0, 1400, orig)
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_icmp_error")

	// Only the first 8 bytes of TCP quoted: no checksum to update there.
	in = icmp6Message(t, rs1MAC, lbMAC, router6, localAddr6, 64, layers.ICMPv6TypeTimeExceeded, 0, 0, sent[:48])
	want = icmp6Message(t, lbMAC, clientMAC, vip6, client6.Addr(), 63, layers.ICMPv6TypeTimeExceeded, 0, 0, orig[:48])
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_icmp_error")

	toClient := frame{srcMAC: lbMAC, dstMAC: clientMAC, src: vip6Port(80), dst: client6, ack: true, seq: 5001,
		ackNum: 101}.bytes(t)[14:]
	in = icmp6Message(t, clientMAC, lbMAC, client6.Addr(), vip6, 64, layers.ICMPv6TypePacketTooBig, 0, 1300, toClient)
	asSent := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, ack: true, seq: 5001, ackNum: 101,
		ttl: 63}.bytes(t)[14:]
	want = icmp6Message(t, lbMAC, rs1MAC, localAddr6, rs1Addr6, 63, layers.ICMPv6TypePacketTooBig, 0, 1300, asSent)
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_icmp_error")
	in = icmp6Message(t, clientMAC, lbMAC, client6.Addr(), vip6, 64, layers.ICMPv6TypePacketTooBig, 0, 1200, toClient)
	f.run(t, in, f.lb0.ifindex, xdpDrop, nil, "drop_icmp_low_mtu")

	// UDP: the backend's port unreachable about the flow's datagram.
	f.runOK(t, frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(53), udp: true,
		payload: []byte("query")}.bytes(t), f.lb0.ifindex, xdpTX)
	rs1DNS := netip.AddrPortFrom(rs1Addr6, 5353)
	dgram := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: local, dst: rs1DNS, udp: true, payload: []byte("query")}.bytes(t)[14:]
	in = icmp6Message(t, rs1MAC, lbMAC, rs1Addr6, localAddr6, 64, layers.ICMPv6TypeDestinationUnreachable, 4, 0, dgram)
	origDgram := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(53), udp: true,
		payload: []byte("query"), ttl: 63}.bytes(t)[14:]
	want = icmp6Message(t, lbMAC, clientMAC, vip6, client6.Addr(), 63, layers.ICMPv6TypeDestinationUnreachable, 4, 0, origDgram)
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_icmp_error")
	// A port unreachable must come from the host the datagram was for.
	in = icmp6Message(t, rs1MAC, lbMAC, router6, localAddr6, 64, layers.ICMPv6TypeDestinationUnreachable, 4, 0, dgram)
	f.run(t, in, f.lb0.ifindex, xdpPass, nil, "pass_icmp")

	unknown := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: netip.AddrPortFrom(localAddr6, 10001), dst: rs1, ack: true}.bytes(t)[14:]
	in = icmp6Message(t, rs1MAC, lbMAC, router6, localAddr6, 64, layers.ICMPv6TypePacketTooBig, 0, 1400, unknown)
	f.run(t, in, f.lb0.ifindex, xdpPass, nil, "pass_icmp")
	ns := icmp6Message(t, rs1MAC, lbMAC, rs1Addr6, localAddr6, 255, layers.ICMPv6TypeNeighborSolicitation, 0, 0,
		localAddr6.AsSlice())
	f.run(t, ns, f.lb0.ifindex, xdpPass, nil, "pass_icmp")
}
