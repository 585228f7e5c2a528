package lb

import (
	"container/heap"
	"fmt"
	"sort"

	"github.com/xdplb/xdplb/internal/datapath"
)

// ringAlloc hands out non-overlapping slices of the datapath's ring array,
// first fit. A service's new ring is written to a fresh slice before the
// service points at it, so the old slice stays intact for packets in flight
// until it is freed.
type ringAlloc struct {
	size uint32
	used []datapath.Ring // sorted by offset
}

func (a *ringAlloc) alloc(n uint32) (datapath.Ring, error) {
	var at uint32
	for i, r := range a.used {
		if r.Offset-at >= n {
			a.insert(i, datapath.Ring{Offset: at, Len: n})
			return datapath.Ring{Offset: at, Len: n}, nil
		}
		at = r.Offset + r.Len
	}
	if a.size-at < n {
		return datapath.Ring{}, fmt.Errorf("no room for a ring of %d slots (%d in all)", n, a.size)
	}
	a.insert(len(a.used), datapath.Ring{Offset: at, Len: n})
	return datapath.Ring{Offset: at, Len: n}, nil
}

func (a *ringAlloc) insert(i int, r datapath.Ring) {
	a.used = append(a.used, datapath.Ring{})
	copy(a.used[i+1:], a.used[i:])
	a.used[i] = r
}

func (a *ringAlloc) free(r datapath.Ring) {
	i := sort.Search(len(a.used), func(i int) bool { return a.used[i].Offset >= r.Offset })
	if i < len(a.used) && a.used[i] == r {
		a.used = append(a.used[:i], a.used[i+1:]...)
	}
}

// idAlloc hands out the lowest free id below max. Ids below next that are
// not in freed are in use, so the lowest free id is the smallest freed one,
// or next: both found in O(log n), which matters at 100,000 backends.
type idAlloc struct {
	max     uint32
	next    uint32
	freed   idHeap
	isFreed map[uint32]bool // the members of freed
}

func newIDAlloc(max uint32) *idAlloc { return &idAlloc{max: max, isFreed: map[uint32]bool{}} }

func (a *idAlloc) alloc() (uint32, error) {
	if a.freed.Len() > 0 {
		id := heap.Pop(&a.freed).(uint32)
		delete(a.isFreed, id)
		return id, nil
	}
	if a.next >= a.max {
		return 0, fmt.Errorf("all %d ids in use", a.max)
	}
	a.next++
	return a.next - 1, nil
}

// free gives id back; freeing an id that is not in use is a no-op.
func (a *idAlloc) free(id uint32) {
	if id >= a.next || a.isFreed[id] {
		return
	}
	a.isFreed[id] = true
	heap.Push(&a.freed, id)
}

type idHeap []uint32

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(uint32)) }
func (h *idHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// reserve marks r in use, as an adopted service's ring is.
func (a *ringAlloc) reserve(r datapath.Ring) {
	if r.Len == 0 {
		return
	}
	i := sort.Search(len(a.used), func(i int) bool { return a.used[i].Offset >= r.Offset })
	a.insert(i, r)
}

// newIDAllocUsed returns an allocator with the ids in used taken, as the
// ids an adopted datapath holds are.
func newIDAllocUsed(limit uint32, used map[uint32]bool) *idAlloc {
	a := newIDAlloc(limit)
	for id := range used {
		a.next = max(a.next, id+1)
	}
	for id := range a.next {
		if !used[id] {
			a.isFreed[id] = true
			a.freed = append(a.freed, id)
		}
	}
	heap.Init(&a.freed)
	return a
}
