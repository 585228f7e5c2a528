package datapath

import (
	"net/netip"
	"testing"
)

var (
	client  = ap("172.19.0.9:40000")
	client2 = ap("172.19.0.8:40000") // same source port, other host
	vip80   = netip.AddrPortFrom(vip, 80)
)

func clientSYN(from netip.AddrPort, srcMAC []byte, to netip.AddrPort) frame {
	return frame{srcMAC: srcMAC, dstMAC: lbMAC, src: from, dst: to, syn: true, seq: 1}
}

// TestTCPConnection follows one connection through its handshake, data in
// both directions and teardown, checking every frame byte for byte.
func TestTCPConnection(t *testing.T) {
	f := newFixture(t, 10000, 10999)

	syn := clientSYN(client, clientMAC, vip80)
	f.nt.do(func() {}) // fixture ready
	// The local port is random: learn it from conntrack, then check the frame.
	var verdict uint32
	var err error
	f.nt.do(func() { verdict, _, _, err = f.dp.Run(syn.bytes(t), f.lb0.ifindex, 1) })
	if err != nil || verdict != xdpTX {
		t.Fatalf("first SYN: verdict %d err %v", verdict, err)
	}
	fwd := f.forward(t, client)
	lport := portFromBE16(fwd.LocalPort)
	if lport < 10000 || lport > 10999 {
		t.Fatalf("local port %d outside 10000-10999", lport)
	}
	if addrFromBE32(fwd.LocalAddr) != localAddr || addrFromBE32(fwd.BackendAddr) != netip.MustParseAddr("172.19.0.2") ||
		portFromBE16(fwd.BackendPort) != 80 || fwd.State != xdplbCtStateCT_SYN_SENT {
		t.Fatalf("forward entry %+v", fwd)
	}
	local := netip.AddrPortFrom(localAddr, lport)
	rs1 := ap("172.19.0.2:80")

	toBackend := func(c frame) frame {
		c.srcMAC, c.dstMAC, c.src, c.dst = lbMAC, rs1MAC, local, rs1
		return c
	}
	toClient := func(c frame) frame {
		c.srcMAC, c.dstMAC, c.src, c.dst = lbMAC, clientMAC, vip80, client
		return c
	}

	t.Run("retransmitted SYN reuses the entry", func(t *testing.T) {
		f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, toBackend(syn).bytes(t), "fwd_tx")
	})
	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, syn: true, ack: true, seq: 5000, ackNum: 2}
	t.Run("backend SYN-ACK goes back to the client", func(t *testing.T) {
		f.run(t, synAck.bytes(t), f.lb0.ifindex, xdpTX, toClient(synAck).bytes(t), "fwd_tx")
		var rev xdplbCtRev
		rk := xdplbCtKey{Saddr: mustBE32(rs1.Addr()), Daddr: mustBE32(localAddr), Sport: be16(80), Dport: be16(lport), Proto: TCP}
		if err := f.dp.objs.CtReverse.Lookup(rk, &rev); err != nil {
			t.Fatal(err)
		}
		if rev.State != xdplbCtStateCT_ESTABLISHED || rev.Ifindex != uint32(f.lb0.ifindex) ||
			[6]byte(rev.ClientMac) != [6]byte(clientMAC) || [6]byte(rev.LbMac) != [6]byte(lbMAC) {
			t.Errorf("reverse entry %+v", rev)
		}
	})
	data := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 2, ackNum: 5001, payload: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
	t.Run("established data client to backend", func(t *testing.T) {
		f.run(t, data.bytes(t), f.lb0.ifindex, xdpTX, toBackend(data).bytes(t), "fwd_tx")
		if st := f.forward(t, client).State; st != xdplbCtStateCT_ESTABLISHED {
			t.Errorf("forward state %d, want established", st)
		}
	})
	answer := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, ack: true, seq: 5001, ackNum: 29, payload: []byte("HTTP/1.1 200 OK\r\n\r\nrs-1\n")}
	t.Run("established data backend to client", func(t *testing.T) {
		f.run(t, answer.bytes(t), f.lb0.ifindex, xdpTX, toClient(answer).bytes(t), "fwd_tx")
	})
	// Sequence numbers as the stacks send them: a FIN or a reset out of
	// order would be passed on without acting (conntrack.h).
	fin := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, fin: true, seq: 29, ackNum: 5026}
	t.Run("FIN moves the forward half to fin-wait", func(t *testing.T) {
		f.run(t, fin.bytes(t), f.lb0.ifindex, xdpTX, toBackend(fin).bytes(t), "fwd_tx")
		if st := f.forward(t, client).State; st != xdplbCtStateCT_FIN_WAIT {
			t.Errorf("forward state %d, want fin-wait", st)
		}
	})
	rst := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, rst: true, seq: 30}
	t.Run("RST closes the forward half", func(t *testing.T) {
		f.run(t, rst.bytes(t), f.lb0.ifindex, xdpTX, toBackend(rst).bytes(t), "fwd_tx")
		if st := f.forward(t, client).State; st != xdplbCtStateCT_CLOSE {
			t.Errorf("forward state %d, want close", st)
		}
	})
	t.Run("service counters", func(t *testing.T) {
		tr, err := f.dp.ServiceTraffic(0)
		if err != nil {
			t.Fatal(err)
		}
		// SYN, SYN again, data, FIN, RST in; SYN-ACK and answer out.
		if tr.NewConns != 1 || tr.PacketsIn != 5 || tr.PacketsOut != 2 {
			t.Errorf("service traffic %+v", tr)
		}
		bt, err := f.dp.BackendTraffic(0)
		if err != nil {
			t.Fatal(err)
		}
		if bt != tr {
			t.Errorf("backend traffic %+v differs from service traffic %+v", bt, tr)
		}
		wantBytes := uint64(len(syn.bytes(t))*2 + len(data.bytes(t)) + len(fin.bytes(t)) + len(rst.bytes(t)))
		if tr.BytesIn != wantBytes {
			t.Errorf("bytes in %d, want %d", tr.BytesIn, wantBytes)
		}
	})
}

// TestRoundRobinAndSharedSourcePort: two clients using the same source port
// are two connections, alternating over the two backends.
func TestRoundRobinAndSharedSourcePort(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	backends := []netip.Addr{netip.MustParseAddr("172.19.0.2"), netip.MustParseAddr("172.19.0.3")}
	for i, c := range []netip.AddrPort{client, client2, ap("172.19.0.9:40001"), ap("172.19.0.9:40002")} {
		var verdict uint32
		var err error
		f.nt.do(func() { verdict, _, _, err = f.dp.Run(clientSYN(c, clientMAC, vip80).bytes(t), f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			t.Fatalf("SYN from %s: verdict %d err %v", c, verdict, err)
		}
		fwd := f.forward(t, c)
		if got := addrFromBE32(fwd.BackendAddr); got != backends[i%2] {
			t.Errorf("connection %d from %s went to %s, want %s", i, c, got, backends[i%2])
		}
	}
}

// TestPortExhaustion: with one local port, a second client to the same
// backend cannot get a tuple; it is dropped and counted, never mapped onto
// the first client's tuple.
func TestPortExhaustion(t *testing.T) {
	f := newFixture(t, 20000, 20000)
	single := netip.AddrPortFrom(netip.MustParseAddr("172.19.0.11"), 80)
	first := clientSYN(client, clientMAC, single)
	want := first
	want.srcMAC, want.dstMAC = lbMAC, rs1MAC
	want.src, want.dst = ap("172.19.0.5:20000"), ap("172.19.0.2:80")
	f.run(t, first.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")
	second := clientSYN(client2, client2MAC, single)
	f.run(t, second.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")
	f.run(t, second.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")
	// The first connection is untouched.
	f.run(t, first.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")
}
