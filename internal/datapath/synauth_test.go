package datapath

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"testing"
	"time"
)

var testSYNKey = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// cookieOf computes the datapath's SYN cookie here, independently:
// SipHash-2-4 keyed with k of the tuple as it sits in the packet and the
// time slot.
func cookieOf(k [16]byte, c, s netip.AddrPort, slot uint64) uint32 {
	k0, k1 := binary.NativeEndian.Uint64(k[:8]), binary.NativeEndian.Uint64(k[8:])
	v0, v1 := k0^0x736f6d6570736575, k1^0x646f72616e646f6d
	v2, v3 := k0^0x6c7967656e657261, k1^0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13) ^ v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16) ^ v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21) ^ v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17) ^ v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	m0 := uint64(mustBE32(c.Addr()))<<32 | uint64(mustBE32(s.Addr()))
	m1 := uint64(be16(c.Port()))<<48 | uint64(be16(s.Port()))<<32 | slot&0xffffffff
	for _, m := range []uint64{m0, m1, 16 << 56} {
		v3 ^= m
		round()
		round()
		v0 ^= m
	}
	v2 ^= 0xff
	for range 4 {
		round()
	}
	return uint32(v0 ^ v1 ^ v2 ^ v3)
}

func slotNow() uint64 { return Now() >> 36 }

// challengeFor is the SYN-ACK the datapath answers syn with.
func challengeFor(t *testing.T, syn frame, cookie uint32) []byte {
	t.Helper()
	if cookie == syn.seq+1 {
		cookie ^= 1
	}
	back := frame{srcMAC: syn.dstMAC, dstMAC: syn.srcMAC, src: syn.dst, dst: syn.src, syn: true, ack: true, seq: ^cookie}
	return resetFrame(t, back, cookie)
}

// TestSYNChallenge: with SYN authentication on, a SYN from an unverified
// source is answered with a SYN-ACK carrying the cookie, byte for byte, and
// opens nothing; a forged reset verifies nothing; the reset carrying the
// cookie (this slot's or the previous one's) verifies the source, whose
// next SYN opens the connection as usual.
func TestSYNChallenge(t *testing.T) {
	f := newFixture(t, 20000, 20000)
	if err := f.dp.SetSYNKey(testSYNKey); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.SetSYNAuth(SYNAuthAlways, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	single := netip.AddrPortFrom(netip.MustParseAddr("172.19.0.11"), 80)
	syn := clientSYN(client, clientMAC, single)
	slot := slotNow()
	cookie := cookieOf(testSYNKey, client, single, slot)
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, challengeFor(t, syn, cookie), "fwd_syn_challenge")
	if err := f.dp.objs.CtForward.Lookup(mustKey(t, FlowKey{Src: client, Dst: single, Proto: TCP}), new(xdplbCtFwd)); err == nil {
		t.Fatal("a challenged SYN opened a connection")
	}

	rst := func(c netip.AddrPort, mac []byte, seq uint32) []byte {
		return frame{srcMAC: mac, dstMAC: lbMAC, src: c, dst: single, rst: true, seq: seq}.bytes(t)
	}
	f.run(t, rst(client, clientMAC, cookie+7), f.lb0.ifindex, xdpDrop, nil, "drop_bad_proof")
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, challengeFor(t, syn, cookie), "fwd_syn_challenge")
	f.run(t, rst(client, clientMAC, cookie), f.lb0.ifindex, xdpDrop, nil, "drop_syn_proof")
	var until uint64
	if err := f.dp.objs.SynVerified.Lookup(mustBE32(client.Addr()), &until); err != nil || until < Now()+50*uint64(time.Second) {
		t.Errorf("verified until %d (%v), want about a minute from now", until, err)
	}
	opened := syn
	opened.srcMAC, opened.dstMAC, opened.src, opened.dst = lbMAC, rs1MAC, ap("172.19.0.5:20000"), ap("172.19.0.2:80")
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, opened.bytes(t), "fwd_tx")

	// The previous slot's cookie still proves a source.
	prev := cookieOf(testSYNKey, client2, single, slot-1)
	f.run(t, rst(client2, client2MAC, prev), f.lb0.ifindex, xdpDrop, nil, "drop_syn_proof")
	if err := f.dp.objs.SynVerified.Lookup(mustBE32(client2.Addr()), &until); err != nil {
		t.Errorf("a proof from the previous slot verified nothing: %v", err)
	}
	// Another key: the old cookies prove nothing.
	other := testSYNKey
	other[0]++
	if err := f.dp.SetSYNKey(other); err != nil {
		t.Fatal(err)
	}
	stranger := ap("172.19.0.77:4000")
	f.run(t, rst(stranger, clientMAC, cookieOf(testSYNKey, stranger, single, slot)), f.lb0.ifindex, xdpDrop, nil, "drop_bad_proof")
}

// TestSYNAuthAuto: in auto mode new connections open as usual up to the
// threshold of SYNs per second, and are challenged beyond it.
func TestSYNAuthAuto(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	if err := f.dp.SetSYNKey(testSYNKey); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.SetSYNAuth(SYNAuthAuto, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Keep the test inside one second of the coarse clock.
	for Now()>>30 != (Now()+200*uint64(time.Millisecond))>>30 {
		time.Sleep(10 * time.Millisecond)
	}
	var challenged int
	for i := range 5 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 19, 1, byte(i)}), 40000)
		var verdict uint32
		var err error
		f.nt.do(func() { verdict, _, _, err = f.dp.Run(clientSYN(c, clientMAC, vip80).bytes(t), f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			t.Fatalf("SYN %d: verdict %d, %v", i, verdict, err)
		}
		if f.dp.objs.CtForward.Lookup(mustKey(t, FlowKey{Src: c, Dst: vip80, Proto: TCP}), new(xdplbCtFwd)) != nil {
			challenged++
		}
	}
	if challenged != 2 {
		t.Errorf("%d of 5 SYNs in one second challenged with a threshold of 3, want 2", challenged)
	}
}
