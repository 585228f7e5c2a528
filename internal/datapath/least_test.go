package datapath

import (
	"net/netip"
	"testing"

	"github.com/xdplb/xdplb/internal/ident"
)

// TestLeastConnection: with the lc/wlc index a new connection goes to the
// backend with the least load per weight, and its load grows by what a
// connection weighs until the next sweep's write.
func TestLeastConnection(t *testing.T) {
	f := newFixture(t, 10000, 60000)
	key := ident.Service{VIP: vip, Port: 85, Proto: ident.TCP}
	svcs, err := f.dp.Services()
	if err != nil {
		t.Fatal(err)
	}
	s := svcs[key]
	s.Index = IndexLeast
	if err := f.dp.SetService(key, s); err != nil {
		t.Fatal(err)
	}
	var a, b uint32
	for i, id := range []*uint32{&a, &b} {
		if err := f.dp.objs.Rings.Lookup(s.Ring.Offset+uint32(i), id); err != nil {
			t.Fatal(err)
		}
	}
	addrA, addrB := ap("172.19.0.2:85"), ap("172.19.0.3:85")
	load := func(id uint32) uint64 {
		var v xdplbBackendLoad
		if err := f.dp.objs.BackendLoads.Lookup(id, &v); err != nil {
			t.Fatal(err)
		}
		return v.Conns
	}
	for i, c := range []struct {
		name                       string
		weightA, weightB           uint32
		loadA, loadB               uint64
		want                       netip.AddrPort
		wantLoadAfter, otherLoadAt uint64
	}{
		{"lc: the idle one", 1, 1, 1000, 0, addrB, LeastLoadActive, 1000},
		{"lc: the other idle one", 1, 1, 0, 1000, addrA, LeastLoadActive, 1000},
		{"wlc: 600/3 < 256/1", 3, 1, 600, 256, addrA, 600 + LeastLoadActive, 256},
		{"a weight of 0 is never chosen", 0, 1, 0, 5000, addrB, 5000 + LeastLoadActive, 0},
	} {
		if err := f.dp.SetBackendLoad(a, c.weightA, c.loadA); err != nil {
			t.Fatal(err)
		}
		if err := f.dp.SetBackendLoad(b, c.weightB, c.loadB); err != nil {
			t.Fatal(err)
		}
		client := netip.AddrPortFrom(netip.MustParseAddr("172.19.0.9"), uint16(41000+i))
		got := f.backendOf(t, client, netip.AddrPortFrom(vip, 85))
		if got != c.want {
			t.Errorf("%s: new connection to %s, want %s", c.name, got, c.want)
			continue
		}
		chosen, other := a, b
		if got == addrB {
			chosen, other = b, a
		}
		if l := load(chosen); l != c.wantLoadAfter {
			t.Errorf("%s: the chosen backend's load is %d, want %d", c.name, l, c.wantLoadAfter)
		}
		if l := load(other); l != c.otherLoadAt {
			t.Errorf("%s: the other backend's load is %d, want %d", c.name, l, c.otherLoadAt)
		}
	}
}

// TestPersistenceNetmask: with a persistence netmask, clients of one
// subnet share their backend; clients of another subnet do not.
func TestPersistenceNetmask(t *testing.T) {
	f := newFixture(t, 10000, 60000)
	key := ident.Service{VIP: vip, Port: 87, Proto: ident.TCP}
	svcs, err := f.dp.Services()
	if err != nil {
		t.Fatal(err)
	}
	s := svcs[key]
	s.PersistBits = 24
	if err := f.dp.SetService(key, s); err != nil {
		t.Fatal(err)
	}
	if back, _ := f.dp.Services(); back[key].PersistBits != 24 {
		t.Errorf("Services reads the netmask back as /%d, want /24", back[key].PersistBits)
	}
	svc := netip.AddrPortFrom(vip, 87)
	first := f.backendOf(t, ap("10.9.0.1:1000"), svc)
	// Round robin alone would send these to the other backend.
	if got := f.backendOf(t, ap("10.9.0.77:1000"), svc); got != first {
		t.Errorf("another client of 10.9.0.0/24: %s, want %s (the subnet's)", got, first)
	}
	if got := f.backendOf(t, ap("10.9.1.1:1000"), svc); got == first {
		t.Errorf("a client of 10.9.1.0/24 got %s too; round robin would send it to the other backend", got)
	}
}
