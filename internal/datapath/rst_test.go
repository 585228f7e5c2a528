package datapath

import "testing"

// TestBlindResetRefused: once a connection's sequence numbers are known, a
// reset far from what its receiver expects is dropped and counted, in
// either direction, and changes nothing; one near it is passed on to the
// endpoint (which checks it exactly) and changes nothing here; an exact one
// closes the half as before.
func TestBlindResetRefused(t *testing.T) {
	f := newFixture(t, 10000, 10000)
	rs1, local := ap("172.19.0.2:80"), ap("172.19.0.5:10000")
	fromClient := func(seq uint32, rst bool, payload int) frame {
		return frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: !rst, rst: rst, seq: seq, payload: make([]byte, payload)}
	}
	toBackend := func(in frame) []byte {
		in.srcMAC, in.dstMAC, in.src, in.dst = lbMAC, rs1MAC, local, rs1
		return in.bytes(t)
	}
	fromBackend := func(seq uint32, rst bool) frame {
		return frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, ack: !rst, rst: rst, seq: seq}
	}
	syn := clientSYN(client, clientMAC, vip80) // seq 1: the client sends 2 next
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, toBackend(syn), "fwd_tx")
	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, syn: true, ack: true, seq: 5000, ackNum: 2}
	f.nt.do(func() { _, _, _, _ = f.dp.Run(synAck.bytes(t), f.lb0.ifindex, 1) })
	data := fromClient(2, false, 100) // the client sends 102 next, the backend 5001
	f.run(t, data.bytes(t), f.lb0.ifindex, xdpTX, toBackend(data), "fwd_tx")
	checkStates := func(when string, fwd, rev State) {
		t.Helper()
		if gf, gr := f.halves(t, client, local, rs1); gf != fwd || gr != rev {
			t.Errorf("%s: states forward %s reverse %s, want %s %s", when, gf, gr, fwd, rev)
		}
	}
	E := StateEstablished

	// Offsets from the expected sequence, wrapping as sequence numbers do.
	for _, off := range []int64{1 << 30, -(1 << 17), 1<<20 + 1, 1 << 31} {
		f.run(t, fromClient(uint32(102+off), true, 0).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_rst_window")
	}
	for _, off := range []int64{1 << 28, -(1 << 20)} {
		f.run(t, fromBackend(uint32(5001+off), true).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_rst_window")
	}
	checkStates("after blind resets", E, E)

	near := fromClient(102+1000, true, 0)
	f.run(t, near.bytes(t), f.lb0.ifindex, xdpTX, toBackend(near), "fwd_tx")
	checkStates("after a reset near the expected sequence", E, E)

	exact := fromClient(102, true, 0)
	f.run(t, exact.bytes(t), f.lb0.ifindex, xdpTX, toBackend(exact), "fwd_tx")
	checkStates("after an exact reset", StateClose, E)
}

// TestResetOnUnknownSequence: a connection whose sequence numbers are not
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
