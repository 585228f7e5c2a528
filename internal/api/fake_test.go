package api

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

const testConfig = `
interfaces: [eth0]
local:
  addresses: [172.19.0.5]
services:
  - name: web
    vip: 172.19.0.10
    port: 80
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
        weight: 2
`

// fakeSource is a daemon with an in-memory configuration: Change edits a
// copy, validates it and keeps it, as the daemon does.
type fakeSource struct {
	mu        sync.Mutex
	cfg       *config.Config
	conns     []Connection
	zeroed    []*ident.Ref
	stats     Stats
	reload    ReloadResult
	reloadErr error
	changeErr error // returned by Change after a successful edit
	changes   int
	role      string // set by SetRole; external mode when not empty
	drained   map[netip.Addr]bool
}

func newFakeSource(t *testing.T) *fakeSource {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSource{cfg: cfg, drained: map[netip.Addr]bool{}}
}

func (f *fakeSource) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{Ready: true, Services: len(f.cfg.Services)}
}

func (f *fakeSource) Stats() (Stats, error) { return f.stats, nil }

func (f *fakeSource) Cluster() ClusterStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.role == "" {
		return ClusterStatus{Mode: "none", Role: "master", Ready: true}
	}
	return ClusterStatus{Mode: "external", NodeID: 1, Role: f.role, Ready: true}
}

func (f *fakeSource) SetRole(role string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.role == "" {
		return Conflict("ha.mode is none: there is no role to set")
	}
	f.role = role
	return nil
}

func (f *fakeSource) Connections() ([]Connection, error) { return f.conns, nil }

func (f *fakeSource) Services() []ServiceView {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ServiceView
	for _, s := range f.cfg.Services {
		v := ServiceView{Name: s.Name, VIP: s.VIP.String(), Port: s.Port, Protocol: s.Protocol.String(),
			Scheduler: s.Scheduler, Persistence: s.Persistence, Forwarding: s.Forwarding, ClientAddress: s.ClientAddress}
		for _, b := range s.Backends {
			v.Backends = append(v.Backends, BackendView{Address: b.Address.String(), Port: b.Port, Weight: b.Weight, Up: true})
		}
		out = append(out, v)
	}
	return out
}

func (f *fakeSource) Change(edit func(*config.Config) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := f.cfg.Clone()
	if err := edit(next); err != nil {
		return err
	}
	if err := next.Validate(); err != nil {
		return err
	}
	if f.changeErr != nil {
		return f.changeErr
	}
	f.cfg = next
	f.changes++
	return nil
}

func (f *fakeSource) Reload(dryRun bool) (ReloadResult, error) {
	r := f.reload
	r.DryRun = dryRun
	return r, f.reloadErr
}

func (f *fakeSource) Zero(ref *ident.Ref) error {
	f.zeroed = append(f.zeroed, ref)
	return nil
}

func (f *fakeSource) service(t *testing.T, key string) config.Service {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.cfg.Services {
		if s.Key().String() == key {
			return s
		}
	}
	t.Fatalf("no service %s in %+v", key, f.cfg.Services)
	return config.Service{}
}

// BGP reports the fake's VIP as a prefix, withdrawn when drained.
func (f *fakeSource) BGP() BGPStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := BGPStatus{Enabled: true, ASN: 65001, Peers: []BGPPeer{{Address: "192.0.2.1", ASN: 65000, State: "established", Up: true}}}
	for _, s := range f.cfg.Services {
		p := BGPPrefix{Prefix: s.VIP.String() + "/32", Kind: "vip", Announced: !f.drained[s.VIP]}
		if !p.Announced {
			p.Why = "drained"
		}
		st.Prefixes = append(st.Prefixes, p)
	}
	return st
}

func (f *fakeSource) Drain(vip netip.Addr, drain bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !vip.IsValid() {
		for _, s := range f.cfg.Services {
			f.drained[s.VIP] = drain
		}
		return nil
	}
	for _, s := range f.cfg.Services {
		if s.VIP == vip {
			f.drained[vip] = drain
			return nil
		}
	}
	return NotFound(vip.String() + " is not a VIP of any service")
}

var _ Source = (*fakeSource)(nil)
