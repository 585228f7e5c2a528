package lb

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

// TestSchedulerAndPersistence: a change of scheduler or persistence alone
// rewrites just the service value.
func TestSchedulerAndPersistence(t *testing.T) {
	sticky := web
	sticky.Persistence = 5 * time.Minute
	runSteps(t, []step{
		{apply: []config.Service{web}, want: webFromScratch},
		{apply: []config.Service{sticky}, want: []string{
			"SetService 172.19.0.10:80/tcp id=0 ring=0+2 persist=5m0s",
		}},
		{apply: []config.Service{sticky}},
	})
}

// TestClientAddress: turning toa on or off alone rewrites just the
// service value, as a change of scheduler or persistence does.
func TestClientAddress(t *testing.T) {
	toa := web
	toa.ClientAddress = config.ClientAddressTOA
	none := web
	none.ClientAddress = config.ClientAddressNone
	runSteps(t, []step{
		{apply: []config.Service{web}, want: webFromScratch},
		{apply: []config.Service{toa}, want: []string{
			"SetService 172.19.0.10:80/tcp id=0 ring=0+2 toa",
		}},
		{apply: []config.Service{toa}},
		{apply: []config.Service{none}, want: []string{
			"SetService 172.19.0.10:80/tcp id=0 ring=0+2",
		}},
	})
}

// TestSetDown: a backend health checks take out leaves the ring and is
// marked drained; back up, it returns.
func TestSetDown(t *testing.T) {
	rec := &recorder{}
	b := New(rec)
	if err := b.Apply([]config.Service{web}); err != nil {
		t.Fatal(err)
	}
	rec.take()
	rs2 := netip.MustParseAddrPort("172.19.0.3:80")
	steps := []struct {
		down bool
		want []string
	}{
		{true, []string{"WriteRing 2 [0]", "SetService 172.19.0.10:80/tcp id=0 ring=2+1", "SetBackend 1 172.19.0.3:80 drained"}},
		{true, nil},
		{false, []string{"WriteRing 0 [0 1]", "SetService 172.19.0.10:80/tcp id=0 ring=0+2", "SetBackend 1 172.19.0.3:80"}},
	}
	for i, st := range steps {
		if err := b.SetHealth(map[ident.Backend]bool{{Service: web.Key(), Addr: rs2}: st.down}); err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); !slices.Equal(got, st.want) {
			t.Errorf("step %d: writes\n  got  %q\n  want %q", i, got, st.want)
		}
	}
	// A down backend stays out across a config re-apply.
	if err := b.SetHealth(map[ident.Backend]bool{{Service: web.Key(), Addr: rs2}: true}); err != nil {
		t.Fatal(err)
	}
	rec.take()
	if err := b.Apply([]config.Service{web}); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); got != nil {
		t.Errorf("re-apply with a backend down wrote %q, want nothing", got)
	}
}

// TestFallback: the sorry server takes new connections only while every
// backend is down.
func TestFallback(t *testing.T) {
	rec := &recorder{}
	b := New(rec)
	sorry := be("172.19.0.4:80", 1)
	withSorry := web
	withSorry.Fallback = &sorry
	if err := b.Apply([]config.Service{withSorry}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ResetBackendTraffic 0", "SetBackend 0 172.19.0.2:80",
		"ResetBackendTraffic 1", "SetBackend 1 172.19.0.3:80",
		"ResetBackendTraffic 2", "SetBackend 2 172.19.0.4:80 drained",
		"ResetServiceTraffic 0", "WriteRing 0 [0 1]", "SetService 172.19.0.10:80/tcp id=0 ring=0+2",
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("from scratch:\n  got  %q\n  want %q", got, want)
	}
	// Both go down together: one rebuild, not one per backend.
	allDown := map[ident.Backend]bool{}
	for _, a := range []string{"172.19.0.2:80", "172.19.0.3:80"} {
		allDown[ident.Backend{Service: web.Key(), Addr: netip.MustParseAddrPort(a)}] = true
	}
	if err := b.SetHealth(allDown); err != nil {
		t.Fatal(err)
	}
	got := rec.take()
	want = []string{
		"WriteRing 2 [2]", "SetService 172.19.0.10:80/tcp id=0 ring=2+1",
		"SetBackend 0 172.19.0.2:80 drained", "SetBackend 1 172.19.0.3:80 drained", "SetBackend 2 172.19.0.4:80",
	}
	if !slices.Equal(got, want) {
		t.Errorf("all down:\n  got  %q\n  want %q", got, want)
	}
	// Back up: the fallback is drained only once the ring no longer
	// names it.
	if err := b.SetHealth(nil); err != nil {
		t.Fatal(err)
	}
	got = rec.take()
	want = []string{
		"WriteRing 0 [0 1]", "SetService 172.19.0.10:80/tcp id=0 ring=0+2",
		"SetBackend 0 172.19.0.2:80", "SetBackend 1 172.19.0.3:80", "SetBackend 2 172.19.0.4:80 drained",
	}
	if !slices.Equal(got, want) {
		t.Errorf("all up again:\n  got  %q\n  want %q", got, want)
	}
}

// TestHealthAndEditsInterleaved: health flips and configuration changes
// arriving in any order give exactly the writes of the state they leave,
// and an edit never brings back a backend the health checks hold out.
func TestHealthAndEditsInterleaved(t *testing.T) {
	rec := &recorder{}
	b := New(rec)
	rs2 := ident.Backend{Service: web.Key(), Addr: netip.MustParseAddrPort("172.19.0.3:80")}
	three := with(web, be("172.19.0.2:80", 1), be("172.19.0.3:80", 1), be("172.19.0.4:80", 1))
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"start", func() error { return b.Apply([]config.Service{web}) }, webFromScratch},
		{"rs2 down", func() error { return b.SetHealth(map[ident.Backend]bool{rs2: true}) }, []string{
			"WriteRing 2 [0]", "SetService 172.19.0.10:80/tcp id=0 ring=2+1", "SetBackend 1 172.19.0.3:80 drained",
		}},
		{"edit: a third backend, rs2 still down", func() error { return b.Apply([]config.Service{three}) }, []string{
			"ResetBackendTraffic 2", "SetBackend 2 172.19.0.4:80",
			"WriteRing 0 [0 2]", "SetService 172.19.0.10:80/tcp id=0 ring=0+2",
		}},
		{"reload of the same file", func() error { return b.Apply([]config.Service{three}) }, nil},
		{"rs2 up", func() error { return b.SetHealth(nil) }, []string{
			"WriteRing 2 [0 1 2]", "SetService 172.19.0.10:80/tcp id=0 ring=2+3", "SetBackend 1 172.19.0.3:80",
		}},
		{"edit: rs2 removed", func() error {
			return b.Apply([]config.Service{with(web, be("172.19.0.2:80", 1), be("172.19.0.4:80", 1))})
		}, []string{
			"WriteRing 0 [0 2]", "SetService 172.19.0.10:80/tcp id=0 ring=0+2", "ClearBackend 1",
		}},
		{"a flip of the removed backend changes nothing", func() error { return b.SetHealth(map[ident.Backend]bool{rs2: true}) }, nil},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := rec.take(); !slices.Equal(got, st.want) {
			t.Errorf("%s: writes\n  got  %q\n  want %q", st.name, got, st.want)
		}
	}
}
