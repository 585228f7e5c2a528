package conntrack

import (
	"github.com/xdplb/xdplb/internal/datapath"
)

// flowKey is datapath.FlowKey packed for use as a map key: a million of
// them must fit in a collection without a garbage collector storm.
type flowKey struct {
	src, dst     [16]byte
	sport, dport uint16
	proto        uint8
}

func compact(k datapath.FlowKey) flowKey {
	return flowKey{
		src: k.Src.Addr().As16(), dst: k.Dst.Addr().As16(),
		sport: k.Src.Port(), dport: k.Dst.Port(), proto: k.Proto,
	}
}
