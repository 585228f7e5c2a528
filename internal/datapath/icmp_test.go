package datapath

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var routerMAC = mac("02:00:00:00:00:0a")

// icmpError is an ICMP error (type, code; rest the 32 bits after the
// checksum, a "fragmentation needed"'s MTU in the low 16) from src to dst
// quoting quote, as gopacket builds it: TTL 61 (60 from the balancer's
// MAC: it forwarded the error), id 0x4321, so that an expected frame
// differs only where the balancer changes it.
func icmpError(t *testing.T, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, typ, code uint8, mtu uint16, quote []byte) []byte {
	t.Helper()
	ttl := uint8(61)
	if bytes.Equal(srcMAC, lbMAC) || bytes.Equal(srcMAC, lb1MAC) {
		ttl = 60
	}
	ip := &layers.IPv4{Version: 4, TTL: ttl, Id: 0x4321, Protocol: layers.IPProtocolICMPv4, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Seq: mtu}
	return serialize(t, 0, srcMAC, dstMAC, ip, icmp, gopacket.Payload(quote))
}

// quoteOf is what an ICMP error quotes of frame: its IPv4 header and the
// first 8 bytes of its transport header.
func quoteOf(frame []byte) []byte { return append([]byte(nil), frame[14:14+20+8]...) }

// openTCP opens the fixture's client connection to vip80 (SYN, then the
// handshake ACK, which gives the entry its next hop) and returns its
// local address:port.
func (f *fixture) openTCP(t *testing.T) netip.AddrPort {
	t.Helper()
	for _, fr := range []frame{clientSYN(client, clientMAC, vip80),
		{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 2}} {
		var verdict uint32
		var err error
		f.nt.do(func() { verdict, _, _, err = f.dp.Run(fr.bytes(t), f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			t.Fatalf("opening the connection: verdict %d (%v)", verdict, err)
		}
	}
	return f.reverseLocal(t, FlowKey{Src: client, Dst: vip80, Proto: TCP})
}

// TestICMPFromBackendSide: a router between the balancer and the backend
// says a segment the balancer sent (local -> rs1) is too big. The error
// goes to the client from the VIP, quoting the segment as the client sent
// it (every checksum it holds back to the client's own), with the MTU.
func TestICMPFromBackendSide(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	local := f.openTCP(t)
	sent := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 2, payload: make([]byte, 1460)}
	asSent := sent
	asSent.srcMAC, asSent.dstMAC, asSent.src, asSent.dst = lbMAC, rs1MAC, local, rs1HTTP
	// The quote is translated back but for the TTL, which stays one less
	// than the client sent: nothing matches an error by it.
	quoted := sent
	quoted.ttl = 63
	in := icmpError(t, routerMAC, lbMAC, netip.MustParseAddr("172.19.0.1"), localAddr, 3, 4, 1400, quoteOf(asSent.bytes(t)))
	want := icmpError(t, lbMAC, clientMAC, vip, client.Addr(), 3, 4, 1400, quoteOf(quoted.bytes(t)))
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_icmp_error")

	// Time exceeded, and a quote of exactly 8 bytes of TCP (no checksum
	// in it to change).
	in = icmpError(t, routerMAC, lbMAC, netip.MustParseAddr("172.19.0.1"), localAddr, 11, 0, 0, quoteOf(asSent.bytes(t)))
	want = icmpError(t, lbMAC, clientMAC, vip, client.Addr(), 11, 0, 0, quoteOf(quoted.bytes(t)))
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_icmp_error")

	// A longer quote (the whole TCP header): its checksum goes back too.
	long := func(fr frame) []byte { return append([]byte(nil), fr.bytes(t)[14:14+40]...) }
	in = icmpError(t, routerMAC, lbMAC, netip.MustParseAddr("172.19.0.1"), localAddr, 3, 4, 1400, long(asSent))
	want = icmpError(t, lbMAC, clientMAC, vip, client.Addr(), 3, 4, 1400, long(quoted))
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_icmp_error")
}

// TestICMPPortUnreachableUDP: a backend's "port unreachable" about a
// datagram the balancer sent it quotes the UDP checksum too; it reaches
// the client quoting the client's own datagram.
func TestICMPPortUnreachableUDP(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	dns := netip.AddrPortFrom(vip, 53)
	q := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: dns, udp: true, payload: []byte("query")}
	var verdict uint32
	var err error
	f.nt.do(func() { verdict, _, _, err = f.dp.Run(q.bytes(t), f.lb0.ifindex, 1) })
	if err != nil || verdict != xdpTX {
		t.Fatalf("datagram: verdict %d (%v)", verdict, err)
	}
	local := f.reverseLocal(t, FlowKey{Src: client, Dst: dns, Proto: UDP})
	asSent := q
	asSent.srcMAC, asSent.dstMAC, asSent.src, asSent.dst = lbMAC, rs1MAC, local, ap("172.19.0.2:5353")
	in := icmpError(t, rs1MAC, lbMAC, rs1HTTP.Addr(), localAddr, 3, 3, 0, quoteOf(asSent.bytes(t)))
	quoted := q
	quoted.ttl = 63
	want := icmpError(t, lbMAC, clientMAC, vip, client.Addr(), 3, 3, 0, quoteOf(quoted.bytes(t)))
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_icmp_error")
}

// TestICMPFromClientSide: a router on the client's side says a segment
// the balancer sent the client (VIP -> client) is too big. The error goes
// to the backend from the local address, quoting the segment as the
// backend sent it, so the backend's TCP learns the client's path MTU.
func TestICMPFromClientSide(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	local := f.openTCP(t)
	reply := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1HTTP, dst: local, ack: true, seq: 5000, payload: make([]byte, 1460)}
	asSent := reply
	asSent.srcMAC, asSent.dstMAC, asSent.src, asSent.dst = lbMAC, clientMAC, vip80, client
	in := icmpError(t, routerMAC, lbMAC, netip.MustParseAddr("172.19.0.1"), vip, 3, 4, 1280, quoteOf(asSent.bytes(t)))
	quoted := reply
	quoted.ttl = 63
	want := icmpError(t, lbMAC, rs1MAC, localAddr, rs1HTTP.Addr(), 3, 4, 1280, quoteOf(quoted.bytes(t)))
	f.run(t, in, f.lb0.ifindex, xdpTX, want, "fwd_icmp_error")
}

// TestICMPNotOurs: errors about no balanced connection, echo requests to
// the VIP and errors quoting something else than TCP or UDP pass to the
// host unchanged; an error to another MAC is not forwarded.
func TestICMPNotOurs(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	local := f.openTCP(t)
	stranger := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: ap("172.19.0.5:10999"), dst: rs1HTTP, ack: true}
	f.run(t, icmpError(t, routerMAC, lbMAC, netip.MustParseAddr("172.19.0.1"), localAddr, 3, 4, 1400, quoteOf(stranger.bytes(t))),
		f.lb0.ifindex, xdpPass, nil, "pass_not_l4")
	f.run(t, icmpError(t, clientMAC, lbMAC, client.Addr(), vip, 8, 0, 0, []byte("ping")), f.lb0.ifindex, xdpPass, nil, "pass_not_l4")
	asSent := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: local, dst: rs1HTTP, ack: true}
	foreign := icmpError(t, routerMAC, mac("02:00:00:00:00:77"), netip.MustParseAddr("172.19.0.1"), localAddr, 3, 4, 1400, quoteOf(asSent.bytes(t)))
	f.run(t, foreign, f.lb0.ifindex, xdpPass, nil, "pass_not_ours")
	cut := icmpError(t, routerMAC, lbMAC, netip.MustParseAddr("172.19.0.1"), localAddr, 3, 4, 1400, quoteOf(asSent.bytes(t))[:24])
	f.run(t, cut, f.lb0.ifindex, xdpPass, nil, "pass_truncated")
}

// TestICMPBudget: past a burst of translations, errors go to the host
// (counted) until the budget refills.
func TestICMPBudget(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	local := f.openTCP(t)
	asSent := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: local, dst: rs1HTTP, ack: true, seq: 2}
	in := icmpError(t, routerMAC, lbMAC, netip.MustParseAddr("172.19.0.1"), localAddr, 3, 4, 1400, quoteOf(asSent.bytes(t)))
	before, err := f.dp.Reasons()
	if err != nil {
		t.Fatal(err)
	}
	const sent = 300
	f.nt.do(func() {
		for range sent {
			if _, _, _, err = f.dp.Run(in, f.lb0.ifindex, 1); err != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := f.dp.Reasons()
	if err != nil {
		t.Fatal(err)
	}
	fwd, _ := ReasonByName("fwd_icmp_error")
	rate, _ := ReasonByName("pass_icmp_rate")
	translated, passed := after[fwd]-before[fwd], after[rate]-before[rate]
	if translated+passed != sent || translated < 100 || passed == 0 {
		t.Errorf("%d errors: %d translated, %d passed over the budget; want at least the burst (100) translated and some passed", sent, translated, passed)
	}
}
