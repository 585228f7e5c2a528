package datapath

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/ident"
)

// refFlowHash is an independent rendering of the datapath's flow hash (the
// murmur3 finaliser over the client's address, then VIP, ports and
// protocol), computed on the wire-order words as the program sees them.
func refFlowHash(src, dst netip.AddrPort, proto uint8, sourceOnly bool) uint32 {
	mix := func(h uint32) uint32 {
		h ^= h >> 16
		h *= 0x85ebca6b
		h ^= h >> 13
		h *= 0xc2b2ae35
		h ^= h >> 16
		return h
	}
	word := func(a netip.Addr) uint32 { b := a.As4(); return binary.LittleEndian.Uint32(b[:]) }
	port := func(p uint16) uint32 { return uint32(p>>8 | p<<8) }
	h := mix(word(src.Addr()) ^ 0x9e3779b9)
	if sourceOnly {
		return h
	}
	h = mix(h ^ word(dst.Addr()))
	h = mix(h ^ (port(src.Port())<<16 | port(dst.Port())))
	return mix(h ^ uint32(proto))
}

// backendOf opens a connection from c to svc and returns its backend.
func (f *fixture) backendOf(t *testing.T, c, svc netip.AddrPort) netip.AddrPort {
	t.Helper()
	var verdict uint32
	var err error
	f.nt.do(func() { verdict, _, _, err = f.dp.Run(clientSYN(c, clientMAC, svc).bytes(t), f.lb0.ifindex, 1) })
	if err != nil || verdict != xdpTX {
		t.Fatalf("SYN from %s to %s: verdict %d err %v", c, svc, verdict, err)
	}
	k := xdplbCtKey{Saddr: mustBE32(c.Addr()), Daddr: mustBE32(svc.Addr()), Sport: be16(c.Port()), Dport: be16(svc.Port()), Proto: TCP}
	var v xdplbCtFwd
	if err := f.dp.objs.CtForward.Lookup(k, &v); err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(addrFromBE32(v.BackendAddr), portFromBE16(v.BackendPort))
}

func TestHashIndexes(t *testing.T) {
	f := newFixture(t, 10000, 60000)
	for _, c := range []struct {
		name       string
		svc        netip.AddrPort
		sourceOnly bool
	}{
		{"maglev tuple hash", netip.AddrPortFrom(vip, 85), false},
		{"source hash", netip.AddrPortFrom(vip, 86), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			backends := []netip.AddrPort{ap("172.19.0.2:" + itoa(c.svc.Port())), ap("172.19.0.3:" + itoa(c.svc.Port()))}
			seen := map[netip.AddrPort]int{}
			for i := 0; i < 64; i++ {
				cl := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i / 8), byte(i)}), uint16(40000+i))
				got := f.backendOf(t, cl, c.svc)
				want := backends[refFlowHash(cl, c.svc, TCP, c.sourceOnly)%2]
				if got != want {
					t.Fatalf("client %s went to %s, the hash says %s", cl, got, want)
				}
				seen[got]++
				if c.sourceOnly {
					again := netip.AddrPortFrom(cl.Addr(), cl.Port()+1000)
					if b := f.backendOf(t, again, c.svc); b != got {
						t.Errorf("same client address, other port: %s, want %s", b, got)
					}
				}
			}
			if len(seen) != 2 {
				t.Errorf("64 clients all went to %v", seen)
			}
		})
	}
}

func TestPersistence(t *testing.T) {
	f := newFixture(t, 10000, 60000)
	svc := netip.AddrPortFrom(vip, 87)
	rs1, rs2 := ap("172.19.0.2:87"), ap("172.19.0.3:87")
	a, b := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
	if got := f.backendOf(t, netip.AddrPortFrom(a, 1000), svc); got != rs1 {
		t.Fatalf("first connection of a: %s, want %s", got, rs1)
	}
	// Round robin alone would send this one to rs2.
	if got := f.backendOf(t, netip.AddrPortFrom(a, 1001), svc); got != rs1 {
		t.Errorf("second connection of a: %s, want %s (persistent)", got, rs1)
	}
	if got := f.backendOf(t, netip.AddrPortFrom(b, 1000), svc); got != rs2 {
		t.Errorf("first connection of b: %s, want %s", got, rs2)
	}
	// Drain rs1: persistence no longer sends a there.
	var id uint32
	for i, s := range fixtureServices {
		if s.key.Port == 87 {
			id = uint32(i)
		}
	}
	var sv xdplbSvcValue
	if err := f.dp.objs.Services.Lookup(xdplbSvcKey{Vip: mustBE32(vip), Port: be16(87), Proto: TCP}, &sv); err != nil {
		t.Fatal(err)
	}
	var rs1ID uint32
	if err := f.dp.objs.Rings.Lookup(sv.RingOff, &rs1ID); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.SetBackend(rs1ID, id, rs1, true); err != nil {
		t.Fatal(err)
	}
	var rs2ID uint32
	if err := f.dp.objs.Rings.Lookup(sv.RingOff+1, &rs2ID); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.WriteRing(RingSlots-1, []uint32{rs2ID}); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.SetService(ident.Service{VIP: vip, Port: 87, Proto: ident.TCP}, Service{ID: id, Ring: Ring{Offset: RingSlots - 1, Len: 1}, Persist: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if got := f.backendOf(t, netip.AddrPortFrom(a, 1002), svc); got != rs2 {
		t.Errorf("a after rs1 was drained: %s, want %s", got, rs2)
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// TestPersistenceNeverFollowsAReusedID: a backend id given to another
// backend is not where a returning client goes.
func TestPersistenceNeverFollowsAReusedID(t *testing.T) {
	f := newFixture(t, 10000, 60000)
	svc := netip.AddrPortFrom(vip, 87)
	a := netip.MustParseAddr("10.9.0.1")
	first := f.backendOf(t, netip.AddrPortFrom(a, 1000), svc)
	var sv xdplbSvcValue
	if err := f.dp.objs.Services.Lookup(xdplbSvcKey{Vip: mustBE32(vip), Port: be16(87), Proto: TCP}, &sv); err != nil {
		t.Fatal(err)
	}
	var id uint32
	if err := f.dp.objs.Rings.Lookup(sv.RingOff, &id); err != nil {
		t.Fatal(err)
	}
	// The id now stands for another backend.
	moved := ap("172.19.0.2:9999")
	if err := f.dp.SetBackend(id, sv.Id, moved, false); err != nil {
		t.Fatal(err)
	}
	got := f.backendOf(t, netip.AddrPortFrom(a, 1001), svc)
	if first == got {
		t.Fatalf("first connection went to %s; the second, after its id was reused, too", first)
	}
	// Round robin's next slot is the other backend: the persisted id was
	// ignored, not followed to 172.19.0.2:9999.
	if got != ap("172.19.0.3:87") {
		t.Errorf("second connection went to %s, want the ring's next pick 172.19.0.3:87", got)
	}
}

// TestVIPFilter: a service's VIP passes the filter while it is served, and
// once removed its packets go to the host.
func TestVIPFilter(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	newVIP := netip.MustParseAddrPort("172.19.0.12:80")
	key := ident.Service{VIP: newVIP.Addr(), Port: 80, Proto: ident.TCP}
	if err := f.dp.WriteRing(RingSlots-1, []uint32{0}); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.SetService(key, Service{ID: 99, Ring: Ring{Offset: RingSlots - 1, Len: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := f.backendOf(t, client, newVIP); got != ap("172.19.0.2:80") {
		t.Fatalf("new VIP served by %s", got)
	}
	if err := f.dp.DeleteService(key, false); err != nil {
		t.Fatal(err)
	}
	syn := clientSYN(client2, client2MAC, newVIP)
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpPass, nil, "pass_no_service")
	// The other VIPs are still there.
	f.backendOf(t, client2, vip80)
}
