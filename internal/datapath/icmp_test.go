package datapath

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
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
// the VIP, and errors whose addresses do not fit what they quote (forged,
// or not about a connection here) pass to the host unchanged; an error in
// a frame not for this host, or with a bad header checksum, is not
// forwarded; a client side's "fragmentation needed" below 1280 is dropped.
func TestICMPNotOurs(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	local := f.openTCP(t)
	router := netip.MustParseAddr("172.19.0.1")
	stranger := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: ap("172.19.0.5:10999"), dst: rs1HTTP, ack: true}
	f.run(t, icmpError(t, routerMAC, lbMAC, router, localAddr, 3, 4, 1400, quoteOf(stranger.bytes(t))),
		f.lb0.ifindex, xdpPass, nil, "pass_icmp")
	f.run(t, icmpError(t, clientMAC, lbMAC, client.Addr(), vip, 8, 0, 0, []byte("ping")), f.lb0.ifindex, xdpPass, nil, "pass_icmp")

	asSent := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: local, dst: rs1HTTP, ack: true}
	quote := quoteOf(asSent.bytes(t))
	// To the VIP, though about a packet the local address sent.
	f.run(t, icmpError(t, routerMAC, lbMAC, router, vip, 3, 4, 1400, quote), f.lb0.ifindex, xdpPass, nil, "pass_icmp")
	// A port unreachable from another host than the packet's.
	f.run(t, icmpError(t, routerMAC, lbMAC, router, localAddr, 3, 3, 0, quote), f.lb0.ifindex, xdpPass, nil, "pass_icmp")
	// About a later fragment: no ports where they would be.
	later := append([]byte(nil), quote...)
	later[6], later[7] = 0x00, 0xb9
	later[10], later[11] = 0, 0
	sum := ipChecksum(later[:20])
	later[10], later[11] = byte(sum>>8), byte(sum)
	f.run(t, icmpError(t, routerMAC, lbMAC, router, localAddr, 3, 4, 1400, later), f.lb0.ifindex, xdpPass, nil, "pass_icmp")

	foreign := icmpError(t, routerMAC, mac("02:00:00:00:00:77"), router, localAddr, 3, 4, 1400, quote)
	f.run(t, foreign, f.lb0.ifindex, xdpPass, nil, "pass_not_ours")
	bad := icmpError(t, routerMAC, lbMAC, router, localAddr, 3, 4, 1400, quote)
	bad[14+10] ^= 0xff
	f.run(t, bad, f.lb0.ifindex, xdpPass, nil, "pass_bad_checksum")
	cut := icmpError(t, routerMAC, lbMAC, router, localAddr, 3, 4, 1400, quote[:24])
	f.run(t, cut, f.lb0.ifindex, xdpPass, nil, "pass_bad_header")

	reply := frame{srcMAC: lbMAC, dstMAC: clientMAC, src: vip80, dst: client, ack: true, seq: 5000}
	low := icmpError(t, routerMAC, lbMAC, router, vip, 3, 4, 1000, quoteOf(reply.bytes(t)))
	f.run(t, low, f.lb0.ifindex, xdpDrop, nil, "drop_icmp_low_mtu")
}

// icmpBudget is struct icmp_budget (bpf/lib/icmp.h).
type icmpBudget struct{ Last, Tokens uint64 }

// setICMPBudget gives every CPU tokens, last added at last.
func (f *fixture) setICMPBudget(t *testing.T, last, tokens uint64) {
	t.Helper()
	n, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]icmpBudget, n)
	for i := range vals {
		vals[i] = icmpBudget{Last: last, Tokens: tokens}
	}
	if err := f.dp.objs.IcmpBudget.Update(uint32(0), vals, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

// sendErrors runs in n times and returns how many were translated and how
// many passed over the budget.
func (f *fixture) sendErrors(t *testing.T, in []byte, n int) (translated, passed uint64) {
	t.Helper()
	before, err := f.dp.Reasons()
	if err != nil {
		t.Fatal(err)
	}
	f.nt.do(func() {
		for range n {
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
	return after[fwd] - before[fwd], after[rate] - before[rate]
}

// TestICMPBudget: with the budget spent, errors go to the host (counted);
// it refills by one a millisecond.
func TestICMPBudget(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	local := f.openTCP(t)
	asSent := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: local, dst: rs1HTTP, ack: true, seq: 2}
	in := icmpError(t, routerMAC, lbMAC, netip.MustParseAddr("172.19.0.1"), localAddr, 3, 4, 1400, quoteOf(asSent.bytes(t)))

	f.setICMPBudget(t, Now(), 0)
	translated, passed := f.sendErrors(t, in, 100)
	if passed == 0 || translated+passed != 100 {
		t.Errorf("budget spent: %d translated, %d passed; want most passed", translated, passed)
	}
	f.setICMPBudget(t, Now()-50e6, 0) // 50 ms ago: 50 tokens to come
	translated, passed = f.sendErrors(t, in, 100)
	if translated < 50 || passed == 0 || translated+passed != 100 {
		t.Errorf("50 ms of refill: %d translated, %d passed; want at least 50 translated, the rest passed", translated, passed)
	}
}

// TestICMPAdopted: a connection adopted from a peer has no next hop here
// for a side it has not seen a packet of yet; an error about it still
// reaches that side, by the FIB.
func TestICMPAdopted(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	var err error
	f.nt.do(func() {
		err = netlink.NeighAdd(&netlink.Neigh{LinkIndex: f.lb0.ifindex, Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: client.Addr().AsSlice(), HardwareAddr: clientMAC})
	})
	if err != nil {
		t.Fatal(err)
	}
	local := ap("172.19.0.5:10500")
	res, err := f.dp.Adopt([]Adopted{{
		SyncRecord: SyncRecord{Client: FlowKey{Src: client, Dst: vip80, Proto: TCP}, Local: local, Backend: rs1HTTP,
			FwdState: StateEstablished, RevState: StateEstablished},
		ServiceID: 0, BackendID: 0, Origin: 3, LastSeen: Now(),
	}})
	if err != nil || res.Created != 1 {
		t.Fatalf("adopt: %+v, %v", res, err)
	}
	router := netip.MustParseAddr("172.19.0.1")

	toClient := frame{srcMAC: lbMAC, dstMAC: clientMAC, src: vip80, dst: client, ack: true, seq: 5000}
	fromBackend := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1HTTP, dst: local, ack: true, seq: 5000, ttl: 63}
	f.run(t, icmpError(t, routerMAC, lbMAC, router, vip, 3, 4, 1300, quoteOf(toClient.bytes(t))), f.lb0.ifindex, xdpTX,
		icmpError(t, lbMAC, rs1MAC, localAddr, rs1HTTP.Addr(), 3, 4, 1300, quoteOf(fromBackend.bytes(t))), "fwd_icmp_error")

	toBackend := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: local, dst: rs1HTTP, ack: true, seq: 2}
	fromClient := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 2, ttl: 63}
	f.run(t, icmpError(t, routerMAC, lbMAC, router, localAddr, 3, 4, 1400, quoteOf(toBackend.bytes(t))), f.lb0.ifindex, xdpTX,
		icmpError(t, lbMAC, clientMAC, vip, client.Addr(), 3, 4, 1400, quoteOf(fromClient.bytes(t))), "fwd_icmp_error")
}
