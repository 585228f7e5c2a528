package conntrack

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/xdplb/xdplb/internal/datapath"
)

// BenchmarkCollect1M is one quick collection over a million live
// connections (nothing to expire: the steady-state cost paid every
// gc_interval); BenchmarkFullCollect1M the full one paid every
// FullSweepEvery collections.
func BenchmarkCollect1M(b *testing.B) { benchmarkCollect(b, false) }

func BenchmarkFullCollect1M(b *testing.B) { benchmarkCollect(b, true) }

func benchmarkCollect(b *testing.B, full bool) {
	const n = 1 << 20
	dp := loadTable(b, n)
	now := datapath.Now()
	fs := make([]datapath.Forward, 0, 1<<16)
	rs := make([]datapath.Reverse, 0, 1<<16)
	for i := 0; i < n; i++ {
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000)
		f := datapath.Forward{
			Key:   datapath.FlowKey{Src: client, Dst: vip, Proto: datapath.TCP},
			Local: netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 19, 1, byte(i % 64)}), uint16(1024+i/64)), Backend: backend,
			State: datapath.StateEstablished, LastSeen: now,
		}
		fs = append(fs, f)
		rs = append(rs, datapath.Reverse{Key: f.ReverseKey(), Client: f.Key, State: datapath.StateEstablished, LastSeen: now})
		if len(fs) == cap(fs) || i == n-1 {
			if err := dp.PutConns(fs, rs); err != nil {
				b.Fatal(err)
			}
			fs, rs = fs[:0], rs[:0]
		}
	}
	c := NewCollector(dp, DefaultTimeouts(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.now = func() uint64 { return now }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if full {
			c.totals.Runs = 0
		} else {
			c.totals.Runs = 1
		}
		res, err := c.Collect()
		if err != nil {
			b.Fatal(err)
		}
		if res.Entries != n || res.Expired != 0 {
			b.Fatalf("collection %+v", res)
		}
	}
}
