package lb

import (
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

// idAlloc hands out the lowest free id below max.
type idAlloc struct {
	max  uint32
	used map[uint32]bool
}

func newIDAlloc(max uint32) *idAlloc { return &idAlloc{max: max, used: map[uint32]bool{}} }

func (a *idAlloc) alloc() (uint32, error) {
	for id := uint32(0); id < a.max; id++ {
		if !a.used[id] {
			a.used[id] = true
			return id, nil
		}
	}
	return 0, fmt.Errorf("all %d ids in use", a.max)
}

func (a *idAlloc) free(id uint32) { delete(a.used, id) }
