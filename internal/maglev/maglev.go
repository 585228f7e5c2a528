package maglev

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// DefaultSize is the table size used unless a service asks for another:
// prime and comfortably above 100 times the backends of a service.
const DefaultSize uint32 = 65537

// Backend is one entry of the table's input.
type Backend struct {
	// Name is the backend's stable identity, e.g. "10.0.0.1:80". It alone
	// decides the backend's permutation, so it must not depend on anything
	// that changes across restarts or between balancers.
	Name string
	// Weight is the backend's relative share; 0 excludes it.
	Weight uint32
}

// CheckSize reports whether size is usable as the table size for the given
// number of backends of positive weight: it must be prime and at least the
// number of backends, so that every backend can own a slot.
func CheckSize(size uint32, backends int) error {
	if !big.NewInt(int64(size)).ProbablyPrime(0) { // exact below 2^64
		return fmt.Errorf("maglev table size %d is not prime", size)
	}
	if uint64(size) < uint64(backends) {
		return fmt.Errorf("maglev table size %d is smaller than the %d backends", size, backends)
	}
	return nil
}

// Build returns the lookup table of the given size: for each slot, the
// index into backends of the backend that owns it. Backends of weight 0 own
// no slot; if no backend has a positive weight the table is empty. The
// names of the backends of positive weight must be distinct. The table
// depends on the set of backends, not on their order in the slice.
func Build(backends []Backend, size uint32) ([]int, error) {
	// The backends that take turns, in name order.
	order := make([]int, 0, len(backends))
	for i, b := range backends {
		if b.Weight > 0 {
			order = append(order, i)
		}
	}
	if err := CheckSize(size, len(order)); err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return []int{}, nil
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(backends[a].Name, backends[b].Name) })
	for k := 1; k < len(order); k++ {
		if backends[order[k]].Name == backends[order[k-1]].Name {
			return nil, fmt.Errorf("maglev: backend name %q appears twice", backends[order[k]].Name)
		}
	}

	m := uint64(size)
	table := make([]int, size)
	if len(order) == 1 {
		for s := range table {
			table[s] = order[0]
		}
		return table, nil
	}
	// Deal the slots as positions in name order into a table of int32,
	// half the size of the result: the probes land all over it, and the
	// smaller it is the more of it stays in cache.
	owner := make([]int32, size)
	for s := range owner {
		owner[s] = -1
	}

	var maxW uint64
	state := make([]turnState, len(order))
	for k, i := range order {
		offset, skip := permutation(backends[i].Name, m)
		w := uint64(backends[i].Weight)
		state[k] = turnState{pos: offset, skip: skip, weight: w}
		maxW = max(maxW, w)
	}

	// The next turn of each backend, ordered by (round, name order). All
	// backends take a turn in round 1, and name order is ascending, so the
	// initial array is already a heap.
	h := make(turnHeap, len(order))
	for k := range h {
		h[k] = turn{round: 1, k: uint32(k)}
	}
	for filled := uint64(0); filled < m; filled++ {
		k := h[0].k
		st := &state[k]
		pos := st.pos
		for owner[pos] >= 0 {
			pos += st.skip
			if pos >= m {
				pos -= m
			}
		}
		owner[pos] = int32(k)
		pos += st.skip
		if pos >= m {
			pos -= m
		}
		st.pos = pos
		// Turn number st.turns (0-based) falls in round 1 + ceil(turns*W/w).
		// turns <= M < 2^32 and W < 2^32, so nothing overflows.
		st.turns++
		h[0].round = 1 + (st.turns*maxW+st.weight-1)/st.weight
		h.down(0)
	}
	for s, k := range owner {
		table[s] = order[k]
	}
	return table, nil
}

type turnState struct {
	pos    uint64 // next slot of the backend's permutation to try
	skip   uint64
	weight uint64
	turns  uint64 // turns taken so far
}

type turn struct {
	round uint64
	k     uint32 // position in name order
}

// turnHeap is a binary min-heap of turns by (round, k).
type turnHeap []turn

func (h turnHeap) less(a, b int) bool {
	if h[a].round != h[b].round {
		return h[a].round < h[b].round
	}
	return h[a].k < h[b].k
}

func (h turnHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && h.less(r, l) {
			c = r
		}
		if !h.less(c, i) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// Seeds of the two hash functions. They are part of the table's stability
// contract (see the package documentation): do not change them.
const (
	seedOffset uint64 = 0x6d61676c65763031 // "maglev01"
	seedSkip   uint64 = 0x6d61676c65763032 // "maglev02"
)

// permutation returns the offset and skip of the backend called name in a
// table of m slots, m prime.
func permutation(name string, m uint64) (offset, skip uint64) {
	h := fnv1a64(name)
	return mix64(h^seedOffset) % m, mix64(h^seedSkip)%(m-1) + 1
}

// fnv1a64 is the 64-bit FNV-1a hash of s.
func fnv1a64(s string) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime64
	}
	return h
}

// mix64 is MurmurHash3's 64-bit finaliser, a bijection that spreads every
// input bit over every output bit. FNV-1a alone maps names that differ
// only in their last characters (10.0.0.1:80, 10.0.0.2:80) to values that
// differ by small multiples of its prime, too regular to take mod M.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
