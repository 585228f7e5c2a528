package lb

import (
	"fmt"
	"strings"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/maglev"
)

// Schedulers are the scheduler names buildRing knows.
var Schedulers = []string{"rr", "wrr", "maglev", "sh", "lc", "wlc"}

// MaglevTableSize is the ring length of the maglev and sh schedulers until
// services can choose their own (see buildRingSized). It is prime, as
// Maglev requires, and over 100 times the largest backend count the paper
// recommends for low disruption at the usual service sizes.
const MaglevTableSize = maglev.DefaultSize

// MaxWRRRing caps the length of a wrr ring; see wrrRing.
const MaxWRRRing = config.MaxWRRRing

// buildRing lays out the ring of backend positions a scheduler indexes: for
// each slot, an index into backends. The datapath consults it for new
// connections only; established ones follow conntrack. A backend of weight
// 0 is drained: it is in no ring, so it gets no new connections while its
// established ones go on. With no backend of positive weight the ring is
// empty and the datapath drops new connections.
func buildRing(scheduler string, backends []config.Backend) ([]int, error) {
	return buildRingSized(scheduler, backends, MaglevTableSize)
}

// buildRingSized is buildRing with the table size of the maglev and sh
// schedulers given; the other schedulers ignore it. It must be prime and at
// least the number of backends of positive weight.
//
//   - rr: every backend of positive weight once, in config order; the
//     datapath steps through it with a global counter.
//   - wrr: smooth weighted round robin unrolled into a ring (wrrRing),
//     stepped through like rr.
//   - maglev: a Maglev table (package maglev) of tableSize slots, indexed by
//     a hash of the flow's 5-tuple.
//   - sh: source hashing, the same Maglev table, indexed by a hash of the
//     client's source address only, so a client keeps its backend across
//     connections, and loses it only as Maglev's minimal disruption allows.
//   - lc, wlc: every backend of positive weight once, like rr; the datapath
//     picks the one with the least load (per weight, for wlc) among a
//     window of it (see least.go).
func buildRingSized(scheduler string, backends []config.Backend, tableSize uint32) ([]int, error) {
	switch scheduler {
	case "rr", "lc", "wlc":
		ring := make([]int, 0, len(backends))
		for i, b := range backends {
			if b.Weight > 0 {
				ring = append(ring, i)
			}
		}
		return ring, nil
	case "wrr":
		return wrrRing(backends)
	case "maglev", "sh":
		// Backends are named by address and port: stable across restarts
		// and the same on every balancer given the same config, whatever
		// the order of the backends in it.
		mb := make([]maglev.Backend, len(backends))
		for i, b := range backends {
			mb[i] = maglev.Backend{Name: addrPort(b).String(), Weight: b.Weight}
		}
		ring, err := maglev.Build(mb, tableSize)
		if err != nil {
			return nil, fmt.Errorf("scheduler %s: %w", scheduler, err)
		}
		return ring, nil
	default:
		return nil, fmt.Errorf("scheduler %q is not supported (supported: %s)", scheduler, strings.Join(Schedulers, ", "))
	}
}

// wrrRing unrolls smooth weighted round robin (nginx's algorithm) into a
// ring: at each step every backend's current value grows by its weight,
// the backend with the largest current value (the first in config order on
// a tie) is picked, and its current value drops by the total weight. After
// sum(w) steps every current value is back at 0, so the sequence repeats;
// the ring is one period, with the weights divided by their gcd first. A
// 3:1 split so becomes a, a, b, a: exactly 3:1 over one turn of the ring,
// and interleaved rather than a, a, a, b.
//
// The ring is capped at MaxWRRRing slots. Weights are uint32 and a service
// may have thousands of backends, so sum(w)/gcd(w) is unbounded in
// practice (weights 1000 and 999 already need 1999 slots, and arbitrary
// weights millions), while every ring lives in the datapath's ring array,
// which all services share, and is rewritten whole on every change. Over
// the cap the weights are scaled down in proportion, each to at least 1
// so that no backend of positive weight drops out. That shifts each
// backend's share by a slot or two of the ring's (nearly MaxWRRRing)
// slots: rounding each weight costs under one slot, and the rounding of
// all the others moves the ring's length by at most their number.
func wrrRing(backends []config.Backend) ([]int, error) {
	var idx []int
	var w []uint64
	for i, b := range backends {
		if b.Weight > 0 {
			idx = append(idx, i)
			w = append(w, uint64(b.Weight))
		}
	}
	if len(idx) == 0 {
		return []int{}, nil
	}
	if len(idx) > MaxWRRRing {
		return nil, fmt.Errorf("scheduler wrr: %d backends do not fit a ring of %d slots", len(idx), MaxWRRRing)
	}
	total := reduce(w)
	if total > MaxWRRRing {
		// Each scaled weight is within one of w*budget/total, and the
		// budget leaves room for every weight to be rounded up to 1.
		budget := uint64(MaxWRRRing - len(idx))
		for i := range w {
			w[i] = max(1, w[i]*budget/total) // w < 2^32, budget <= 2^16: no overflow
		}
		total = reduce(w)
	}
	ring := make([]int, total)
	current := make([]int64, len(w)) // |current| <= total <= 2^16
	for s := range ring {
		best := 0
		for i := range w {
			current[i] += int64(w[i])
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= int64(total)
		ring[s] = idx[best]
	}
	return ring, nil
}

// reduce divides the weights by their greatest common divisor and returns
// their sum.
func reduce(w []uint64) uint64 {
	g := w[0]
	for _, x := range w[1:] {
		for x != 0 {
			g, x = x, g%x
		}
	}
	var total uint64
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	return total
}
