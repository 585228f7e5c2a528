package lb

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// TestAdoptKeepsIDs: a daemon that takes over a running datapath keeps the
// service's id, the ids of the backends it still has (their counters and
// their connections' accounting carry on), and retires the ids of those it
// no longer has instead of giving them to new backends.
func TestAdoptKeepsIDs(t *testing.T) {
	rs1, rs2 := netip.MustParseAddrPort("172.19.0.2:80"), netip.MustParseAddrPort("172.19.0.3:80")
	held := Held{
		Services: map[ident.Service]datapath.Service{
			web.Key(): {ID: 3, Ring: datapath.Ring{Offset: 0, Len: 2}},
			// Gone from the configuration while no daemon ran.
			{VIP: web.VIP, Port: 53, Proto: ident.UDP}: {ID: 1, Ring: datapath.Ring{Offset: 2, Len: 1}},
		},
		Backends: map[uint32]datapath.BackendEntry{
			7:  {ServiceID: 3, Addr: rs1, Assigned: true},
			9:  {ServiceID: 3, Addr: rs2, Assigned: true},
			4:  {ServiceID: 1, Addr: netip.MustParseAddrPort("172.19.0.2:53"), Assigned: true},
			12: {Addr: netip.MustParseAddrPort("172.19.0.9:80")}, // from an older layout: owner unknown
		},
	}
	rec := &recorder{}
	b := Adopt(rec, held)
	next := with(web, be("172.19.0.2:80", 1), be("172.19.0.4:80", 1))
	if err := b.Apply([]config.Service{next}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"SetBackend 7 172.19.0.2:80",
		"ResetBackendTraffic 0",
		"SetBackend 0 172.19.0.4:80",
		"WriteRing 3 [7 0]",
		"SetService 172.19.0.10:80/tcp id=3 ring=3+2",
		"DeleteService 172.19.0.10:53/udp vipInUse=true",
	}
	got := rec.take()
	// The unclaimed backends are cleared in map order.
	cleared := slices.DeleteFunc(slices.Clone(got), func(c string) bool { return !slices.Contains([]string{"ClearBackend 4", "ClearBackend 9"}, c) })
	slices.Sort(cleared)
	if rest := got[:min(len(want), len(got))]; !slices.Equal(rest, want) || !slices.Equal(cleared, []string{"ClearBackend 4", "ClearBackend 9"}) || len(got) != len(want)+2 {
		t.Fatalf("adopting writes\n  got  %q\n  want %q then ClearBackend 4 and 9", got, want)
	}

	// Ids 4, 9 and 12 stay out of use while a sweep finds connections on
	// them, or the sweep began before they were retired.
	newBackend := func() string {
		t.Helper()
		if err := b.Apply([]config.Service{with(next, append(next.Backends, be("172.19.0.5:80", 1))...)}); err != nil {
			t.Fatal(err)
		}
		calls := rec.take()
		if err := b.Apply([]config.Service{next}); err != nil {
			t.Fatal(err)
		}
		rec.take()
		return calls[1]
	}
	b.now = func() time.Time { return time.Unix(100, 0) }
	if got := newBackend(); got != "SetBackend 1 172.19.0.5:80" {
		t.Errorf("new backend after adoption: %q, want id 1", got)
	}
	// The adopted service 1 that went still has a connection.
	inUse := Carried{Backends: map[uint32]datapath.ConnCount{4: {Active: 1}, 12: {Inactive: 2}}, Services: map[uint32]int{1: 1}}
	inUse.Started = time.Unix(50, 0)
	if n := b.Release(inUse); n != 1 {
		t.Errorf("released %d ids, want 1 (9: retired at adoption, no connection; 1 retired after the sweep began)", n)
	}
	inUse.Started = time.Unix(200, 0)
	if n := b.Release(inUse); n != 1 {
		t.Errorf("released %d ids, want 1 (backend 1 carries no connection)", n)
	}
	if n := b.Release(Carried{Started: time.Unix(300, 0)}); n != 3 {
		t.Errorf("released %d ids once no connection carries them, want 3 (backends 4 and 12, service 1)", n)
	}
}

// TestAdoptKeepsCarriedIDs: ids that connections carry but no service or
// backend names any more (removed, and retired, before a hand-over) are
// not handed to new services and backends after it.
func TestAdoptKeepsCarriedIDs(t *testing.T) {
	held := Held{
		Services: map[ident.Service]datapath.Service{web.Key(): {ID: 0, Ring: datapath.Ring{Offset: 0, Len: 1}}},
		Backends: map[uint32]datapath.BackendEntry{
			0: {ServiceID: 0, Addr: netip.MustParseAddrPort("172.19.0.2:80"), Assigned: true},
		},
		CarriedServices: map[uint32]bool{0: true, 1: true},
		CarriedBackends: map[uint32]bool{0: true, 1: true},
	}
	rec := &recorder{}
	b := Adopt(rec, held)
	dns := svc("dns", "172.19.0.10:53", ident.UDP, "rr", be("172.19.0.2:53", 1))
	if err := b.Apply([]config.Service{with(web, be("172.19.0.2:80", 1), be("172.19.0.2:8081", 1)), dns}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"SetBackend 0 172.19.0.2:80",
		"ResetBackendTraffic 2", "SetBackend 2 172.19.0.2:8081",
		"WriteRing 1 [0 2]", "SetService 172.19.0.10:80/tcp id=0 ring=1+2",
		"ResetBackendTraffic 3", "SetBackend 3 172.19.0.2:53",
		"ResetServiceTraffic 2", "WriteRing 0 [3]", "SetService 172.19.0.10:53/udp id=2 ring=0+1",
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("writes\n  got  %q\n  want %q (ids 1 stay out of use)", got, want)
	}
}
