package datapath

import (
	"maps"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/testbed"
)

// TestHalfOpenBound: with SYN authentication off, a service's half-open
// connections stop at their bound: the SYN over it is dropped (action
// drop) or challenged (action challenge), another service is not held
// back by a per-service bound, a completed handshake makes room, and so
// does a sweep that removes expired ones.
func TestHalfOpenBound(t *testing.T) {
	f := newFixture(t, 20000, 20099)
	if err := f.dp.SetSYNKey(testSYNKey); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.SetSYNAuth(SYNAuthOff, 1000, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.SetHalfOpenBounds(0, 2, HalfOpenDrop); err != nil {
		t.Fatal(err)
	}
	opens := func(i int, to netip.AddrPort) {
		t.Helper()
		var verdict uint32
		var err error
		f.nt.do(func() { verdict, _, _, err = f.dp.Run(clientSYN(clientN(i), clientMAC, to).bytes(t), f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			t.Fatalf("SYN of client %d to %s: verdict %d err %v, want it forwarded", i, to, verdict, err)
		}
	}
	opens(0, single)
	opens(1, single)
	third := clientSYN(clientN(2), clientMAC, single)
	f.run(t, third.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_half_open")
	opens(3, vip80) // another service: its own bound

	// Client 0 completes its handshake: room for one more.
	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: clientN(0), dst: single, ack: true, seq: 2}
	f.nt.do(func() { _, _, _, _ = f.dp.Run(ack.bytes(t), f.lb0.ifindex, 1) })
	opens(2, single)
	f.run(t, clientSYN(clientN(4), clientMAC, single).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_half_open")

	// All services together: 3 half-open (clients 1, 2 and 3), bound 3,
	// action challenge.
	if err := f.dp.SetHalfOpenBounds(3, 0, HalfOpenChallenge); err != nil {
		t.Fatal(err)
	}
	fifth := clientSYN(clientN(5), clientMAC, vip80)
	f.run(t, fifth.bytes(t), f.lb0.ifindex, xdpTX,
		challengeFor(t, fifth, cookieOf(testSYNKey, clientN(5), vip80, slotNow())), "fwd_half_open_challenge")

	// A sweep counts them per service (single is service 6, vip:80 is 0)
	// and writes its counts over the datapath's.
	keepAll := func(uint8, State, State, uint64) bool { return false }
	res, err := f.dp.Sweep(Now(), math.MaxUint64, keepAll, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]int{0: 1, 6: 2}
	if res.HalfOpen != 3 || !maps.Equal(res.HalfOpenPerService, want) {
		t.Errorf("sweep: %d half-open, per service %v; want 3, %v", res.HalfOpen, res.HalfOpenPerService, want)
	}
	checkCounts := func(when string, want map[uint32]int64) {
		t.Helper()
		for id, n := range want {
			var got int64
			if err := f.dp.objs.HalfOpen.Lookup(id, &got); err != nil || got != n {
				t.Errorf("%s: datapath's half-open count of %d: %d (%v), want %d", when, id, got, err, n)
			}
		}
	}
	checkCounts("after a sweep", map[uint32]int64{0: 1, 6: 2, MaxServices: 3})

	// A sweep that finds them all expired counts them again: room.
	expireAll := func(uint8, State, State, uint64) bool { return true }
	if res, err = f.dp.Sweep(math.MaxUint64/2, 0, expireAll, true); err != nil {
		t.Fatal(err)
	}
	if res.HalfOpen != 0 {
		t.Errorf("sweep that removed every connection left %d half-open", res.HalfOpen)
	}
	checkCounts("after a sweep that removed them", map[uint32]int64{0: 0, 6: 0, MaxServices: 0})
	opens(5, vip80)
}

// TestHalfOpenCountFollowsEntries: a half-open entry the datapath forgets
// (a SYN retransmitted after its backend was drained, scheduled afresh)
// leaves the count, so the count is the entries; and with SYN
// authentication off and the drop action, no reset is taken for a proof.
func TestHalfOpenCountFollowsEntries(t *testing.T) {
	f := newFixture(t, poolBase, poolBase+9)
	if err := f.dp.SetSYNAuth(SYNAuthOff, 1000, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.SetHalfOpenBounds(0, 5, HalfOpenDrop); err != nil {
		t.Fatal(err)
	}
	const singleID, singleSvc = 6, 6
	in, out := synFrom(t, clientN(0), poolBase)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	if err := f.dp.SetBackend(singleID, singleSvc, rs1HTTP, true); err != nil {
		t.Fatal(err)
	}
	// Forgotten and opened again (the ring still names the one backend).
	f.nt.do(func() { _, _, _, _ = f.dp.Run(in, f.lb0.ifindex, 1) })
	var n int64
	if err := f.dp.objs.HalfOpen.Lookup(uint32(singleSvc), &n); err != nil || n != 1 {
		t.Errorf("half-open count of the service after a rescheduled SYN: %d (%v), want 1", n, err)
	}
	rst := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: clientN(9), dst: single, rst: true, seq: 77}
	f.run(t, rst.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_conn")
}

// TestHalfOpenSweepKeepsNewCounts: what the datapath counted while a
// sweep ran (here 2 opened for service 6) is kept on top of the sweep's
// count, not lost to it.
func TestHalfOpenSweepKeepsNewCounts(t *testing.T) {
	testbed.RequirePrivileges(t)
	dp, err := Load(Options{ConntrackCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	set := func(svc uint32, n int64) {
		if err := dp.objs.HalfOpen.Update(svc, n, ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	set(6, 5)
	set(MaxServices, 5)
	before, err := readArray[int64](dp.objs.HalfOpen, MaxServices+1)
	if err != nil {
		t.Fatal(err)
	}
	set(6, 7) // two opened during the walk
	set(MaxServices, 7)
	if err := dp.writeHalfOpen(map[uint32]int{6: 3}, 3, before); err != nil {
		t.Fatal(err)
	}
	for svc, want := range map[uint32]int64{6: 5, MaxServices: 5, 0: 0} {
		var got int64
		if err := dp.objs.HalfOpen.Lookup(svc, &got); err != nil || got != want {
			t.Errorf("half-open count of %d after the sweep: %d (%v), want %d", svc, got, err, want)
		}
	}
}
