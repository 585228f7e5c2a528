package datapath

import (
	"net/netip"
	"testing"
)

// TestStateTransitions drives one connection through every TCP state each
// half can take, including a revival by a new SYN after a reset.
func TestStateTransitions(t *testing.T) {
	f := newFixture(t, 10000, 10000)
	rs1 := ap("172.19.0.2:80")
	local := ap("172.19.0.5:10000")
	// Sequence and acknowledgement numbers as stacks send them (the
	// client's start at 100, the backend's at 500): a FIN or a reset out
	// of order would be passed on without acting.
	fromClient := func(syn, ack, fin, rst bool, seq, ackNum uint32) frame {
		return frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, syn: syn, ack: ack, fin: fin, rst: rst, seq: seq, ackNum: ackNum}
	}
	fromBackend := func(syn, ack, fin, rst bool, seq, ackNum uint32) frame {
		return frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, syn: syn, ack: ack, fin: fin, rst: rst, seq: seq, ackNum: ackNum}
	}
	S, E, F, C := StateSynSent, StateEstablished, StateFinWait, StateClose
	steps := []struct {
		name     string
		in       frame
		fwd, rev State
	}{
		{"client SYN", fromClient(true, false, false, false, 100, 0), S, S},
		{"backend SYN-ACK", fromBackend(true, true, false, false, 500, 101), S, E},
		{"client ACK", fromClient(false, true, false, false, 101, 501), E, E},
		{"backend FIN", fromBackend(false, true, true, false, 501, 101), E, F},
		{"client FIN", fromClient(false, true, true, false, 101, 502), F, F},
		{"client last ACK", fromClient(false, true, false, false, 102, 502), F, F},
		{"backend RST", fromBackend(false, false, false, true, 502, 0), F, C},
		{"client ACK after the reset", fromClient(false, true, false, false, 102, 502), F, C},
	}
	for _, s := range steps {
		var verdict uint32
		var err error
		f.nt.do(func() { verdict, _, _, err = f.dp.Run(s.in.bytes(t), f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			t.Fatalf("%s: verdict %d err %v", s.name, verdict, err)
		}
		fwd, rev := f.halves(t, client, local, rs1)
		if fwd != s.fwd || rev != s.rev {
			t.Errorf("%s: states forward %s reverse %s, want %s %s", s.name, fwd, rev, s.fwd, s.rev)
		}
	}

	udp := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: netip.AddrPortFrom(vip, 53), udp: true}
	f.nt.do(func() { _, _, _, _ = f.dp.Run(udp.bytes(t), f.lb0.ifindex, 1) })
	var n int
	f.dp.WalkForward(func(b []Forward) error {
		for _, e := range b {
			if e.Key.Proto == UDP {
				n++
				if e.State != StateUDP {
					t.Errorf("UDP flow state %s, want UDP", e.State)
				}
			}
		}
		return nil
	})
	if n != 1 {
		t.Errorf("%d UDP flows, want 1", n)
	}
}

// TestPortReuse: a client's new connection on the port of a closed one
// goes the way the old one went, same backend and same local port, so the
// backend sees the tuple reused as it would from the client itself; it is
// counted as a new connection. If that backend takes no new connections
// any more, the new connection is scheduled like any other (here: round
// robin's next backend) and the old halves go.
func TestPortReuse(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	closeBoth := func(backend netip.AddrPort, local uint16) {
		t.Helper()
		for _, fr := range []frame{
			{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, fin: true, ack: true},
			{srcMAC: rs1MAC, dstMAC: lbMAC, src: backend, dst: netip.AddrPortFrom(localAddr, local), fin: true, ack: true},
		} {
			var verdict uint32
			var err error
			f.nt.do(func() { verdict, _, _, err = f.dp.Run(fr.bytes(t), f.lb0.ifindex, 1) })
			if err != nil || verdict != xdpTX {
				t.Fatalf("FIN: verdict %d err %v", verdict, err)
			}
		}
	}
	first := f.backendOf(t, client, vip80)
	old := f.forward(t, client)
	closeBoth(first, portFromBE16(old.LocalPort))
	before, err := f.dp.ServiceTraffic(0)
	if err != nil {
		t.Fatal(err)
	}
	if again := f.backendOf(t, client, vip80); again != first {
		t.Errorf("the new connection went to %s, want %s as the old one", again, first)
	}
	reopened := f.forward(t, client)
	if reopened.LocalPort != old.LocalPort || reopened.State != xdplbCtStateCT_SYN_SENT {
		t.Errorf("reopened entry %+v, want local port %d and SYN_SENT", reopened, portFromBE16(old.LocalPort))
	}
	var rev xdplbCtRev
	rk, _ := FlowKey{Src: first, Dst: netip.AddrPortFrom(localAddr, portFromBE16(old.LocalPort)), Proto: TCP}.wire()
	if err := f.dp.objs.CtReverse.Lookup(rk, &rev); err != nil || rev.State != xdplbCtStateCT_SYN_SENT {
		t.Errorf("the backend's half after the reopen: %+v (%v), want SYN_SENT: opening again, not closing", rev, err)
	}
	if after, _ := f.dp.ServiceTraffic(0); after.NewConns != before.NewConns+1 {
		t.Errorf("new connections %d, want %d", after.NewConns, before.NewConns+1)
	}

	// Its backend drained: the next one is scheduled afresh.
	closeBoth(first, portFromBE16(old.LocalPort))
	id := reopened.BackendId
	if err := f.dp.SetBackend(id, 0, first, true); err != nil {
		t.Fatal(err)
	}
	second := f.backendOf(t, client, vip80)
	if second == first {
		t.Errorf("the new connection went to the drained %s again", first)
	}
	oldKey := FlowKey{Src: first, Dst: netip.AddrPortFrom(localAddr, portFromBE16(old.LocalPort)), Proto: TCP}
	w, _ := oldKey.wire()
	if err := f.dp.objs.CtReverse.Lookup(w, new(xdplbCtRev)); err == nil {
		t.Errorf("the old connection's reverse half is still there")
	}
	// A retransmitted SYN of a connection still opening is the same
	// connection.
	if again := f.backendOf(t, client, vip80); again != second {
		t.Errorf("retransmitted SYN went to %s, want %s", again, second)
	}
}

// TestStaleHalfOpenRescheduled: a SYN retransmitted on a half-open entry
// whose backend takes no new connections any more (drained or down, or its
// id reused for another backend) is scheduled afresh, and the old entry's
// port is given back; while the backend is fine, a retransmission stays.
func TestStaleHalfOpenRescheduled(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	rs1, rs2 := ap("172.19.0.2:80"), ap("172.19.0.3:8080")
	if got := f.backendOf(t, client, vip80); got != rs1 {
		t.Fatalf("first SYN went to %s, want %s", got, rs1)
	}
	if got := f.backendOf(t, client, vip80); got != rs1 {
		t.Fatalf("retransmitted SYN to a healthy backend went to %s, want %s again", got, rs1)
	}
	old := f.forward(t, client)
	if err := f.dp.SetBackend(0, 0, rs1, true); err != nil {
		t.Fatal(err)
	}
	if got := f.backendOf(t, client, vip80); got != rs2 {
		t.Errorf("SYN on a half-open entry to a drained backend went to %s, want %s", got, rs2)
	}
	oldKey, _ := FlowKey{Src: rs1, Dst: netip.AddrPortFrom(localAddr, portFromBE16(old.LocalPort)), Proto: TCP}.wire()
	if err := f.dp.objs.CtReverse.Lookup(oldKey, new(xdplbCtRev)); err == nil {
		t.Error("the stale half-open entry still holds its port")
	}
	if err := f.dp.SetBackend(0, 0, rs1, false); err != nil {
		t.Fatal(err)
	}
	// Id 1 now names another backend: the entry must not follow it.
	if err := f.dp.SetBackend(1, 0, ap("172.19.0.3:8081"), false); err != nil {
		t.Fatal(err)
	}
	if got := f.backendOf(t, client, vip80); got == rs2 {
		t.Errorf("SYN on a half-open entry whose backend id was reused went to the old backend %s", got)
	}
}

// TestReuseAfterExpiry: with one local port, a second client waits until
// the first connection's entries are gone, then gets the same port.
func TestReuseAfterExpiry(t *testing.T) {
	f := newFixture(t, 20000, 20000)
	single := netip.AddrPortFrom(netip.MustParseAddr("172.19.0.11"), 80)
	rs1 := ap("172.19.0.2:80")
	local := ap("172.19.0.5:20000")
	first := clientSYN(client, clientMAC, single)
	wantFirst := first
	wantFirst.srcMAC, wantFirst.dstMAC, wantFirst.src, wantFirst.dst = lbMAC, rs1MAC, local, rs1
	f.run(t, first.bytes(t), f.lb0.ifindex, xdpTX, wantFirst.bytes(t), "fwd_tx")
	second := clientSYN(client2, client2MAC, single)
	f.run(t, second.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")

	// What the collector does when the first connection expires.
	if err := f.dp.DeleteForward([]FlowKey{{Src: client, Dst: single, Proto: TCP}}); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.DeleteReverse([]FlowKey{{Src: rs1, Dst: local, Proto: TCP}}); err != nil {
		t.Fatal(err)
	}
	want := second
	want.srcMAC, want.dstMAC, want.src, want.dst = lbMAC, rs1MAC, local, rs1
	f.run(t, second.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")
}

// halves returns the states of the connection from client via local to
// backend.
func (f *fixture) halves(t *testing.T, client, local, backend netip.AddrPort) (State, State) {
	t.Helper()
	fwd := f.forward(t, client)
	rk, err := FlowKey{Src: backend, Dst: local, Proto: TCP}.wire()
	if err != nil {
		t.Fatal(err)
	}
	var rev xdplbCtRev
	if err := f.dp.objs.CtReverse.Lookup(rk, &rev); err != nil {
		t.Fatalf("reverse entry: %v", err)
	}
	return State(fwd.State), State(rev.State)
}

// TestTableFull: when the conntrack table has no room, a new connection is
// dropped and counted; the connections already in it go on.
func TestTableFull(t *testing.T) {
	f := newFixtureWith(t, 10000, 10999, 1)
	first := clientSYN(client, clientMAC, vip80)
	var verdict uint32
	var err error
	f.nt.do(func() { verdict, _, _, err = f.dp.Run(first.bytes(t), f.lb0.ifindex, 1) })
	if err != nil || verdict != xdpTX {
		t.Fatalf("first SYN: verdict %d err %v", verdict, err)
	}
	f.run(t, clientSYN(client2, client2MAC, vip80).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_ct_full")
	f.nt.do(func() { verdict, _, _, err = f.dp.Run(first.bytes(t), f.lb0.ifindex, 1) })
	if err != nil || verdict != xdpTX {
		t.Fatalf("first connection after the refusal: verdict %d err %v", verdict, err)
	}
}
