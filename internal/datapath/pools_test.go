package datapath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// single is the fixture's service with one backend, rs1:80, whose pool the
// vip:80 service shares (same backend address and port).
var (
	single   = ap("172.19.0.11:80")
	rs1HTTP  = ap("172.19.0.2:80")
	poolBase = uint16(20000)
)

// synFrom is a client's SYN to single, and what leaves for rs1 when it gets
// local port port.
func synFrom(t *testing.T, c netip.AddrPort, port uint16) (in, out []byte) {
	t.Helper()
	syn := clientSYN(c, clientMAC, single)
	want := syn
	want.srcMAC, want.dstMAC = lbMAC, rs1MAC
	want.src, want.dst = netip.AddrPortFrom(localAddr, port), rs1HTTP
	return syn.bytes(t), want.bytes(t)
}

func clientN(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(40000+i))
}

// expire removes client c's connection to single, as the collector does.
func (f *fixture) expire(t *testing.T, c netip.AddrPort, port uint16) {
	t.Helper()
	if err := f.dp.DeleteForward([]FlowKey{{Src: c, Dst: single, Proto: TCP}}); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.DeleteReverse([]FlowKey{{Src: rs1HTTP, Dst: netip.AddrPortFrom(localAddr, port), Proto: TCP}}); err != nil {
		t.Fatal(err)
	}
}

// TestPoolHandsOutEveryPort: a backend's every local port is handed out,
// the last one included; the next connection is refused and counted; a
// port comes back only when its connection expires, the one free the
// longest first.
func TestPoolHandsOutEveryPort(t *testing.T) {
	f := newFixture(t, poolBase, poolBase+3)
	for i := range 4 {
		in, out := synFrom(t, clientN(i), poolBase+uint16(i))
		f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	}
	full, _ := synFrom(t, clientN(4), 0)
	f.run(t, full, f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")
	f.run(t, full, f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")

	// Freed in the order 20003, 20001: handed out again in that order.
	f.expire(t, clientN(3), poolBase+3)
	f.expire(t, clientN(1), poolBase+1)
	for i, port := range []uint16{poolBase + 3, poolBase + 1} {
		in, out := synFrom(t, clientN(10+i), port)
		f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	}
	f.run(t, full, f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")
}

// TestPoolSharedByBackendAddress: two services whose backends are the same
// address and port draw from one pool: a tuple is unique per backend
// address, whichever service opened it.
func TestPoolSharedByBackendAddress(t *testing.T) {
	f := newFixture(t, poolBase, poolBase)
	in, out := synFrom(t, clientN(0), poolBase)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	// vip:80's first connection goes to rs1:80 too, and finds no port.
	viaOther := clientSYN(clientN(1), clientMAC, vip80)
	f.run(t, viaOther.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")
}

// TestPoolSkipsPortsInUse: a connection older than the pool (adopted from
// a peer, or opened before the local ports changed) keeps its port: the
// pool skips it, and hands it out once it has ended.
func TestPoolSkipsPortsInUse(t *testing.T) {
	f := newFixture(t, poolBase, poolBase+1)
	older := clientN(100)
	fwd := Forward{Key: FlowKey{Src: older, Dst: single, Proto: TCP}, Local: netip.AddrPortFrom(localAddr, poolBase),
		Backend: rs1HTTP, BackendID: 0, State: StateEstablished}
	rev := Reverse{Key: FlowKey{Src: rs1HTTP, Dst: netip.AddrPortFrom(localAddr, poolBase), Proto: TCP}, Client: fwd.Key,
		State: StateEstablished}
	if err := f.dp.PutConns([]Forward{fwd}, []Reverse{rev}); err != nil {
		t.Fatal(err)
	}
	in, out := synFrom(t, clientN(0), poolBase+1)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	next, _ := synFrom(t, clientN(1), 0)
	f.run(t, next, f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")
	f.expire(t, older, poolBase)
	in, out = synFrom(t, clientN(1), poolBase)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
}

// TestPoolFollowsLocalPorts: new local ports make the pools afresh; the
// new range is handed out from its start.
func TestPoolFollowsLocalPorts(t *testing.T) {
	f := newFixture(t, poolBase, poolBase)
	in, out := synFrom(t, clientN(0), poolBase)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	wider := Ports{Min: poolBase, Max: poolBase + 2}
	if err := f.dp.SetLocal([]netip.Addr{localAddr}, wider, wider); err != nil {
		t.Fatal(err)
	}
	for i, port := range []uint16{poolBase + 1, poolBase + 2} { // 20000 is still in use
		in, out := synFrom(t, clientN(1+i), port)
		f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	}
	next, _ := synFrom(t, clientN(3), 0)
	f.run(t, next, f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")
}

// TestPoolFullMadeAfresh: a pool whose queue of freed ports overflows
// (more freed ports than it holds) is made afresh and loses none: every
// port is handed out again.
func TestPoolFullMadeAfresh(t *testing.T) {
	f := newFixture(t, poolBase, poolBase+1)
	for i := range 2 {
		in, out := synFrom(t, clientN(i), poolBase+uint16(i))
		f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	}
	fillQueue(t, f.dp, f.dp.pools.byDest[rs1HTTP])
	f.expire(t, clientN(0), poolBase) // no room: the pool is made afresh
	in, out := synFrom(t, clientN(10), poolBase)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	next, _ := synFrom(t, clientN(11), 0)
	f.run(t, next, f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted") // 20001 is in use
	f.expire(t, clientN(1), poolBase+1)                                 // freed after the remake: queued
	in, out = synFrom(t, clientN(20), poolBase+1)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
}

// TestPoolsAdopted: a daemon adopting pinned maps finds the pools as they
// were (cursor included); maps from before pools existed get one per
// backend address.
func TestPoolsAdopted(t *testing.T) {
	path := filepath.Join(tempBPFFS(t), "xdplb")
	opts := Options{ConntrackCapacity: 1024, PinPath: path}
	dp, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	ports := Ports{Min: poolBase, Max: poolBase + 99}
	if err := dp.SetLocal([]netip.Addr{localAddr}, ports, ports); err != nil {
		t.Fatal(err)
	}
	for id, a := range []string{"172.19.0.2:80", "172.19.0.3:80", "172.19.0.2:80"} {
		if err := dp.SetBackend(uint32(id), 0, ap(a), false); err != nil {
			t.Fatal(err)
		}
	}
	idx := dp.pools.byDest[rs1HTTP]
	if err := dp.objs.PoolCursor.Update(idx, uint32(42), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	dp.Close()

	dp, err = Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	checkPools(t, dp, map[uint32]string{0: "172.19.0.2:80", 1: "172.19.0.3:80", 2: "172.19.0.2:80"})
	var cursor uint32
	if err := dp.objs.PoolCursor.Lookup(dp.pools.ofID[0], &cursor); err != nil || cursor != 42 {
		t.Errorf("adopted pool's cursor: %d (%v), want 42", cursor, err)
	}
	// What a version without pools leaves: backends, no pools.
	for id := range uint32(3) {
		if err := dp.objs.BackendPool.Update(id, uint32(0), ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	for idx := range dp.pools.refs {
		if err := dp.objs.PortPools.Delete(idx); err != nil {
			t.Fatal(err)
		}
	}
	dp.Close()
	dp, err = Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Remove()
	checkPools(t, dp, map[uint32]string{0: "172.19.0.2:80", 1: "172.19.0.3:80", 2: "172.19.0.2:80"})
}

// checkPools: each backend id has the pool of its address in the kernel,
// ids of one address share it, and each pool has its queue.
func checkPools(t *testing.T, dp *Datapath, want map[uint32]string) {
	t.Helper()
	byAddr := map[string]uint32{}
	for id, a := range want {
		var ref uint32
		if err := dp.objs.BackendPool.Lookup(id, &ref); err != nil || ref == 0 {
			t.Fatalf("backend %d: pool %d (%v), want one", id, ref, err)
		}
		if prev, ok := byAddr[a]; ok && prev != ref {
			t.Errorf("backend %d (%s): pool %d, but another id of that address has %d", id, a, ref-1, prev-1)
		}
		byAddr[a] = ref
		var q *ebpf.Map
		if err := dp.objs.PortPools.Lookup(ref-1, &q); err != nil {
			t.Errorf("backend %d: pool %d has no queue: %v", id, ref-1, err)
			continue
		}
		q.Close()
	}
	if len(dp.pools.refs) != len(byAddr) {
		t.Errorf("%d pools accounted for, want %d: %s", len(dp.pools.refs), len(byAddr), fmt.Sprint(dp.pools.refs))
	}
}

// TestPoolReleasedByDatapath: a connection the datapath removes itself (a
// SYN on a half-open entry whose backend was drained, scheduled afresh)
// gives its port back to the pool at once. The ring still names the one
// backend, so the SYN gets it again, with the one port: without the
// release it would find none.
func TestPoolReleasedByDatapath(t *testing.T) {
	f := newFixture(t, poolBase, poolBase)
	const singleID, singleSvc = 6, 6 // fixtureServices' ids for single
	in, out := synFrom(t, clientN(0), poolBase)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	if err := f.dp.SetBackend(singleID, singleSvc, rs1HTTP, true); err != nil {
		t.Fatal(err)
	}
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	other, _ := synFrom(t, clientN(1), 0)
	f.run(t, other, f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")
}

// TestPoolFullEvent: when the datapath finds a pool's queue full as it
// frees a port, it says so, and ReadEvents makes the pool afresh: the port
// is handed out again.
func TestPoolFullEvent(t *testing.T) {
	f := newFixture(t, poolBase, poolBase)
	const singleID, singleSvc = 6, 6
	in, out := synFrom(t, clientN(0), poolBase)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
	fillQueue(t, f.dp, f.dp.pools.byDest[rs1HTTP])
	if err := f.dp.SetBackend(singleID, singleSvc, rs1HTTP, true); err != nil {
		t.Fatal(err)
	}
	// Freed into a full queue, then only junk to pop.
	f.run(t, in, f.lb0.ifindex, xdpDrop, nil, "drop_ports_exhausted")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go f.dp.ReadEvents(ctx, func(e Event) {
		if e.Type == EventPoolFull {
			if e.Err != nil {
				t.Errorf("pool not made afresh: %v", e.Err)
			}
			cancel()
		}
	})
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("no pool-full event")
	}
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
}

// fillQueue fills pool idx's queue with slots of no local address.
func fillQueue(t *testing.T, dp *Datapath, idx uint32) {
	t.Helper()
	var q *ebpf.Map
	if err := dp.objs.PortPools.Lookup(idx, &q); err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range q.MaxEntries() {
		if err := q.Update(nil, uint32(i)|0x3f<<16, ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPoolRemadeOncePerBurst: the pool-full events of one burst make the
// pool afresh once; the ones within a second after are answered by it.
func TestPoolRemadeOncePerBurst(t *testing.T) {
	f := newFixture(t, poolBase, poolBase)
	idx := f.dp.pools.byDest[rs1HTTP]
	queueID := func() ebpf.MapID {
		t.Helper()
		var q *ebpf.Map
		if err := f.dp.objs.PortPools.Lookup(idx, &q); err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		info, err := q.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		return id
	}
	first := queueID()
	if err := f.dp.RemakePool(idx); err != nil {
		t.Fatal(err)
	}
	remade := queueID()
	if remade == first {
		t.Fatal("a pool-full event did not make the pool afresh")
	}
	if err := f.dp.RemakePool(idx); err != nil {
		t.Fatal(err)
	}
	if queueID() != remade {
		t.Error("a second event of the same burst made the pool afresh again")
	}
}
