package lb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
)

// weighted returns backends 10.0.0.1:80, 10.0.0.2:80, ... with the given
// weights.
func weighted(weights ...uint32) []config.Backend {
	bs := make([]config.Backend, len(weights))
	for i, w := range weights {
		bs[i] = config.Backend{Address: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i + 1)}), Port: 80, Weight: w}
	}
	return bs
}

func ringCounts(ring []int, n int) []int {
	c := make([]int, n)
	for _, i := range ring {
		c[i]++
	}
	return c
}

// maxRun is the longest run of one backend in the ring taken as a cycle,
// as the datapath's counter goes round it.
func maxRun(ring []int) int {
	if len(ring) == 0 {
		return 0
	}
	best, run := 1, 1
	for s := 1; s < 2*len(ring); s++ {
		if ring[s%len(ring)] == ring[(s-1)%len(ring)] {
			run++
			best = max(best, min(run, len(ring)))
		} else {
			run = 1
		}
	}
	return best
}

func TestBuildRingRR(t *testing.T) {
	ring, err := buildRing("rr", weighted(1, 0, 5, 1))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 2, 3}; !slices.Equal(ring, want) {
		t.Errorf("ring %v, want %v", ring, want)
	}
}

func TestBuildRingWRRSequence(t *testing.T) {
	for _, tc := range []struct {
		weights []uint32
		want    []int
	}{
		{[]uint32{3, 1}, []int{0, 0, 1, 0}},
		{[]uint32{1, 3}, []int{1, 0, 1, 1}},
		{[]uint32{5, 1, 1}, []int{0, 0, 1, 0, 2, 0, 0}}, // nginx's own example: a a b a c a a
		{[]uint32{1, 1, 1}, []int{0, 1, 2}},
		{[]uint32{6, 2}, []int{0, 0, 1, 0}}, // divided by the gcd
		{[]uint32{7}, []int{0}},
		{[]uint32{0, 2, 0, 1, 0}, []int{1, 3, 1}},
	} {
		ring, err := buildRing("wrr", weighted(tc.weights...))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ring, tc.want) {
			t.Errorf("weights %v: ring %v, want %v", tc.weights, ring, tc.want)
		}
	}
}

// TestBuildRingWRRProportions: one turn of the ring is exactly sum(w)/gcd
// slots, split exactly in proportion to the weights, and no backend comes
// up more than ceil(w_max/w_min)+1 times in a row.
func TestBuildRingWRRProportions(t *testing.T) {
	for _, ws := range [][]uint32{
		{3, 1}, {5, 3, 2}, {1, 1, 1}, {100, 1}, {1, 100}, {1000, 999}, {4, 0, 4, 2},
		{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {60000, 5000, 536}, // sum exactly 65536
	} {
		ring, err := buildRing("wrr", weighted(ws...))
		if err != nil {
			t.Fatal(err)
		}
		var g, sum, wmin, wmax uint64 = 0, 0, math.MaxUint64, 0
		for _, w := range ws {
			if w > 0 {
				x, y := g, uint64(w)
				for y != 0 {
					x, y = y, x%y
				}
				g, sum = x, sum+uint64(w)
				wmin, wmax = min(wmin, uint64(w)), max(wmax, uint64(w))
			}
		}
		if uint64(len(ring)) != sum/g {
			t.Errorf("weights %v: ring of %d, want %d", ws, len(ring), sum/g)
		}
		for i, c := range ringCounts(ring, len(ws)) {
			if uint64(c) != uint64(ws[i])/g {
				t.Errorf("weights %v: backend %d has %d slots, want %d", ws, i, c, uint64(ws[i])/g)
			}
		}
		limit := int((wmax+wmin-1)/wmin) + 1
		if r := maxRun(ring); r > limit {
			t.Errorf("weights %v: %d in a row, want at most %d", ws, r, limit)
		}
	}
}

// TestBuildRingWRRCap: a ring that would exceed MaxWRRRing is scaled down,
// every backend of positive weight keeps a slot, and shares stay within
// two slots of the configured proportion.
func TestBuildRingWRRCap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	random := make([]uint32, 3000)
	for i := range random {
		random[i] = 1_000_000 + r.Uint32N(1_000_000)
	}
	for _, ws := range [][]uint32{
		{math.MaxUint32, 1},
		{math.MaxUint32, math.MaxUint32 - 1, 1, 0},
		{65536, 1},
		{40000, 30001},
		random,
	} {
		ring, err := buildRing("wrr", weighted(ws...))
		if err != nil {
			t.Fatal(err)
		}
		if len(ring) > MaxWRRRing {
			t.Errorf("weights %v: ring of %d slots", ws[:min(len(ws), 5)], len(ring))
		}
		var sum float64
		for _, w := range ws {
			sum += float64(w)
		}
		var worst float64
		for i, c := range ringCounts(ring, len(ws)) {
			ideal := float64(len(ring)) * float64(ws[i]) / sum
			if ws[i] > 0 && c == 0 || ws[i] == 0 && c > 0 || math.Abs(float64(c)-ideal) > 2 {
				t.Errorf("weights %v: backend %d (weight %d) has %d slots of %d, want %.2f", ws[:min(len(ws), 5)], i, ws[i], c, len(ring), ideal)
			}
			worst = max(worst, math.Abs(float64(c)-ideal))
		}
		t.Logf("%d weights: ring of %d slots, worst share off by %.2f slots", len(ws), len(ring), worst)
	}
}

func TestBuildRingMaglev(t *testing.T) {
	bs := weighted(1, 0, 2, 1, 1)
	bs = append(bs, config.Backend{Address: netip.MustParseAddr("2001:db8::1"), Port: 443, Weight: 1})
	var rings [][]int
	for _, sched := range []string{"maglev", "sh"} {
		ring, err := buildRing(sched, bs)
		if err != nil {
			t.Fatal(err)
		}
		if len(ring) != int(MaglevTableSize) {
			t.Fatalf("%s: ring of %d slots, want %d", sched, len(ring), MaglevTableSize)
		}
		c := ringCounts(ring, len(bs))
		for i, b := range bs {
			if (b.Weight > 0) != (c[i] > 0) {
				t.Errorf("%s: backend %d (weight %d) has %d slots", sched, i, b.Weight, c[i])
			}
		}
		// Weight 2 gets twice the share of weight 1: within a few slots.
		if d := c[2] - 2*c[0]; d < -4 || d > 4 {
			t.Errorf("%s: weight 2 has %d slots, weight 1 has %d", sched, c[2], c[0])
		}
		rings = append(rings, ring)
	}
	// sh is the same table; only the datapath's hash differs.
	if !slices.Equal(rings[0], rings[1]) {
		t.Error("maglev and sh rings differ")
	}
	// The table follows the backends, not their order in the config; the
	// positions refer to the config's order.
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	ring, err := buildRing("maglev", rev)
	if err != nil {
		t.Fatal(err)
	}
	for s := range ring {
		if addrPort(rev[ring[s]]) != addrPort(bs[rings[0][s]]) {
			t.Fatalf("slot %d: %v reversed, %v in order", s, addrPort(rev[ring[s]]), addrPort(bs[rings[0][s]]))
		}
	}
}

func TestBuildRingSized(t *testing.T) {
	ring, err := buildRingSized("sh", weighted(1, 1, 1), 7)
	if err != nil {
		t.Fatal(err)
	}
	if c := ringCounts(ring, 3); len(ring) != 7 || slices.Min(c) < 2 || slices.Max(c) > 3 {
		t.Errorf("ring %v", ring)
	}
	// The size does not matter to rr and wrr.
	if ring, err := buildRingSized("wrr", weighted(3, 1), 8); err != nil || len(ring) != 4 {
		t.Errorf("wrr: ring %v, %v", ring, err)
	}
	for _, tc := range []struct {
		size uint32
		err  string
	}{
		{65536, "scheduler maglev: maglev table size 65536 is not prime"},
		{2, "scheduler maglev: maglev table size 2 is smaller than the 3 backends"},
	} {
		if _, err := buildRingSized("maglev", weighted(1, 1, 1), tc.size); err == nil || err.Error() != tc.err {
			t.Errorf("size %d: err %v, want %q", tc.size, err, tc.err)
		}
	}
}

func TestBuildRingEmpty(t *testing.T) {
	for _, sched := range Schedulers {
		for _, bs := range [][]config.Backend{nil, weighted(0, 0)} {
			ring, err := buildRing(sched, bs)
			if err != nil || len(ring) != 0 {
				t.Errorf("%s with %d drained backends: ring %v, %v", sched, len(bs), ring, err)
			}
		}
	}
}

func TestBuildRingUnknown(t *testing.T) {
	_, err := buildRing("sed", weighted(1))
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range append([]string{`"sed"`, "not supported"}, Schedulers...) {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
}

func BenchmarkBuildRing(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	many := make([]uint32, 4096)
	for i := range many {
		many[i] = 1 + r.Uint32N(1_000_000)
	}
	for _, tc := range []struct {
		sched   string
		weights []uint32
	}{
		{"wrr", []uint32{5, 3, 2}},
		{"wrr", many[:100]},
		{"wrr", many},
		{"maglev", many[:100]},
	} {
		bs := weighted(tc.weights...)
		b.Run(fmt.Sprintf("%s/N=%d", tc.sched, len(bs)), func(b *testing.B) {
			for b.Loop() {
				if _, err := buildRing(tc.sched, bs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
