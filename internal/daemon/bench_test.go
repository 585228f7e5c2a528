package daemon

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/ident"
	"github.com/xdplb/xdplb/internal/lb"
	"github.com/xdplb/xdplb/internal/testbed"
)

// BenchmarkListWith1MConnections is what `xdplb list` costs the daemon
// with a million connections in the table: the services with their
// health, and the counters with the connection counts of the collector's
// last sweep. bytes/op is what crosses the API socket; neither depends on
// the number of connections.
func BenchmarkListWith1MConnections(b *testing.B) {
	testbed.RequirePrivileges(b)
	const n = 1 << 20
	dp, cfg, bal := benchBalancer(b, n)
	d := &Daemon{cfg: cfg, dp: dp, log: slog.New(slog.DiscardHandler), owner: newOwner(), health: health.New(health.Options{})}
	d.bal = bal
	fillConnections(b, dp, n, d.bal.Services()[0].Backends)
	d.collector = conntrack.NewCollector(dp, timeouts(cfg.Conntrack.Timeouts), d.log)
	r, err := d.collector.Collect()
	if err != nil {
		b.Fatal(err)
	}
	d.lastSweep.Store(&r)
	d.publish()

	b.ReportAllocs()
	var moved int
	for b.Loop() {
		st, err := d.Stats()
		if err != nil {
			b.Fatal(err)
		}
		services, _ := json.Marshal(d.Services())
		stats, _ := json.Marshal(st)
		moved = len(services) + len(stats)
		if st.Services[0].Backends[0].ActiveConns != n/2 {
			b.Fatalf("listing counts %+v, want %d active connections on each backend", st.Services[0].Backends, n/2)
		}
	}
	b.ReportMetric(float64(moved), "bytes/op")
}

// benchBalancer is a datapath of the given conntrack capacity with the
// reference web service (two backends) applied.
func benchBalancer(b *testing.B, capacity uint32) (*datapath.Datapath, *config.Config, *lb.Balancer) {
	b.Helper()
	dp, err := datapath.Load(datapath.Options{ConntrackCapacity: capacity})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dp.Close() })
	cfg, err := config.Parse([]byte(`interfaces: [eth0]
local: {addresses: [172.19.0.5]}
services:
  - {name: web, vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2}, {address: 172.19.0.3}]}
`))
	if err != nil {
		b.Fatal(err)
	}
	bal := lb.New(dp)
	if err := bal.Apply(cfg.Services); err != nil {
		b.Fatal(err)
	}
	return dp, cfg, bal
}

// fillConnections puts n established connections, spread over backends,
// into dp.
func fillConnections(b *testing.B, dp *datapath.Datapath, n int, backends []lb.BackendInfo) {
	b.Helper()
	now := datapath.Now()
	vip := netip.MustParseAddrPort("172.19.0.10:80")
	fs := make([]datapath.Forward, 0, 1<<16)
	rs := make([]datapath.Reverse, 0, 1<<16)
	for i := range n {
		be := backends[i%len(backends)]
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000)
		f := datapath.Forward{
			Key:     datapath.FlowKey{Src: client, Dst: vip, Proto: uint8(ident.TCP)},
			Local:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 19, 1, byte(i % 64)}), uint16(1024+i/64)),
			Backend: be.Addr, BackendID: be.ID, State: datapath.StateEstablished, LastSeen: now,
		}
		fs = append(fs, f)
		rs = append(rs, datapath.Reverse{Key: f.ReverseKey(), Client: f.Key, BackendID: be.ID, State: datapath.StateEstablished, LastSeen: now})
		if len(fs) == cap(fs) || i == n-1 {
			if err := dp.PutConns(fs, rs); err != nil {
				b.Fatal(err)
			}
			fs, rs = fs[:0], rs[:0]
		}
	}
}
