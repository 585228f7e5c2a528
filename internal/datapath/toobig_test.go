package datapath

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// runOK passes in through the program and wants verdict, whatever the
// frame becomes.
func (f *fixture) runOK(t *testing.T, in []byte, ifindex int, verdict uint32) {
	t.Helper()
	var got uint32
	var err error
	f.nt.do(func() { got, _, _, err = f.dp.Run(in, ifindex, 1) })
	if err != nil || got != verdict {
		t.Fatalf("verdict %d (%v), want %d", got, err, verdict)
	}
}

// setMTU sets the MTU of the fixture's interface named name.
func (f *fixture) setMTU(t *testing.T, name string, mtu int) {
	t.Helper()
	var err error
	f.nt.do(func() {
		var l netlink.Link
		if l, err = netlink.LinkByName(name); err == nil {
			err = netlink.LinkSetMTU(l, mtu)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTooBigForTheRoute: a route to the backend with a smaller MTU than
// the client's packet (locked, `ip route ... mtu lock 1400`): with DF, the
// client is told the route's MTU; the packet is not sent.
func TestTooBigForTheRoute(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	var err error
	f.nt.do(func() {
		_, dst, _ := net.ParseCIDR("172.19.0.2/32")
		// Locked: a forwarded packet meets an unlocked route MTU only
		// with net.ipv4.ip_forward_use_pmtu set, as in the kernel's
		// own forwarding.
		err = netlink.RouteAdd(&netlink.Route{LinkIndex: f.lb0.ifindex, Dst: dst, MTU: 1400, MTULock: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	f.runOK(t, clientSYN(client, clientMAC, vip80).bytes(t), f.lb0.ifindex, xdpTX)
	// The route's MTU is the FIB's to tell, when it is asked: once the
	// backend's cached next hop is stale, by the connection's next packet.
	time.Sleep(backendHopFresh + 100*time.Millisecond)
	big := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 2, payload: make([]byte, 1460)}
	in := big.bytes(t)
	f.run(t, in, f.lb0.ifindex, xdpTX, fragNeeded(t, 0, quoteOf(in), 1400, client.Addr()), "fwd_frag_needed")
}

// TestTooBigForTheDevice: between two lookups of a connection's next hop,
// its packets are measured against the device they leave by, both ways:
// the client is told the backend side's MTU, the backend the client
// side's (the error from the local address, quoting its own segment).
// Without DF, the packet is dropped and counted.
func TestTooBigForTheDevice(t *testing.T) {
	f := newFixture(t, 10000, 10000)
	svc := netip.AddrPortFrom(vip, 84) // its backend, 10.20.0.2:80, is behind lb1
	syn := clientSYN(client, clientMAC, svc)
	f.runOK(t, syn.bytes(t), f.lb0.ifindex, xdpRedirect)
	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: svc, ack: true, seq: 2}
	f.runOK(t, ack.bytes(t), f.lb0.ifindex, xdpRedirect)

	f.setMTU(t, "lb1", 1400)
	big := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: svc, ack: true, seq: 2, payload: make([]byte, 1460)}
	in := big.bytes(t)
	f.run(t, in, f.lb0.ifindex, xdpTX, fragNeeded(t, 0, quoteOf(in), 1400, client.Addr()), "fwd_frag_needed")
	// Answered, not forwarded: a FIN in it does not end the connection.
	bigFIN := big
	bigFIN.fin = true
	finIn := bigFIN.bytes(t)
	f.run(t, finIn, f.lb0.ifindex, xdpTX, fragNeeded(t, 0, quoteOf(finIn), 1400, client.Addr()), "fwd_frag_needed")
	if fwd := f.forwardTo(t, client, 84); State(fwd.State) != StateEstablished {
		t.Errorf("state after a FIN answered as too big: %s, want ESTABLISHED", State(fwd.State))
	}
	noDF := append([]byte(nil), in...)
	noDF[14+6] &^= 0x40
	noDF[14+10], noDF[14+11] = 0, 0
	sum := ipChecksum(noDF[14:34])
	noDF[14+10], noDF[14+11] = byte(sum>>8), byte(sum)
	f.run(t, noDF, f.lb0.ifindex, xdpDrop, nil, "drop_too_big")

	f.setMTU(t, "lb0", 1280)
	local := ap("172.19.0.5:10000")
	reply := frame{srcMAC: rs3MAC, dstMAC: lb1MAC, src: ap("10.20.0.2:80"), dst: local, ack: true, seq: 5000, payload: make([]byte, 1360)}
	rin := reply.bytes(t)
	want := fragNeededFrom(t, 0, lb1MAC, rs3MAC, localAddr, netip.MustParseAddr("10.20.0.2"), quoteOf(rin), 1280)
	f.run(t, rin, f.lb1.ifindex, xdpTX, want, "fwd_frag_needed")
}
