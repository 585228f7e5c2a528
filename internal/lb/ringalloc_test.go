package lb

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/datapath"
)

func TestRingAlloc(t *testing.T) {
	r := func(off, n uint32) datapath.Ring { return datapath.Ring{Offset: off, Len: n} }
	// op is an alloc of n slots (want is the ring, or wantErr a substring
	// of the error), or, with free set, a free of that ring.
	type op struct {
		n       uint32
		want    datapath.Ring
		wantErr string
		free    *datapath.Ring
	}
	alloc := func(n uint32, want datapath.Ring) op { return op{n: n, want: want} }
	full := func(n uint32, msg string) op { return op{n: n, wantErr: msg} }
	free := func(ring datapath.Ring) op { return op{free: &ring} }

	tests := []struct {
		name string
		size uint32
		ops  []op
	}{
		{"first fit from 0", 16, []op{
			alloc(2, r(0, 2)), alloc(3, r(2, 3)), alloc(1, r(5, 1)),
		}},
		{"reuse of a freed gap", 16, []op{
			alloc(2, r(0, 2)), alloc(3, r(2, 3)), alloc(1, r(5, 1)),
			free(r(2, 3)),
			alloc(1, r(2, 1)), // first fit: the gap, not the end
			alloc(2, r(3, 2)), // fills the gap exactly
			alloc(1, r(6, 1)), // the gap is full
		}},
		{"gap too small is skipped", 16, []op{
			alloc(2, r(0, 2)), alloc(2, r(2, 2)), alloc(2, r(4, 2)),
			free(r(2, 2)),
			alloc(3, r(6, 3)),
			alloc(2, r(2, 2)),
		}},
		{"freed head", 16, []op{
			alloc(4, r(0, 4)), alloc(4, r(4, 4)),
			free(r(0, 4)),
			alloc(2, r(0, 2)), alloc(2, r(2, 2)), alloc(1, r(8, 1)),
		}},
		{"adjacent freed slices merge", 16, []op{
			alloc(2, r(0, 2)), alloc(2, r(2, 2)), alloc(2, r(4, 2)), alloc(2, r(6, 2)),
			free(r(2, 2)), free(r(4, 2)),
			alloc(4, r(2, 4)),
		}},
		{"exactly full", 8, []op{
			alloc(5, r(0, 5)), alloc(3, r(5, 3)),
			full(1, "no room for a ring of 1 slots (8 in all)"),
		}},
		{"exhaustion", 8, []op{
			alloc(6, r(0, 6)),
			full(3, "no room for a ring of 3 slots (8 in all)"),
			alloc(2, r(6, 2)), // a failed alloc takes nothing
			free(r(0, 6)),
			alloc(3, r(0, 3)),
		}},
		{"larger than the array", 8, []op{
			full(9, "no room for a ring of 9 slots (8 in all)"),
			alloc(8, r(0, 8)),
		}},
		{"fragmented space is not enough", 6, []op{
			alloc(2, r(0, 2)), alloc(2, r(2, 2)), alloc(2, r(4, 2)),
			free(r(0, 2)), free(r(4, 2)),
			full(3, "no room for a ring of 3 slots"),
			alloc(2, r(0, 2)),
		}},
		{"freeing an unknown or empty ring is a no-op", 8, []op{
			alloc(4, r(0, 4)),
			free(r(0, 0)), free(r(0, 3)), free(r(4, 4)), free(r(1, 4)),
			alloc(4, r(4, 4)),
			full(1, "no room"),
		}},
		{"full array with the datapath's size", datapath.RingSlots, []op{
			alloc(datapath.RingSlots-1, r(0, datapath.RingSlots-1)),
			full(2, "no room"),
			alloc(1, r(datapath.RingSlots-1, 1)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ringAlloc{size: tt.size}
			for i, o := range tt.ops {
				if o.free != nil {
					a.free(*o.free)
					continue
				}
				got, err := a.alloc(o.n)
				switch {
				case o.wantErr != "":
					if err == nil || !strings.Contains(err.Error(), o.wantErr) {
						t.Fatalf("op %d: alloc(%d) = %v, %v; want error containing %q", i, o.n, got, err, o.wantErr)
					}
				case err != nil:
					t.Fatalf("op %d: alloc(%d): %v", i, o.n, err)
				case got != o.want:
					t.Fatalf("op %d: alloc(%d) = %v, want %v", i, o.n, got, o.want)
				}
				checkRingAlloc(t, &a)
			}
		})
	}
}

// checkRingAlloc checks the allocator's invariant: used slices are sorted,
// non-empty, disjoint and within the array.
func checkRingAlloc(t *testing.T, a *ringAlloc) {
	t.Helper()
	var end uint32
	for i, r := range a.used {
		if r.Len == 0 || r.Offset < end || r.Offset+r.Len > a.size {
			t.Fatalf("used[%d] = %v breaks the invariant; used = %v", i, r, a.used)
		}
		end = r.Offset + r.Len
	}
}

func TestIDAlloc(t *testing.T) {
	// op: "a" allocates (want is the id, or -1 for the exhaustion error),
	// "f" frees want.
	type op struct {
		kind string
		id   int
	}
	a := func(id int) op { return op{"a", id} }
	f := func(id int) op { return op{"f", id} }
	tests := []struct {
		name string
		max  uint32
		ops  []op
	}{
		{"lowest first", 4, []op{a(0), a(1), a(2), a(3)}},
		{"reuse of the lowest freed", 4, []op{a(0), a(1), a(2), f(1), f(0), a(0), a(1), a(3)}},
		{"exhaustion", 3, []op{a(0), a(1), a(2), a(-1), a(-1), f(1), a(1), a(-1)}},
		{"no ids at all", 0, []op{a(-1)}},
		{"freeing an unused id is a no-op", 3, []op{f(1), f(7), a(0), a(1), f(1), f(1), a(1), a(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := newIDAlloc(tt.max)
			for i, o := range tt.ops {
				if o.kind == "f" {
					ids.free(uint32(o.id))
					continue
				}
				got, err := ids.alloc()
				if o.id < 0 {
					want := fmt.Sprintf("all %d ids in use", tt.max)
					if err == nil || err.Error() != want {
						t.Fatalf("op %d: alloc() = %d, %v; want error %q", i, got, err, want)
					}
					continue
				}
				if err != nil || got != uint32(o.id) {
					t.Fatalf("op %d: alloc() = %d, %v; want %d", i, got, err, o.id)
				}
			}
		})
	}
}
