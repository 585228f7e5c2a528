package datapath

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// translated4 is frame f as NAT64 sends it over IPv4: gopacket's frame,
// with the fields the translation sets that the frame helper sets
// otherwise (an IP id of 0; RFC 7915 leaves it to the translator).
func translated4(t *testing.T, f frame) []byte {
	t.Helper()
	b := f.bytes(t)
	b = b[:14+binary.BigEndian.Uint16(b[14+2:])] // no Ethernet padding: the frame is as long as its packet
	binary.BigEndian.PutUint16(b[14+4:], 0)
	binary.BigEndian.PutUint16(b[14+10:], 0)
	binary.BigEndian.PutUint16(b[14+10:], ipChecksum(b[14:34]))
	return b
}

// translated6 is frame f as NAT64 sends it over IPv6: no flow label (an
// IPv4 packet has none to give).
func translated6(t *testing.T, f frame) []byte {
	t.Helper()
	b := f.bytes(t)
	binary.BigEndian.PutUint32(b[14:], 0x60000000)
	return b
}

var (
	nat64Local = netip.AddrPortFrom(localAddr, 10000)
	rs1HTTP4   = ap("172.19.0.2:80")
)

// TestNAT64 follows an IPv6 client's TCP connection to an IPv6 service
// with IPv4 backends both ways: the header translated (RFC 7915: hop
// limit to TTL less one, DF set, a fresh header checksum), the TCP
// checksum carried from one pseudo header to the other as gopacket
// computes it; the IPv4 local port claimed in the IPv4 table; the ring
// alternating; conntrack listing the connection with its IPv6 client and
// IPv4 local address and backend.
func TestNAT64(t *testing.T) {
	f := newFixture6(t)
	syn := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(90), syn: true, seq: 100}
	want := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: nat64Local, dst: rs1HTTP4, syn: true, seq: 100}
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, translated4(t, want), "fwd_tx")

	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1HTTP4, dst: nat64Local, syn: true, ack: true, seq: 5000, ackNum: 101}
	back := frame{srcMAC: lbMAC, dstMAC: clientMAC, src: vip6Port(90), dst: client6, syn: true, ack: true, seq: 5000, ackNum: 101}
	f.run(t, synAck.bytes(t), f.lb0.ifindex, xdpTX, translated6(t, back), "fwd_tx")

	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(90), ack: true, seq: 101, ackNum: 5001,
		payload: []byte("GET / HTTP/1.0\r\n\r\n")}
	wantAck := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: nat64Local, dst: rs1HTTP4, ack: true, seq: 101, ackNum: 5001,
		payload: []byte("GET / HTTP/1.0\r\n\r\n")}
	f.run(t, ack.bytes(t), f.lb0.ifindex, xdpTX, translated4(t, wantAck), "fwd_tx")

	var fwds []Forward
	if err := f.dp.WalkForward(func(b []Forward) error { fwds = append(fwds, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(fwds) != 1 || fwds[0].Key.Src != client6 || fwds[0].Local != nat64Local || fwds[0].Backend != rs1HTTP4 ||
		fwds[0].State != StateEstablished {
		t.Errorf("forward halves %+v: want %s's, established, from %s to %s", fwds, client6, nat64Local, rs1HTTP4)
	}
	var revs []Reverse
	if err := f.dp.WalkReverse(func(b []Reverse) error { revs = append(revs, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0].Key.Src != rs1HTTP4 || revs[0].Client != (FlowKey{Src: client6, Dst: vip6Port(90), Proto: TCP}) {
		t.Errorf("reverse halves %+v: want %s's, its client %s", revs, rs1HTTP4, client6)
	}

	other := netip.MustParseAddrPort("[fd00:77::a]:40001")
	syn2 := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: other, dst: vip6Port(90), syn: true, seq: 7}
	want2 := frame{srcMAC: lbMAC, dstMAC: rs2MAC, src: nat64Local, dst: ap("172.19.0.3:8080"), syn: true, seq: 7}
	f.run(t, syn2.bytes(t), f.lb0.ifindex, xdpTX, translated4(t, want2), "fwd_tx")

	// The sweep finds both halves in their tables, and ends them.
	res, err := f.dp.Sweep(Now(), 0, func(uint8, State, State, uint64) bool { return true }, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 2 || res.Orphans != 0 {
		t.Errorf("sweep expired %d, orphans %d: want 2 and 0", res.Expired, res.Orphans)
	}
	fwds, revs = nil, nil
	f.dp.WalkForward(func(b []Forward) error { fwds = append(fwds, b...); return nil })
	f.dp.WalkReverse(func(b []Reverse) error { revs = append(revs, b...); return nil })
	if len(fwds)+len(revs) != 0 {
		t.Errorf("after the sweep: %+v, %+v", fwds, revs)
	}
}

// TestNAT64UDP: a datagram and its answer, translated both ways.
func TestNAT64UDP(t *testing.T) {
	f := newFixture6(t)
	q := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(91), udp: true, payload: []byte("query")}
	wq := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: nat64Local, dst: ap("172.19.0.2:5353"), udp: true, payload: []byte("query")}
	f.run(t, q.bytes(t), f.lb0.ifindex, xdpTX, translated4(t, wq), "fwd_tx")
	a := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: ap("172.19.0.2:5353"), dst: nat64Local, udp: true, payload: []byte("answer!")}
	wa := frame{srcMAC: lbMAC, dstMAC: clientMAC, src: vip6Port(91), dst: client6, udp: true, payload: []byte("answer!")}
	f.run(t, a.bytes(t), f.lb0.ifindex, xdpTX, translated6(t, wa), "fwd_tx")

	// The IPv4 answer's padding is not carried into IPv6 (above: gopacket
	// pads short frames). One without a checksum has none to carry over:
	// IPv6 requires one.
	a.zeroUDPCsum, a.payload = true, []byte("an answer without a checksum")
	f.run(t, a.bytes(t), f.lb0.ifindex, xdpPass, nil, "pass_bad_header")

	// Nor does a client's datagram without one (which IPv6 forbids)
	// open a connection.
	other := netip.MustParseAddrPort("[fd00:77::b]:40002")
	bad := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: other, dst: vip6Port(91), udp: true, zeroUDPCsum: true,
		payload: []byte("a query without a checksum")}
	f.run(t, bad.bytes(t), f.lb0.ifindex, xdpPass, nil, "pass_bad_header")
	f.dp.WalkForward(func(b []Forward) error {
		for _, fwd := range b {
			if fwd.Key.Src == other {
				t.Errorf("a datagram without a checksum opened %+v", fwd)
			}
		}
		return nil
	})
}

// TestNAT64TooBig: a backend's full-size IPv4 segment is 20 bytes too big
// once IPv6: the backend is told the MTU less 20, from the local address
// (RFC 7915 5.4's arithmetic, the other way); the client's full-size
// IPv6 packet fits once IPv4.
func TestNAT64TooBig(t *testing.T) {
	f := newFixture6(t)
	syn := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(90), syn: true, seq: 100}
	f.runOK(t, syn.bytes(t), f.lb0.ifindex, xdpTX)
	full := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1HTTP4, dst: nat64Local, ack: true, seq: 5001, ackNum: 101,
		payload: make([]byte, 1500-40)}
	in := full.bytes(t)
	f.run(t, in, f.lb0.ifindex, xdpTX, fragNeededFrom(t, 0, lbMAC, rs1MAC, localAddr, rs1HTTP4.Addr(), quoteOf(in), 1480),
		"fwd_frag_needed")
	big := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(90), ack: true, seq: 101, ackNum: 5001,
		payload: make([]byte, 1500-60)}
	want := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: nat64Local, dst: rs1HTTP4, ack: true, seq: 101, ackNum: 5001,
		payload: make([]byte, 1500-60)}
	f.run(t, big.bytes(t), f.lb0.ifindex, xdpTX, translated4(t, want), "fwd_tx")
}
