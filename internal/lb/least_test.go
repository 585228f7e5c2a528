package lb

import (
	"slices"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// TestLeastConnection: a wlc service's backends get their weights before
// its ring names them, a lc service's get 1, and the sweep's counts become
// loads as IPVS weighs them.
func TestLeastConnection(t *testing.T) {
	rec := &recorder{}
	b := New(rec)
	wlc := svc("web", "172.19.0.10:80", ident.TCP, "wlc", be("172.19.0.2:80", 3), be("172.19.0.3:80", 1))
	if err := b.Apply([]config.Service{wlc}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ResetBackendTraffic 0", "SetBackend 0 172.19.0.2:80",
		"ResetBackendTraffic 1", "SetBackend 1 172.19.0.3:80",
		"ResetServiceTraffic 0",
		"SetBackendLoad 0 weight=3 load=0", "SetBackendLoad 1 weight=1 load=0",
		"WriteRing 0 [0 1]", "SetService 172.19.0.10:80/tcp id=0 ring=0+2 index=3",
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("wlc from scratch:\n  got  %q\n  want %q", got, want)
	}
	if err := b.ApplyLoads(map[uint32]datapath.ConnCount{0: {Active: 2, Inactive: 1}}); err != nil {
		t.Fatal(err)
	}
	want = []string{"SetBackendLoad 0 weight=3 load=513", "SetBackendLoad 1 weight=1 load=0"}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("loads:\n  got  %q\n  want %q", got, want)
	}
	lc := wlc
	lc.Scheduler = "lc"
	if err := b.Apply([]config.Service{lc}); err != nil {
		t.Fatal(err)
	}
	want = []string{"SetBackendLoad 0 weight=1 load=513"} // the same ring and index: only the weights change
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("wlc to lc:\n  got  %q\n  want %q", got, want)
	}
}
