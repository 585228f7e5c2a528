package datapath

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// syncRecords collects what the datapath emits for the peers.
type syncRecords struct {
	ch chan SyncRecord
}

func readSync(t *testing.T, dp *Datapath) *syncRecords {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &syncRecords{ch: make(chan SyncRecord, 64)}
	done := make(chan error, 1)
	go func() { done <- dp.ReadSync(ctx, func(r SyncRecord) { s.ch <- r }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s
}

// expect checks that the records emitted since the last call are exactly
// want, in order.
func (s *syncRecords) expect(t *testing.T, want ...SyncRecord) {
	t.Helper()
	for i, w := range want {
		select {
		case got := <-s.ch:
			if got != w {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, got, w)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("record %d missing, want %+v", i, w)
		}
	}
	select {
	case extra := <-s.ch:
		t.Errorf("unexpected record %+v", extra)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestSyncRecords: a TCP connection is told to the peers when its
// handshake completes and when either side starts closing, a UDP flow when
// it is first answered; nothing before, nothing twice, nothing when sync
// is off.
func TestSyncRecords(t *testing.T) {
	f := newFixture(t, 10000, 10000)
	if err := f.dp.SetSync(true, 7); err != nil {
		t.Fatal(err)
	}
	recs := readSync(t, f.dp)
	local := ap("172.19.0.5:10000")
	rs1 := ap("172.19.0.2:80")
	toBackend := func(c frame) frame {
		c.srcMAC, c.dstMAC, c.src, c.dst = lbMAC, rs1MAC, local, rs1
		return c
	}
	toClient := func(c frame) frame {
		c.srcMAC, c.dstMAC, c.src, c.dst = lbMAC, clientMAC, vip80, client
		return c
	}
	conn := SyncRecord{Client: FlowKey{Src: client, Dst: vip80, Proto: TCP}, Local: local, Backend: rs1}
	with := func(fwd, rev State) SyncRecord { r := conn; r.FwdState, r.RevState = fwd, rev; return r }

	syn := clientSYN(client, clientMAC, vip80)
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, toBackend(syn).bytes(t), "fwd_tx")
	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, syn: true, ack: true, seq: 5000, ackNum: 2}
	f.run(t, synAck.bytes(t), f.lb0.ifindex, xdpTX, toClient(synAck).bytes(t), "fwd_tx")
	recs.expect(t)

	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 2, ackNum: 5001}
	f.run(t, ack.bytes(t), f.lb0.ifindex, xdpTX, toBackend(ack).bytes(t), "fwd_tx")
	recs.expect(t, with(StateEstablished, StateEstablished))
	f.run(t, ack.bytes(t), f.lb0.ifindex, xdpTX, toBackend(ack).bytes(t), "fwd_tx")
	recs.expect(t)

	rk := xdplbCtKey{Saddr: mustBE32(rs1.Addr()), Daddr: mustBE32(localAddr), Sport: be16(80), Dport: be16(10000), Proto: TCP}
	var rev xdplbCtRev
	if err := f.dp.objs.CtReverse.Lookup(rk, &rev); err != nil {
		t.Fatal(err)
	}
	if rev.Origin != 7 {
		t.Errorf("reverse half's origin %d, want the node id 7", rev.Origin)
	}

	fin := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, ack: true, fin: true, seq: 5001, ackNum: 2}
	f.run(t, fin.bytes(t), f.lb0.ifindex, xdpTX, toClient(fin).bytes(t), "fwd_tx")
	recs.expect(t, with(StateNone, StateFinWait))
	cfin := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, fin: true, seq: 2, ackNum: 5002}
	f.run(t, cfin.bytes(t), f.lb0.ifindex, xdpTX, toBackend(cfin).bytes(t), "fwd_tx")
	recs.expect(t, with(StateFinWait, StateNone))

	vip53 := netip.AddrPortFrom(vip, 53)
	rs53 := ap("172.19.0.2:5353")
	query := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip53, udp: true, payload: []byte("query")}
	sent := query
	sent.srcMAC, sent.dstMAC, sent.src, sent.dst = lbMAC, rs1MAC, local, rs53
	f.run(t, query.bytes(t), f.lb0.ifindex, xdpTX, sent.bytes(t), "fwd_tx")
	recs.expect(t)
	answer := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs53, dst: local, udp: true, payload: []byte("answer")}
	got := answer
	got.srcMAC, got.dstMAC, got.src, got.dst = lbMAC, clientMAC, vip53, client
	f.run(t, answer.bytes(t), f.lb0.ifindex, xdpTX, got.bytes(t), "fwd_tx")
	recs.expect(t, SyncRecord{Client: FlowKey{Src: client, Dst: vip53, Proto: UDP}, Local: local, Backend: rs53,
		FwdState: StateUDP, RevState: StateUDP})
	f.run(t, answer.bytes(t), f.lb0.ifindex, xdpTX, got.bytes(t), "fwd_tx")
	recs.expect(t)

	// With sync off, a whole handshake (to a backend behind lb1, which
	// has its own free port 10000) emits nothing.
	if err := f.dp.SetSync(false, 7); err != nil {
		t.Fatal(err)
	}
	vip84 := netip.AddrPortFrom(vip, 84)
	rs3 := ap("10.20.0.2:80")
	for _, in := range []struct {
		fr      frame
		ifindex int
	}{
		{clientSYN(client2, client2MAC, vip84), f.lb0.ifindex},
		{frame{srcMAC: rs3MAC, dstMAC: lb1MAC, src: rs3, dst: local, syn: true, ack: true, seq: 100}, f.lb1.ifindex},
		{frame{srcMAC: client2MAC, dstMAC: lbMAC, src: client2, dst: vip84, ack: true, seq: 2}, f.lb0.ifindex},
	} {
		var verdict uint32
		var err error
		f.nt.do(func() { verdict, _, _, err = f.dp.Run(in.fr.bytes(t), in.ifindex, 1) })
		if err != nil || verdict == xdpDrop || verdict == xdpPass {
			t.Fatalf("handshake with sync off: verdict %d, err %v", verdict, err)
		}
	}
	if st := f.forwardOf(t, FlowKey{Src: client2, Dst: vip84, Proto: TCP}).State; st != xdplbCtStateCT_ESTABLISHED {
		t.Fatalf("handshake with sync off left state %d", st)
	}
	recs.expect(t)
	if n, err := f.dp.SyncRingFull(); err != nil || n != 0 {
		t.Errorf("ring full counter %d (err %v), want 0", n, err)
	}
}

// forwardOf is the forward half of fk.
func (f *fixture) forwardOf(t *testing.T, fk FlowKey) xdplbCtFwd {
	t.Helper()
	k, err := fk.wire()
	if err != nil {
		t.Fatal(err)
	}
	var v xdplbCtFwd
	if err := f.dp.objs.CtForward.Lookup(k, &v); err != nil {
		t.Fatalf("forward entry of %v: %v", fk, err)
	}
	return v
}

// reverseLocal is the local address:port the forward half of fk uses.
func (f *fixture) reverseLocal(t *testing.T, fk FlowKey) netip.AddrPort {
	t.Helper()
	v := f.forwardOf(t, fk)
	return netip.AddrPortFrom(addrFromBE32(v.LocalAddr), portFromBE16(v.LocalPort))
}

// TestAdoptedConnection: a connection a peer opened has no next hop
// recorded here. The backend's reply finds the client's through the FIB
// (source: the VIP) and the hop is kept for the next ones; the client's
// packets find the backend's as a new connection's do; a client whose next
// hop is unresolved is a counted drop, the frame left as it came.
func TestAdoptedConnection(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	f.nt.do(func() {
		err := netlink.NeighAdd(&netlink.Neigh{LinkIndex: f.lb0.ifindex, Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: client.Addr().AsSlice(), HardwareAddr: clientMAC})
		if err != nil {
			t.Error(err)
		}
	})
	local := ap("172.19.0.5:10500")
	rs1 := ap("172.19.0.2:80")
	adopt := func(c netip.AddrPort, local netip.AddrPort) {
		t.Helper()
		res, err := f.dp.Adopt([]Adopted{{
			SyncRecord: SyncRecord{Client: FlowKey{Src: c, Dst: vip80, Proto: TCP}, Local: local, Backend: rs1,
				FwdState: StateEstablished, RevState: StateEstablished},
			ServiceID: 0, BackendID: 0, Origin: 3, LastSeen: Now(),
		}})
		if err != nil || res.Created != 1 {
			t.Fatalf("adopt: %+v, %v", res, err)
		}
	}
	adopt(client, local)

	reply := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, ack: true, seq: 9000, payload: []byte("late answer")}
	toClient := reply
	toClient.srcMAC, toClient.dstMAC, toClient.src, toClient.dst = lbMAC, clientMAC, vip80, client
	f.run(t, reply.bytes(t), f.lb0.ifindex, xdpTX, toClient.bytes(t), "fwd_tx")
	rk := xdplbCtKey{Saddr: mustBE32(rs1.Addr()), Daddr: mustBE32(localAddr), Sport: be16(80), Dport: be16(10500), Proto: TCP}
	var rev xdplbCtRev
	if err := f.dp.objs.CtReverse.Lookup(rk, &rev); err != nil {
		t.Fatal(err)
	}
	if rev.Ifindex != uint32(f.lb0.ifindex) || [6]byte(rev.ClientMac) != [6]byte(clientMAC) ||
		[6]byte(rev.LbMac) != [6]byte(lbMAC) || rev.Origin != 3 {
		t.Errorf("reverse half after the first reply: %+v", rev)
	}
	f.run(t, reply.bytes(t), f.lb0.ifindex, xdpTX, toClient.bytes(t), "fwd_tx")

	data := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 77, payload: []byte("more")}
	toBackend := data
	toBackend.srcMAC, toBackend.dstMAC, toBackend.src, toBackend.dst = lbMAC, rs1MAC, local, rs1
	f.run(t, data.bytes(t), f.lb0.ifindex, xdpTX, toBackend.bytes(t), "fwd_tx")

	stranger := ap("172.19.0.77:40000")
	local2 := ap("172.19.0.5:10501")
	adopt(stranger, local2)
	lost := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local2, ack: true, seq: 1}
	f.run(t, lost.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_neigh")
}

// TestAdoptedConnectionHoldsItsPort: the reverse half of an adopted
// connection reserves its local address:port, so a new connection here
// can never be given the same one.
func TestAdoptedConnectionHoldsItsPort(t *testing.T) {
	f := newFixture(t, 20000, 20000)
	single := netip.AddrPortFrom(netip.MustParseAddr("172.19.0.11"), 80)
	rs1 := ap("172.19.0.2:80")
	res, err := f.dp.Adopt([]Adopted{{
		SyncRecord: SyncRecord{Client: FlowKey{Src: client2, Dst: single, Proto: TCP}, Local: ap("172.19.0.5:20000"),
			Backend: rs1, FwdState: StateEstablished, RevState: StateEstablished},
		ServiceID: 6, BackendID: 0, Origin: 2, LastSeen: Now(),
	}})
	if err != nil || res.Created != 1 {
		t.Fatalf("adopt: %+v, %v", res, err)
	}
	f.run(t, clientSYN(client, clientMAC, single).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")
}

// TestAdoptMerges: a record for a connection this node knows is merged
// with it, keeping its next hops, and whichever saw the connection last
// decides its states and mapping; a record for another client's local port
// is a conflict and changes nothing; a replaced mapping gives back only
// its own port; Forget removes only a matching connection idle since the
// peer's last packet.
func TestAdoptMerges(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	syn := clientSYN(client, clientMAC, vip80)
	f.nt.do(func() { _, _, _, _ = f.dp.Run(syn.bytes(t), f.lb0.ifindex, 1) })
	fk := FlowKey{Src: client, Dst: vip80, Proto: TCP}
	local := f.reverseLocal(t, fk)
	mine := f.forward(t, client)
	backend := netip.AddrPortFrom(addrFromBE32(mine.BackendAddr), portFromBE16(mine.BackendPort))
	rec := SyncRecord{Client: fk, Local: local, Backend: backend, FwdState: StateEstablished}
	older, newer := mine.LastSeen-1, mine.LastSeen+1

	adopt := func(r SyncRecord, lastSeen uint64) AdoptResult {
		t.Helper()
		res, err := f.dp.Adopt([]Adopted{{SyncRecord: r, BackendID: mine.BackendId, LastSeen: lastSeen}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := adopt(rec, older); res.Updated != 1 {
		t.Fatalf("adopt an older record of a known connection: %+v", res)
	}
	if got := f.forward(t, client); got.State != xdplbCtStateCT_SYN_SENT || got.LastSeen != mine.LastSeen || got.HopIfindex != mine.HopIfindex {
		t.Errorf("an older record changed the connection: %+v, want it as it was: %+v", got, mine)
	}
	if res := adopt(rec, newer); res.Updated != 1 {
		t.Fatalf("adopt a newer record of a known connection: %+v", res)
	}
	if got := f.forward(t, client); got.State != xdplbCtStateCT_ESTABLISHED || got.LastSeen != newer || got.HopIfindex != mine.HopIfindex {
		t.Errorf("after a newer record: %+v, want established, seen at %d, next hop kept", got, newer)
	}

	thief := rec
	thief.Client = FlowKey{Src: client2, Dst: vip80, Proto: TCP}
	if res := adopt(thief, newer+1); res.Conflicts != 1 {
		t.Fatalf("adopt a taken port: %+v", res)
	}
	if k, _ := thief.Client.wire(); f.dp.objs.CtForward.Lookup(k, new(xdplbCtFwd)) == nil {
		t.Error("a conflicting record was adopted")
	}
	if got := f.forward(t, client); got.LocalPort != mine.LocalPort {
		t.Errorf("a conflicting record changed the connection holding the port: %+v", got)
	}

	moved := rec
	moved.Local = netip.AddrPortFrom(localAddr, local.Port()%999+10000)
	if res := adopt(moved, older); res.Stale != 1 {
		t.Fatalf("adopt an older record with another mapping: %+v, want it dropped as stale", res)
	}
	if got := f.forward(t, client); got.LocalPort != mine.LocalPort {
		t.Errorf("an older record moved the connection: %+v", got)
	}
	if res := adopt(moved, newer+1); res.Replaced != 1 {
		t.Fatalf("adopt a newer record with another mapping: %+v", res)
	}
	oldKey, _ := Forward{Key: fk, Local: local, Backend: backend}.ReverseKey().wire()
	if err := f.dp.objs.CtReverse.Lookup(oldKey, new(xdplbCtRev)); err == nil {
		t.Error("the replaced connection's old port is still held")
	}

	// A leftover forward half whose port is another client's now: a
	// record replacing it must not free that client's port.
	stray := FlowKey{Src: ap("172.19.0.77:5000"), Dst: vip80, Proto: TCP}
	strayFwd := Forward{Key: stray, Local: moved.Local, Backend: backend, State: StateEstablished, LastSeen: 1}
	if err := f.dp.objs.CtForward.Put(mustWire(t, strayFwd)); err != nil {
		t.Fatal(err)
	}
	if res := adopt(SyncRecord{Client: stray, Local: netip.AddrPortFrom(localAddr, 10998), Backend: backend}, newer); res.Replaced != 1 {
		t.Fatalf("adopt over a leftover forward half: %+v", res)
	}
	movedKey, _ := Forward{Key: fk, Local: moved.Local, Backend: backend}.ReverseKey().wire()
	var held xdplbCtRev
	if err := f.dp.objs.CtReverse.Lookup(movedKey, &held); err != nil || held.Client != mustKey(t, fk) {
		t.Errorf("replacing a leftover freed another client's port: %+v, %v", held, err)
	}

	for _, c := range []struct {
		name       string
		r          SyncRecord
		seenBefore uint64
		gone       bool
	}{
		{"another mapping", rec, newer + 1, false},
		{"seen here since", moved, newer, false},
		{"idle since the peer's last packet", moved, newer + 1, true},
	} {
		if gone, err := f.dp.Forget(c.r, c.seenBefore); err != nil || gone != c.gone {
			t.Errorf("forget, %s: removed %v (err %v), want %v", c.name, gone, err, c.gone)
		}
	}
}

// TestAllocSlice: a node hands out only its slice of the local ports but
// recognises replies on the whole range, where its peer's connections
// live.
func TestAllocSlice(t *testing.T) {
	f := newFixture(t, 20000, 20001)
	if err := f.dp.SetLocal([]netip.Addr{localAddr}, Ports{Min: 20000, Max: 20001}, Ports{Min: 20001, Max: 20001}); err != nil {
		t.Fatal(err)
	}
	single := netip.AddrPortFrom(netip.MustParseAddr("172.19.0.11"), 80)
	rs1 := ap("172.19.0.2:80")
	first := clientSYN(client, clientMAC, single)
	want := first
	want.srcMAC, want.dstMAC, want.src, want.dst = lbMAC, rs1MAC, ap("172.19.0.5:20001"), rs1
	f.run(t, first.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")
	f.run(t, clientSYN(client2, client2MAC, single).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")

	if err := f.dp.SetLocal([]netip.Addr{localAddr}, Ports{Min: 20000, Max: 20001}, Ports{Min: 19000, Max: 20001}); err == nil {
		t.Error("a slice outside the range was accepted")
	}
	res, err := f.dp.Adopt([]Adopted{{SyncRecord: SyncRecord{Client: FlowKey{Src: client2, Dst: single, Proto: TCP},
		Local: ap("172.19.0.5:20000"), Backend: rs1, FwdState: StateEstablished}, ServiceID: 6, LastSeen: Now()}})
	if err != nil || res.Created != 1 {
		t.Fatalf("adopt the peer's connection: %+v, %v", res, err)
	}
	f.nt.do(func() {
		err := netlink.NeighAdd(&netlink.Neigh{LinkIndex: f.lb0.ifindex, Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: client2.Addr().AsSlice(), HardwareAddr: client2MAC})
		if err != nil {
			t.Error(err)
		}
	})
	reply := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: ap("172.19.0.5:20000"), ack: true, seq: 7}
	back := reply
	back.srcMAC, back.dstMAC, back.src, back.dst = lbMAC, client2MAC, single, client2
	f.run(t, reply.bytes(t), f.lb0.ifindex, xdpTX, back.bytes(t), "fwd_tx")
}

func mustWire(t *testing.T, fwd Forward) (xdplbCtKey, xdplbCtFwd) {
	t.Helper()
	k, v, err := fwd.wire()
	if err != nil {
		t.Fatal(err)
	}
	return k, v
}

func mustKey(t *testing.T, k FlowKey) xdplbCtKey {
	t.Helper()
	w, err := k.wire()
	if err != nil {
		t.Fatal(err)
	}
	return w
}
