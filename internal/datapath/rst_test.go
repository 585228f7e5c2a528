package datapath

import "testing"

// TestBlindResetRefused: once a connection's acknowledgements are known, a
// reset far from what its receiver acknowledged is dropped and counted, in
// either direction, and changes nothing; one near it is passed on to the
// endpoint (which checks it exactly) and changes nothing here; a SYN on the
// established connection and a FIN out of order are passed on without
// acting, so they cannot set up an "exact" reset; an exact reset closes
// the half as before.
func TestBlindResetRefused(t *testing.T) {
	f := newFixture(t, 10000, 10000)
	rs1, local := ap("172.19.0.2:80"), ap("172.19.0.5:10000")
	fromClient := func(c frame) frame {
		c.srcMAC, c.dstMAC, c.src, c.dst = clientMAC, lbMAC, client, vip80
		return c
	}
	fromBackend := func(c frame) frame {
		c.srcMAC, c.dstMAC, c.src, c.dst = rs1MAC, lbMAC, rs1, local
		return c
	}
	toBackend := func(in frame) []byte {
		in.srcMAC, in.dstMAC, in.src, in.dst = lbMAC, rs1MAC, local, rs1
		return in.bytes(t)
	}
	forward := func(in frame) {
		t.Helper()
		var verdict uint32
		var err error
		f.nt.do(func() { verdict, _, _, err = f.dp.Run(in.bytes(t), f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			t.Fatalf("verdict %d err %v, want it forwarded", verdict, err)
		}
	}
	checkStates := func(when string, fwd, rev State) {
		t.Helper()
		if gf, gr := f.halves(t, client, local, rs1); gf != fwd || gr != rev {
			t.Errorf("%s: states forward %s reverse %s, want %s %s", when, gf, gr, fwd, rev)
		}
	}
	E := StateEstablished

	// The client's sequence starts at 2, the backend's at 5001; 100 bytes
	// from the client, acknowledged.
	forward(clientSYN(client, clientMAC, vip80))
	forward(fromBackend(frame{syn: true, ack: true, seq: 5000, ackNum: 2}))
	forward(fromClient(frame{ack: true, seq: 2, ackNum: 5001, payload: make([]byte, 100)}))
	forward(fromBackend(frame{ack: true, seq: 5001, ackNum: 102}))

	// Offsets from the acknowledged number, wrapping as sequence numbers do.
	for _, off := range []int64{1 << 30, -(1 << 17), 1<<20 + 1, 1 << 31} {
		f.run(t, fromClient(frame{rst: true, seq: uint32(102 + off)}).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_rst_window")
	}
	for _, off := range []int64{1 << 28, -(1 << 20)} {
		f.run(t, fromBackend(frame{rst: true, seq: uint32(5001 + off)}).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_rst_window")
	}
	checkStates("after blind resets", E, E)

	// A spoofed SYN on the connection, then a reset carrying what the SYN
	// would make the next number: neither acts.
	spoofSYN := fromClient(frame{syn: true, seq: 1 << 28})
	f.run(t, spoofSYN.bytes(t), f.lb0.ifindex, xdpTX, toBackend(spoofSYN), "fwd_tx")
	checkStates("after a SYN on the established connection", E, E)
	f.run(t, fromClient(frame{rst: true, seq: 1<<28 + 1}).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_rst_window")
	// A spoofed FIN far from the acknowledged number: passed on, no effect.
	spoofFIN := fromClient(frame{fin: true, ack: true, seq: 102 + 1<<25, ackNum: 5001})
	f.run(t, spoofFIN.bytes(t), f.lb0.ifindex, xdpTX, toBackend(spoofFIN), "fwd_tx")
	checkStates("after a FIN out of order", E, E)
	// A spoofed ACK cannot move what client resets are checked against:
	// that comes from the backend's packets.
	spoofACK := fromClient(frame{ack: true, seq: 102, ackNum: 5001 + 1000})
	f.run(t, spoofACK.bytes(t), f.lb0.ifindex, xdpTX, toBackend(spoofACK), "fwd_tx")

	near := fromClient(frame{rst: true, seq: 102 + 1000})
	f.run(t, near.bytes(t), f.lb0.ifindex, xdpTX, toBackend(near), "fwd_tx")
	checkStates("after a reset near the acknowledged number", E, E)

	exact := fromClient(frame{rst: true, seq: 102})
	f.run(t, exact.bytes(t), f.lb0.ifindex, xdpTX, toBackend(exact), "fwd_tx")
	checkStates("after an exact reset", StateClose, E)
}

// TestResetOnUnknownSequence: a connection whose acknowledgements are not
// known (adopted from a peer, or from before the datapath followed them)
// honours a reset as before.
func TestResetOnUnknownSequence(t *testing.T) {
	f := newFixture(t, 10000, 10000)
	rs1, local := ap("172.19.0.2:80"), ap("172.19.0.5:10000")
	fwd := Forward{Key: FlowKey{Src: client, Dst: vip80, Proto: TCP}, Local: local, Backend: rs1, State: StateEstablished}
	rev := Reverse{Key: FlowKey{Src: rs1, Dst: local, Proto: TCP}, Client: fwd.Key, State: StateEstablished, Ifindex: uint32(f.lb0.ifindex),
		ClientMAC: [6]byte(clientMAC), LBMAC: [6]byte(lbMAC)}
	if err := f.dp.PutConns([]Forward{fwd}, []Reverse{rev}); err != nil {
		t.Fatal(err)
	}
	rst := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, rst: true, seq: 123456789}
	want := rst
	want.srcMAC, want.dstMAC, want.src, want.dst = lbMAC, clientMAC, vip80, client
	f.run(t, rst.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")
	if _, gr := f.halves(t, client, local, rs1); gr != StateClose {
		t.Errorf("reverse half after a reset on unknown sequence: %s, want CLOSE", gr)
	}
}
