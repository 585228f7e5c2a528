package lb

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

func be(addrPort string, weight uint32) config.Backend {
	ap := netip.MustParseAddrPort(addrPort)
	return config.Backend{Address: ap.Addr(), Port: ap.Port(), Weight: weight}
}

func svc(name, vipPort string, proto ident.Protocol, scheduler string, backends ...config.Backend) config.Service {
	ap := netip.MustParseAddrPort(vipPort)
	return config.Service{
		Name:      name,
		VIP:       ap.Addr(),
		Port:      ap.Port(),
		Protocol:  proto,
		Scheduler: scheduler,
		Backends:  backends,
	}
}

// The reference scenario: one round-robin service with two backends.
var (
	web = svc("web", "172.19.0.10:80", ident.TCP, "rr",
		be("172.19.0.2:80", 1), be("172.19.0.3:80", 1))
	webFromScratch = []string{
		"ResetBackendTraffic 0",
		"SetBackend 0 172.19.0.2:80",
		"ResetBackendTraffic 1",
		"SetBackend 1 172.19.0.3:80",
		"ResetServiceTraffic 0",
		"WriteRing 0 [0 1]",
		"SetService 172.19.0.10:80/tcp id=0 ring=0+2",
	}
)

// with returns a copy of s with the given backends.
func with(s config.Service, backends ...config.Backend) config.Service {
	s.Backends = backends
	return s
}

// step is one Apply and the writes it must make, in order.
type step struct {
	apply   []config.Service
	failOn  string   // the recorder fails calls starting with this
	want    []string // exact writes; nil means none
	wantErr []string // substrings of the error; nil means no error
}

func runSteps(t *testing.T, steps []step) *Balancer {
	t.Helper()
	rec := &recorder{}
	b := New(rec)
	for i, st := range steps {
		rec.failOn = st.failOn
		err := b.Apply(st.apply)
		got := rec.take()
		if !slices.Equal(got, st.want) {
			t.Errorf("step %d: writes:\n  got  %q\n  want %q", i, got, st.want)
		}
		switch {
		case st.wantErr == nil && err != nil:
			t.Errorf("step %d: unexpected error: %v", i, err)
		case st.wantErr != nil && err == nil:
			t.Errorf("step %d: no error, want one containing %q", i, st.wantErr)
		case st.wantErr != nil:
			for _, sub := range st.wantErr {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("step %d: error %q does not contain %q", i, err, sub)
				}
			}
			if st.failOn != "" && !errors.Is(err, errInjected) {
				t.Errorf("step %d: error %q does not wrap the writer's error", i, err)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	return b
}

func TestApply(t *testing.T) {
	web3 := with(web, be("172.19.0.2:80", 1), be("172.19.0.3:80", 1), be("172.19.0.4:80", 1))
	webDrained := with(web, be("172.19.0.2:80", 1), be("172.19.0.3:80", 0))
	webOne := with(web, be("172.19.0.2:80", 1))
	dns := svc("dns", "172.19.0.10:53", ident.UDP, "rr", be("172.19.0.2:53", 1))
	other := svc("other", "172.19.0.11:80", ident.TCP, "rr",
		be("172.19.0.4:80", 1), be("172.19.0.5:80", 1))
	otherFromScratch := func(svcID, be1, be2, ring string) []string {
		return []string{
			"ResetBackendTraffic " + be1,
			"SetBackend " + be1 + " 172.19.0.4:80",
			"ResetBackendTraffic " + be2,
			"SetBackend " + be2 + " 172.19.0.5:80",
			"ResetServiceTraffic " + svcID,
			"WriteRing " + ring + " [" + be1 + " " + be2 + "]",
			"SetService 172.19.0.11:80/tcp id=" + svcID + " ring=" + ring + "+2",
		}
	}

	tests := []struct {
		name  string
		steps []step
	}{
		{"reference from scratch", []step{
			{apply: []config.Service{web}, want: webFromScratch},
		}},
		{"nothing to apply", []step{
			{apply: nil},
		}},
		{"re-apply writes nothing", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{web}},
			{apply: []config.Service{web}},
		}},
		{"rename only writes nothing", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{func() config.Service { s := web; s.Name = "www"; return s }()}},
		}},
		{"weight change that keeps the ring writes nothing", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{with(web, be("172.19.0.2:80", 5), be("172.19.0.3:80", 1))}},
		}},
		{"add backend", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{web3}, want: []string{
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.4:80",
				"WriteRing 2 [0 1 2]", // a fresh slice: 0+2 is still live
				"SetService 172.19.0.10:80/tcp id=0 ring=2+3",
			}},
			// The old slice 0+2 was freed after the swap: the next ring
			// of two takes it.
			{apply: []config.Service{web3, other}, want: otherFromScratch("1", "3", "4", "0")},
		}},
		{"reorder backends", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{with(web, be("172.19.0.3:80", 1), be("172.19.0.2:80", 1))}, want: []string{
				"WriteRing 2 [1 0]",
				"SetService 172.19.0.10:80/tcp id=0 ring=2+2",
			}},
		}},
		{"drain backend with weight 0", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{webDrained}, want: []string{
				"WriteRing 2 [0]",
				"SetService 172.19.0.10:80/tcp id=0 ring=2+1",
				"SetBackend 1 172.19.0.3:80 drained", // persistence skips it too
			}},
			{apply: []config.Service{webDrained}},
			// Undrained, it comes back with the same id 1 (it was
			// never cleared), in the freed slice 0+2.
			{apply: []config.Service{web}, want: []string{
				"WriteRing 0 [0 1]",
				"SetService 172.19.0.10:80/tcp id=0 ring=0+2",
				"SetBackend 1 172.19.0.3:80",
			}},
		}},
		{"remove backend", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{webOne}, want: []string{
				"WriteRing 2 [0]",
				"SetService 172.19.0.10:80/tcp id=0 ring=2+1",
				"ClearBackend 1", // only once no ring names it
			}},
			// Its id 1 and the slice 0+2 are free again.
			{apply: []config.Service{with(web, be("172.19.0.2:80", 1), be("172.19.0.4:80", 1))}, want: []string{
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.4:80",
				"WriteRing 0 [0 2]",
				"SetService 172.19.0.10:80/tcp id=0 ring=0+2",
			}},
		}},
		{"replace backend", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{with(web, be("172.19.0.2:80", 1), be("172.19.0.4:80", 1))}, want: []string{
				"ResetBackendTraffic 2", // not 1: the ring still names it
				"SetBackend 2 172.19.0.4:80",
				"WriteRing 2 [0 2]",
				"SetService 172.19.0.10:80/tcp id=0 ring=2+2",
				"ClearBackend 1",
			}},
		}},
		{"change backend port", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{with(web, be("172.19.0.2:80", 1), be("172.19.0.3:8080", 1))}, want: []string{
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.3:8080",
				"WriteRing 2 [0 2]",
				"SetService 172.19.0.10:80/tcp id=0 ring=2+2",
				"ClearBackend 1",
			}},
		}},
		{"remove drained backend", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{webDrained}, want: []string{
				"WriteRing 2 [0]",
				"SetService 172.19.0.10:80/tcp id=0 ring=2+1",
				"SetBackend 1 172.19.0.3:80 drained",
			}},
			{apply: []config.Service{webOne}, want: []string{"ClearBackend 1"}},
		}},
		{"remove several backends in config order", []step{
			{apply: []config.Service{web3}, want: []string{
				"ResetBackendTraffic 0",
				"SetBackend 0 172.19.0.2:80",
				"ResetBackendTraffic 1",
				"SetBackend 1 172.19.0.3:80",
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.4:80",
				"ResetServiceTraffic 0",
				"WriteRing 0 [0 1 2]",
				"SetService 172.19.0.10:80/tcp id=0 ring=0+3",
			}},
			{apply: []config.Service{with(web, be("172.19.0.3:80", 1))}, want: []string{
				"WriteRing 3 [1]",
				"SetService 172.19.0.10:80/tcp id=0 ring=3+1",
				"ClearBackend 0",
				"ClearBackend 2",
			}},
		}},
		{"remove all backends", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{with(web)}, want: []string{
				"SetService 172.19.0.10:80/tcp id=0 ring=0+0",
				"ClearBackend 0",
				"ClearBackend 1",
			}},
			{apply: []config.Service{with(web)}},
			{apply: []config.Service{web}, want: []string{
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.2:80",
				"ResetBackendTraffic 3",
				"SetBackend 3 172.19.0.3:80",
				"WriteRing 0 [2 3]",
				"SetService 172.19.0.10:80/tcp id=0 ring=0+2",
			}},
		}},
		{"drain all backends", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{with(web, be("172.19.0.2:80", 0), be("172.19.0.3:80", 0))}, want: []string{
				"SetService 172.19.0.10:80/tcp id=0 ring=0+0",
				"SetBackend 0 172.19.0.2:80 drained",
				"SetBackend 1 172.19.0.3:80 drained",
			}},
		}},
		{"service with zero backends", []step{
			{apply: []config.Service{with(web)}, want: []string{
				"ResetServiceTraffic 0",
				"SetService 172.19.0.10:80/tcp id=0 ring=0+0",
			}},
			{apply: []config.Service{with(web)}},
			{apply: []config.Service{web}, want: []string{
				"ResetBackendTraffic 0",
				"SetBackend 0 172.19.0.2:80",
				"ResetBackendTraffic 1",
				"SetBackend 1 172.19.0.3:80",
				"WriteRing 0 [0 1]",
				"SetService 172.19.0.10:80/tcp id=0 ring=0+2",
			}},
		}},
		{"remove services", []step{
			{apply: []config.Service{web, dns, other}, want: slices.Concat(webFromScratch, []string{
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.2:53",
				"ResetServiceTraffic 1",
				"WriteRing 2 [2]",
				"SetService 172.19.0.10:53/udp id=1 ring=2+1",
			}, otherFromScratch("2", "3", "4", "3"))},
			// web still uses 172.19.0.10.
			{apply: []config.Service{web, other}, want: []string{
				"DeleteService 172.19.0.10:53/udp vipInUse=true",
				"ClearBackend 2",
			}},
			// Nothing else uses 172.19.0.11.
			{apply: []config.Service{web}, want: []string{
				"DeleteService 172.19.0.11:80/tcp vipInUse=false",
				"ClearBackend 3",
				"ClearBackend 4",
			}},
			// The ring slots from 2 on are free again; service ids 1
			// and 2 and backend ids 2 to 4 stay retired while
			// connections may carry them (see Release).
			{apply: []config.Service{web, other}, want: otherFromScratch("3", "5", "6", "2")},
		}},
		{"remove several services in key order", []step{
			{apply: []config.Service{other, web, dns}, want: slices.Concat(
				otherFromScratch("0", "0", "1", "0"),
				[]string{
					"ResetBackendTraffic 2",
					"SetBackend 2 172.19.0.2:80",
					"ResetBackendTraffic 3",
					"SetBackend 3 172.19.0.3:80",
					"ResetServiceTraffic 1",
					"WriteRing 2 [2 3]",
					"SetService 172.19.0.10:80/tcp id=1 ring=2+2",
					"ResetBackendTraffic 4",
					"SetBackend 4 172.19.0.2:53",
					"ResetServiceTraffic 2",
					"WriteRing 4 [4]",
					"SetService 172.19.0.10:53/udp id=2 ring=4+1",
				})},
			{apply: nil, want: []string{
				"DeleteService 172.19.0.10:53/udp vipInUse=false",
				"ClearBackend 4",
				"DeleteService 172.19.0.10:80/tcp vipInUse=false",
				"ClearBackend 2",
				"ClearBackend 3",
				"DeleteService 172.19.0.11:80/tcp vipInUse=false",
				"ClearBackend 0",
				"ClearBackend 1",
			}},
			{apply: []config.Service{web}, want: []string{
				"ResetBackendTraffic 5",
				"SetBackend 5 172.19.0.2:80",
				"ResetBackendTraffic 6",
				"SetBackend 6 172.19.0.3:80",
				"ResetServiceTraffic 3",
				"WriteRing 0 [5 6]",
				"SetService 172.19.0.10:80/tcp id=3 ring=0+2",
			}},
		}},
		{"VIP kept for a service added in the same apply", []step{
			{apply: []config.Service{dns}, want: []string{
				"ResetBackendTraffic 0",
				"SetBackend 0 172.19.0.2:53",
				"ResetServiceTraffic 0",
				"WriteRing 0 [0]",
				"SetService 172.19.0.10:53/udp id=0 ring=0+1",
			}},
			// Removals come first; the removed service's ids stay
			// retired, so the new one takes fresh ones.
			{apply: []config.Service{web}, want: []string{
				"DeleteService 172.19.0.10:53/udp vipInUse=true",
				"ClearBackend 0",
				"ResetBackendTraffic 1",
				"SetBackend 1 172.19.0.2:80",
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.3:80",
				"ResetServiceTraffic 1",
				"WriteRing 0 [1 2]",
				"SetService 172.19.0.10:80/tcp id=1 ring=0+2",
			}},
		}},
		{"protocol change is a new service", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{func() config.Service { s := web; s.Protocol = ident.UDP; return s }()}, want: []string{
				"DeleteService 172.19.0.10:80/tcp vipInUse=true",
				"ClearBackend 0",
				"ClearBackend 1",
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.2:80",
				"ResetBackendTraffic 3",
				"SetBackend 3 172.19.0.3:80",
				"ResetServiceTraffic 1",
				"WriteRing 0 [2 3]",
				"SetService 172.19.0.10:80/udp id=1 ring=0+2",
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.steps) })
	}
}

func TestApplyErrors(t *testing.T) {
	unsupported := func(s config.Service) config.Service { s.Scheduler = "bogus"; return s }
	web3 := with(web, be("172.19.0.2:80", 1), be("172.19.0.3:80", 1), be("172.19.0.4:80", 1))

	tests := []struct {
		name  string
		steps []step
	}{
		{"unsupported scheduler on add", []step{
			{apply: []config.Service{unsupported(web)}, wantErr: []string{"service web", `"bogus"`, "not supported"}},
			// Nothing was kept: the fixed config starts from scratch.
			{apply: []config.Service{web}, want: webFromScratch},
		}},
		{"unsupported scheduler on update", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{unsupported(web3)}, wantErr: []string{"service web", `"bogus"`}},
			// The service kept its old config.
			{apply: []config.Service{web}},
		}},
		{"unsupported scheduler does not stop other services", []step{
			{apply: []config.Service{unsupported(svc("bad", "172.19.0.11:80", ident.TCP, "bogus")), web},
				want: webFromScratch, wantErr: []string{"service bad", `"bogus"`}},
		}},
		{"SetService fails on add", []step{
			{apply: []config.Service{web}, failOn: "SetService", want: slices.Concat(webFromScratch, []string{
				"ClearBackend 0",
				"ClearBackend 1",
			}), wantErr: []string{"service web", "SetService 172.19.0.10:80/tcp"}},
			// Nothing was kept, not even the ring slice.
			{apply: []config.Service{web}, want: webFromScratch},
		}},
		{"SetBackend fails on add", []step{
			{apply: []config.Service{web}, failOn: "SetBackend 1", want: []string{
				"ResetBackendTraffic 0",
				"SetBackend 0 172.19.0.2:80",
				"ResetBackendTraffic 1",
				"SetBackend 1 172.19.0.3:80",
				"ClearBackend 0",
			}, wantErr: []string{"service web", "SetBackend 1"}},
			{apply: []config.Service{web}, want: webFromScratch},
		}},
		{"WriteRing fails on update", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{web3}, failOn: "WriteRing", want: []string{
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.4:80",
				"WriteRing 2 [0 1 2]",
				"ClearBackend 2",
			}, wantErr: []string{"service web", "WriteRing 2"}},
			// The retry does what the update should have done.
			{apply: []config.Service{web3}, want: []string{
				"ResetBackendTraffic 2",
				"SetBackend 2 172.19.0.4:80",
				"WriteRing 2 [0 1 2]",
				"SetService 172.19.0.10:80/tcp id=0 ring=2+3",
			}},
		}},
		{"SetService fails on backend removal", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: []config.Service{with(web, be("172.19.0.2:80", 1))}, failOn: "SetService", want: []string{
				"WriteRing 2 [0]",
				"SetService 172.19.0.10:80/tcp id=0 ring=2+1",
			}, wantErr: []string{"service web"}},
			// Backend 1 is still named by the live ring: it was neither
			// cleared nor forgotten, and the retry removes it properly,
			// reusing the slice the failed attempt freed.
			{apply: []config.Service{with(web, be("172.19.0.2:80", 1))}, want: []string{
				"WriteRing 2 [0]",
				"SetService 172.19.0.10:80/tcp id=0 ring=2+1",
				"ClearBackend 1",
			}},
		}},
		{"DeleteService fails", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: nil, failOn: "DeleteService", want: []string{
				"DeleteService 172.19.0.10:80/tcp vipInUse=false",
			}, wantErr: []string{"service web", "DeleteService"}},
			{apply: nil, want: []string{
				"DeleteService 172.19.0.10:80/tcp vipInUse=false",
				"ClearBackend 0",
				"ClearBackend 1",
			}},
		}},
		{"ClearBackend fails on service removal", []step{
			{apply: []config.Service{web}, want: webFromScratch},
			{apply: nil, failOn: "ClearBackend 0", want: []string{
				"DeleteService 172.19.0.10:80/tcp vipInUse=false",
				"ClearBackend 0",
				"ClearBackend 1", // still cleared
			}, wantErr: []string{"service web", "ClearBackend 0"}},
			{apply: nil},
		}},
		{"one service's error does not stop another", []step{
			{apply: []config.Service{web, svc("other", "172.19.0.11:80", ident.TCP, "rr")},
				failOn: "SetService 172.19.0.10", want: slices.Concat(webFromScratch, []string{
					"ClearBackend 0",
					"ClearBackend 1",
					// web's id 0 was given back.
					"ResetServiceTraffic 0",
					"SetService 172.19.0.11:80/tcp id=0 ring=0+0",
				}), wantErr: []string{"service web"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.steps) })
	}
}

func TestServices(t *testing.T) {
	other := svc("other", "172.19.0.9:443", ident.TCP, "rr", be("172.19.0.4:8443", 0))
	b := New(&recorder{})
	if err := b.Apply([]config.Service{web, other}); err != nil {
		t.Fatal(err)
	}
	got := b.Services()
	want := []ServiceInfo{
		{Name: "other", Key: other.Key(), ID: 1, Scheduler: "rr", Backends: []BackendInfo{
			{Addr: netip.MustParseAddrPort("172.19.0.4:8443"), Weight: 0, ID: 2},
		}},
		{Name: "web", Key: web.Key(), ID: 0, Scheduler: "rr", Backends: []BackendInfo{
			{Addr: netip.MustParseAddrPort("172.19.0.2:80"), Weight: 1, ID: 0},
			{Addr: netip.MustParseAddrPort("172.19.0.3:80"), Weight: 1, ID: 1},
		}},
	}
	if len(got) != len(want) {
		t.Fatalf("Services() = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Key != w.Key || g.ID != w.ID || g.Scheduler != w.Scheduler || !slices.Equal(g.Backends, w.Backends) {
			t.Errorf("Services()[%d] = %+v, want %+v", i, g, w)
		}
	}
}

func TestApplyRingsFull(t *testing.T) {
	rec := &recorder{}
	b := New(rec)
	b.rings.size = 4 // room for the ring of two, not for a second of three
	if err := b.Apply([]config.Service{web}); err != nil {
		t.Fatal(err)
	}
	rec.take()
	web3 := with(web, be("172.19.0.2:80", 1), be("172.19.0.3:80", 1), be("172.19.0.4:80", 1))
	err := b.Apply([]config.Service{web3})
	if err == nil || !strings.Contains(err.Error(), "service web") || !strings.Contains(err.Error(), "no room for a ring of 3 slots") {
		t.Fatalf("Apply = %v, want a no-room error for service web", err)
	}
	want := []string{"ResetBackendTraffic 2", "SetBackend 2 172.19.0.4:80", "ClearBackend 2"}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("writes:\n  got  %q\n  want %q", got, want)
	}
	// The service kept its ring of two.
	if err := b.Apply([]config.Service{web}); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); got != nil {
		t.Fatalf("re-apply wrote %q", got)
	}
}
