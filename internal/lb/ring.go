package lb

import (
	"fmt"

	"github.com/xdplb/xdplb/internal/config"
)

// buildRing lays out the ring of backend positions a scheduler indexes.
// Round robin takes every backend with a non-zero weight once, in order; a
// backend of weight 0 is drained: it gets no new connections while its
// established ones go on through conntrack.
func buildRing(scheduler string, backends []config.Backend) ([]int, error) {
	switch scheduler {
	case "rr":
		ring := make([]int, 0, len(backends))
		for i, b := range backends {
			if b.Weight > 0 {
				ring = append(ring, i)
			}
		}
		return ring, nil
	default:
		return nil, fmt.Errorf("scheduler %q is not supported", scheduler)
	}
}
