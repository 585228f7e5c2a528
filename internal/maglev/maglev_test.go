package maglev

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// reference builds the table the slow, literal way: rounds over the
// backends in name order, the paper's permutation[j] = (offset + j*skip) % M
// with a next[] index per backend, and a weight accumulator per backend
// that grants a turn each time it reaches the largest weight W (started at
// W-w so that every backend plays in the first round). Build must agree
// with it slot for slot.
func reference(backends []Backend, size uint32) []int {
	var order []int
	for i, b := range backends {
		if b.Weight > 0 {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return []int{}
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(backends[a].Name, backends[b].Name) })
	m := uint64(size)
	var maxW uint64
	for _, i := range order {
		maxW = max(maxW, uint64(backends[i].Weight))
	}
	offset := make([]uint64, len(order))
	skip := make([]uint64, len(order))
	next := make([]uint64, len(order))
	cum := make([]uint64, len(order))
	for k, i := range order {
		offset[k], skip[k] = permutation(backends[i].Name, m)
		cum[k] = maxW - uint64(backends[i].Weight)
	}
	table := make([]int, m)
	for s := range table {
		table[s] = -1
	}
	filled := uint64(0)
	for {
		for k, i := range order {
			cum[k] += uint64(backends[i].Weight)
			if cum[k] < maxW {
				continue
			}
			cum[k] -= maxW
			c := (offset[k] + next[k]*skip[k]) % m
			for table[c] >= 0 {
				next[k]++
				c = (offset[k] + next[k]*skip[k]) % m
			}
			table[c] = i
			next[k]++
			if filled++; filled == m {
				return table
			}
		}
	}
}

func names(n int) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{Name: fmt.Sprintf("10.%d.%d.%d:80", i>>16&255, i>>8&255, i&255), Weight: 1}
	}
	return bs
}

func counts(table []int, n int) []int {
	c := make([]int, n)
	for _, i := range table {
		c[i]++
	}
	return c
}

func mustBuild(t testing.TB, bs []Backend, size uint32) []int {
	t.Helper()
	table, err := Build(bs, size)
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != int(size) {
		t.Fatalf("table has %d slots, want %d", len(table), size)
	}
	return table
}

func TestCheckSize(t *testing.T) {
	for _, tc := range []struct {
		size     uint32
		backends int
		err      string
	}{
		{65537, 100, ""},
		{65537, 65537, ""},
		{2, 2, ""},
		{7, 0, ""},
		{655373, 1000, ""},
		{4294967291, 1, ""}, // largest prime below 2^32
		{0, 0, "maglev table size 0 is not prime"},
		{1, 0, "maglev table size 1 is not prime"},
		{65536, 1, "maglev table size 65536 is not prime"},
		{65535, 1, "maglev table size 65535 is not prime"},
		{4294967295, 1, "maglev table size 4294967295 is not prime"},
		{7, 8, "maglev table size 7 is smaller than the 8 backends"},
	} {
		err := CheckSize(tc.size, tc.backends)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
			t.Errorf("CheckSize(%d, %d) = %v, want %q", tc.size, tc.backends, err, tc.err)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		backends []Backend
		size     uint32
		err      string
	}{
		{"size not prime", names(3), 65536, "maglev table size 65536 is not prime"},
		{"size not prime, no backends", nil, 100, "maglev table size 100 is not prime"},
		{"size below backends", names(12), 11, "maglev table size 11 is smaller than the 12 backends"},
		{"duplicate name", []Backend{{"a", 1}, {"b", 1}, {"a", 2}}, 7, `maglev: backend name "a" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table, err := Build(tc.backends, tc.size)
			if err == nil || err.Error() != tc.err {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			if table != nil {
				t.Fatalf("table of %d slots with an error", len(table))
			}
		})
	}
	// Drained backends count neither towards the size check nor as
	// duplicates.
	bs := append(names(7), Backend{"10.0.0.0:80", 0}, Backend{"x", 0})
	if _, err := Build(bs, 7); err != nil {
		t.Fatal(err)
	}
}

func TestBuildEmpty(t *testing.T) {
	for _, bs := range [][]Backend{nil, {}, {{"a", 0}, {"b", 0}}} {
		table, err := Build(bs, DefaultSize)
		if err != nil || table == nil || len(table) != 0 {
			t.Errorf("Build(%v) = %d slots, %v; want an empty table", bs, len(table), err)
		}
	}
}

func TestBuildMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []uint32{2, 3, 7, 13, 251, 1009, 65537} {
		for iter := 0; iter < 20; iter++ {
			n := 1 + r.IntN(min(int(size), 40))
			bs := names(n)
			for i := range bs {
				switch r.IntN(4) {
				case 0:
					bs[i].Weight = 0
				case 1:
					bs[i].Weight = 1
				case 2:
					bs[i].Weight = 1 + r.Uint32N(10)
				case 3:
					bs[i].Weight = r.Uint32()
				}
			}
			r.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
			got, err := Build(bs, size)
			if err != nil {
				t.Fatal(err)
			}
			if want := reference(bs, size); !slices.Equal(got, want) {
				t.Fatalf("size %d, backends %v: Build differs from the reference", size, bs)
			}
		}
	}
}

// TestBalance: with equal weights every backend owns floor(M/N) or
// ceil(M/N) slots, whatever N and M (the paper's bound; here exact since
// every turn claims one slot and every backend plays every round).
func TestBalance(t *testing.T) {
	for _, tc := range []struct {
		n    int
		size uint32
	}{
		{1, 65537}, {2, 65537}, {3, 65537}, {7, 65537}, {10, 65537}, {50, 65537},
		{100, 65537}, {1000, 65537}, {1000, 655373}, {5, 5}, {5, 7}, {13, 251},
	} {
		table := mustBuild(t, names(tc.n), tc.size)
		lo, hi := int(tc.size)/tc.n, (int(tc.size)+tc.n-1)/tc.n
		c := counts(table, tc.n)
		if mn, mx := slices.Min(c), slices.Max(c); mn < lo || mx > hi {
			t.Errorf("N=%d M=%d: slots per backend in [%d, %d], want [%d, %d]", tc.n, tc.size, mn, mx, lo, hi)
		} else {
			t.Logf("N=%d M=%d: slots per backend in [%d, %d], spread %.4f%% of the mean",
				tc.n, tc.size, mn, mx, 100*float64(mx-mn)*float64(tc.n)/float64(tc.size))
		}
	}
}

// TestWeights: backend i owns M*w_i/sum(w) slots to within 2 slots. That
// is within 2% of its share once the share is 100 slots or more; a smaller
// share is limited by the table's resolution, not by the dealing.
func TestWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sets := [][]uint32{
		{3, 1}, {5, 3, 2}, {1, 1000}, {1000, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		{100, 1}, {1, 1, 1, 1, 50}, {math.MaxUint32, 1}, {math.MaxUint32, math.MaxUint32 - 1, 7},
	}
	for range 10 {
		ws := make([]uint32, 2+r.IntN(200))
		for i := range ws {
			ws[i] = 1 + r.Uint32N(100)
		}
		sets = append(sets, ws)
	}
	for _, ws := range sets {
		bs := names(len(ws))
		var sum float64
		for i, w := range ws {
			bs[i].Weight = w
			sum += float64(w)
		}
		const size = DefaultSize
		c := counts(mustBuild(t, bs, size), len(bs))
		var worstAbs, worstRel float64
		for i, w := range ws {
			ideal := float64(size) * float64(w) / sum
			d := math.Abs(float64(c[i]) - ideal)
			worstAbs = max(worstAbs, d)
			if ideal >= 1 {
				worstRel = max(worstRel, d/ideal)
			}
			if d > 2 {
				t.Errorf("weights %v: backend %d (weight %d) owns %d slots, want %.1f ± 2", ws, i, w, c[i], ideal)
			}
		}
		label := fmt.Sprint(ws)
		if len(ws) > 10 {
			label = fmt.Sprintf("%d random weights 1..100", len(ws))
		}
		t.Logf("weights %s: worst deviation %.2f slots, %.3f%% of the ideal share", label, worstAbs, 100*worstRel)
	}
}

// changed counts the slots whose backend (by name) differs between two
// tables; moved counts those among them that went from one backend to
// another that is in both tables: the churn consistent hashing is meant
// to avoid, beyond the slots a removed backend leaves or an added one takes.
func changed(before, after []int, bsBefore, bsAfter []Backend) (changed, moved int) {
	in := func(bs []Backend) map[string]bool {
		m := map[string]bool{}
		for _, b := range bs {
			if b.Weight > 0 {
				m[b.Name] = true
			}
		}
		return m
	}
	inBefore, inAfter := in(bsBefore), in(bsAfter)
	for s := range before {
		nb, na := bsBefore[before[s]].Name, bsAfter[after[s]].Name
		if nb != na {
			changed++
			if inAfter[nb] && inBefore[na] {
				moved++
			}
		}
	}
	return changed, moved
}

// TestDisruption: removing one of N backends changes its own 1/N of the
// slots (necessarily) plus a small fraction of the others'; adding one
// changes the 1/(N+1) it takes plus a small fraction. The bound asserted
// is that the total change stays below 2/N (2/(N+1) when adding), i.e.
// that the survivors lose less than the removed backend did. Measured
// figures are logged.
func TestDisruption(t *testing.T) {
	const size = DefaultSize
	for _, n := range []int{10, 50, 100} {
		bs := names(n + 1)
		extra, bs := bs[n], bs[:n]
		base := mustBuild(t, bs, size)
		var worstTotal, worstMoved, sumMoved float64
		for _, rm := range []int{0, 1, n / 3, n / 2, n - 1} {
			less := slices.Delete(slices.Clone(bs), rm, rm+1)
			after := mustBuild(t, less, size)
			ch, mv := changed(base, after, bs, less)
			total, moved := float64(ch)/float64(size), float64(mv)/float64(size)
			worstTotal, worstMoved = max(worstTotal, total), max(worstMoved, moved)
			sumMoved += moved
			if total >= 2/float64(n) {
				t.Errorf("N=%d, removing %s: %.2f%% of the slots changed, want < %.2f%%", n, bs[rm].Name, 100*total, 200/float64(n))
			}
		}
		t.Logf("N=%d remove one: ideal %.3f%%, worst total changed %.3f%%, survivors' slots moved worst %.3f%% mean %.3f%% of the table",
			n, 100/float64(n), 100*worstTotal, 100*worstMoved, 100*sumMoved/5)

		more := append(slices.Clone(bs), extra)
		after := mustBuild(t, more, size)
		ch, mv := changed(base, after, bs, more)
		total := float64(ch) / float64(size)
		if total >= 2/float64(n+1) {
			t.Errorf("N=%d, adding one: %.2f%% of the slots changed, want < %.2f%%", n, 100*total, 200/float64(n+1))
		}
		if c := counts(after, n+1)[n]; c < int(size)/(n+1) || c > int(size)/(n+1)+1 {
			t.Errorf("N=%d, adding one: it owns %d slots, want %d or %d", n, c, int(size)/(n+1), int(size)/(n+1)+1)
		}
		t.Logf("N=%d add one: ideal %.3f%%, total changed %.3f%%, moved between old backends %.3f%%",
			n, 100/float64(n+1), 100*total, 100*float64(mv)/float64(size))
	}
}

func TestDeterminism(t *testing.T) {
	bs := names(37)
	for i := range bs {
		bs[i].Weight = uint32(1 + i%5)
	}
	bs[4].Weight, bs[20].Weight = 0, 0
	a := mustBuild(t, bs, DefaultSize)
	if b := mustBuild(t, bs, DefaultSize); !slices.Equal(a, b) {
		t.Fatal("two builds of the same input differ")
	}
	// Another order: the indices differ but name the same backends.
	r := rand.New(rand.NewPCG(5, 6))
	for range 5 {
		perm := r.Perm(len(bs))
		shuffled := make([]Backend, len(bs))
		for i, p := range perm {
			shuffled[p] = bs[i]
		}
		c := mustBuild(t, shuffled, DefaultSize)
		for s := range a {
			if bs[a[s]].Name != shuffled[c[s]].Name {
				t.Fatalf("slot %d: %s in one order, %s in another", s, bs[a[s]].Name, shuffled[c[s]].Name)
			}
			if shuffled[c[s]].Weight == 0 {
				t.Fatalf("slot %d names drained backend %s", s, shuffled[c[s]].Name)
			}
		}
	}
}

// TestGolden pins the table of a fixed input. The hashes are part of the
// consistency contract between balancers and across versions: if this
// fails, every table in the field would change on upgrade.
func TestGolden(t *testing.T) {
	bs := []Backend{{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}, {"10.0.0.3:80", 2}, {"[2001:db8::1]:443", 1}}
	table := mustBuild(t, bs, DefaultSize)
	h := fnv.New64a()
	for _, i := range table {
		h.Write([]byte(bs[i].Name))
		h.Write([]byte{0})
	}
	const want = 0x5ea0dfa6edd6094e
	if got := h.Sum64(); got != want {
		t.Errorf("table digest %#x, want %#x; first slots %v", got, uint64(want), table[:16])
	}
	if off, skip := permutation("10.0.0.1:80", 65537); off != 41826 || skip != 35395 {
		t.Errorf("permutation(10.0.0.1:80) = %d, %d", off, skip)
	}
}

// FuzzBuild builds tables for small random backend sets and sizes: every
// slot names a backend of positive weight, every such backend owns a slot
// when M >= N, Build agrees with the reference, and the size is refused
// exactly when CheckSize refuses it.
func FuzzBuild(f *testing.F) {
	f.Add(uint16(7), []byte{1, 1, 1})
	f.Add(uint16(13), []byte{3, 1, 0, 255})
	f.Add(uint16(2), []byte{1, 1})
	f.Add(uint16(5), []byte{0, 0})
	f.Add(uint16(8), []byte{1})
	f.Add(uint16(251), []byte{255, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, size uint16, spec []byte) {
		if len(spec) > 64 {
			spec = spec[:64]
		}
		// Two bytes per backend: a name from a small alphabet (so names
		// collide sometimes) and a weight, spread out to large values too.
		var bs []Backend
		for i := 0; i+1 < len(spec); i += 2 {
			w := uint32(spec[i+1])
			if w > 200 {
				w = w << 24
			}
			bs = append(bs, Backend{Name: fmt.Sprintf("10.0.0.%d:80", spec[i]%40), Weight: w})
		}
		active, seen, dup := 0, map[string]bool{}, false
		for _, b := range bs {
			if b.Weight > 0 {
				active++
				dup = dup || seen[b.Name]
				seen[b.Name] = true
			}
		}
		table, err := Build(bs, uint32(size))
		if sizeErr := CheckSize(uint32(size), active); sizeErr != nil || dup {
			if err == nil {
				t.Fatalf("size %d, %d backends, duplicate %v: no error", size, active, dup)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if active == 0 {
			if len(table) != 0 {
				t.Fatalf("%d slots without backends", len(table))
			}
			return
		}
		if len(table) != int(size) {
			t.Fatalf("%d slots, want %d", len(table), size)
		}
		owns := make([]int, len(bs))
		for s, i := range table {
			if i < 0 || i >= len(bs) || bs[i].Weight == 0 {
				t.Fatalf("slot %d holds %d", s, i)
			}
			owns[i]++
		}
		for i, b := range bs {
			if b.Weight > 0 && owns[i] == 0 {
				t.Fatalf("backend %d %v owns no slot of %d", i, b, size)
			}
		}
		if !slices.Equal(table, reference(bs, uint32(size))) {
			t.Fatal("Build differs from the reference")
		}
	})
}

func BenchmarkBuild(b *testing.B) {
	for _, tc := range []struct {
		n    int
		size uint32
	}{{10, 65537}, {100, 65537}, {1000, 65537}, {1000, 655373}} {
		bs := names(tc.n)
		b.Run(fmt.Sprintf("N=%d/M=%d", tc.n, tc.size), func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(bs, tc.size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Skewed weights: the heavy backend plays every round, the others
	// rarely.
	bs := names(1000)
	bs[0].Weight = 1 << 20
	b.Run("N=1000/M=65537/skewed", func(b *testing.B) {
		for b.Loop() {
			if _, err := Build(bs, 65537); err != nil {
				b.Fatal(err)
			}
		}
	})
}
