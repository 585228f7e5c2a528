package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/connsync"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
	"github.com/xdplb/xdplb/internal/lb"
	"github.com/xdplb/xdplb/internal/testbed"
)

// syncPeer is one side of a sync benchmark: a datapath with the reference
// web service, the syncer over it and its connsync node on loopback.
type syncPeer struct {
	dp   *datapath.Datapath
	s    *syncer
	node *connsync.Node
	bal  *lb.Balancer
}

var benchKey = []byte("xdplb sync benchmark key 32 byte")

func newSyncPeer(b *testing.B, id uint8, capacity uint32) *syncPeer {
	b.Helper()
	dp, cfg, bal := benchBalancer(b, capacity)
	snap := &snapshot{cfg: cfg, services: bal.Services()}
	s := &syncer{log: slog.New(slog.DiscardHandler), dp: dp, self: id, view: func() *snapshot { return snap },
		active: func() bool { return true }}
	return &syncPeer{dp: dp, s: s, bal: bal}
}

// pair connects a and b over loopback and runs both nodes until the
// benchmark ends.
func pair(b *testing.B, a, c *syncPeer) {
	b.Helper()
	var err error
	a.node, err = connsync.New(connsync.Config{NodeID: 1, Key: benchKey, Listen: netip.MustParseAddrPort("127.0.0.1:0")}, a.s)
	if err != nil {
		b.Fatal(err)
	}
	c.node, err = connsync.New(connsync.Config{NodeID: 2, Key: benchKey, Listen: netip.MustParseAddrPort("127.0.0.2:0"),
		Peers: []netip.AddrPort{a.node.Addr()}, BulkTimeout: time.Minute}, c.s)
	if err != nil {
		b.Fatal(err)
	}
	a.node.Close()
	// a's peer list must name c, whose port is known only now.
	a.node, err = connsync.New(connsync.Config{NodeID: 1, Key: benchKey, Listen: a.node.Addr(),
		Peers: []netip.AddrPort{c.node.Addr()}}, a.s)
	if err != nil {
		b.Fatal(err)
	}
	a.s.node, c.s.node = a.node, c.node
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, n := range []*connsync.Node{a.node, c.node} {
		go func() { n.Run(ctx); done <- struct{}{} }()
	}
	b.Cleanup(func() { cancel(); <-done; <-done })
}

// BenchmarkSyncThroughput: how many new connections per second one node
// can tell its peer and the peer adopt into its conntrack maps (both
// halves), end to end over loopback; cpu-cores is the CPU the whole
// process (both nodes) used meanwhile.
func BenchmarkSyncThroughput(b *testing.B) {
	testbed.RequirePrivileges(b)
	const n = 200_000
	a, c := newSyncPeer(b, 1, 1<<10), newSyncPeer(b, 2, 1<<21)
	pair(b, a, c)
	backends := c.bal.Services()[0].Backends
	vip := netip.MustParseAddrPort("172.19.0.10:80")
	base := 0
	var took, cpu time.Duration
	for b.Loop() {
		start, cpu0 := time.Now(), cpuTime()
		want := c.s.counts.created.Load() + n
		for i := range n {
			k := base + i
			a.node.Send(connsync.Record{
				Op: connsync.OpUpsert, Proto: uint8(ident.TCP), FwdState: uint8(datapath.StateEstablished),
				RevState: uint8(datapath.StateEstablished), Origin: 1,
				Client:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}), 40000),
				VIP:     vip,
				Local:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 19, 1, byte(k % 64)}), uint16(1024+(k/64)%60000)),
				Backend: backends[k%len(backends)].Addr,
			})
			// UDP has no flow control: keep the sender at most a
			// socket buffer ahead of the peer's adoption.
			for i%1024 == 0 && c.s.counts.created.Load()+uint64(n-i) < want-20_000 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		a.node.Flush()
		for c.s.counts.created.Load() < want {
			if time.Since(start) > time.Minute {
				b.Fatalf("peer adopted %d of %d (lost: %+v)", c.s.counts.created.Load()+n-want, n, c.node.Stats())
			}
			time.Sleep(100 * time.Microsecond)
		}
		took += time.Since(start)
		cpu += cpuTime() - cpu0
		base += n
	}
	b.ReportMetric(float64(base)/took.Seconds(), "conns/s")
	b.ReportMetric(cpu.Seconds()/took.Seconds(), "cpu-cores")
}

// BenchmarkBulkSync1M: a node pulls a peer's million connections (the
// dump over TCP and the adoption of both halves of each).
func BenchmarkBulkSync1M(b *testing.B) {
	testbed.RequirePrivileges(b)
	const n = 1 << 20
	a, c := newSyncPeer(b, 1, n), newSyncPeer(b, 2, n)
	fillConnections(b, a.dp, n, a.bal.Services()[0].Backends)
	pair(b, a, c)
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		if err := c.node.PullAll(b.Context()); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
		if got := c.s.counts.created.Load() + c.s.counts.updated.Load(); got < n {
			b.Fatalf("adopted %d of %d", got, n)
		}
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/1M")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
