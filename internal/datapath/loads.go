package datapath

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// IndexLeast: the least loaded (per weight) of a window of the ring (lc,
// wlc); see SetBackendLoad.
const IndexLeast = Index(xdplbSchedKindSCHED_LEAST)

// LeastLoadActive and LeastLoadInactive are what one connection weighs in
// a backend's load, as IPVS counts it for lc and wlc: an established
// connection 256, any other 1.
const (
	LeastLoadActive   = 256
	LeastLoadInactive = 1
)

// SetBackendLoad writes the weight the least-connection schedulers divide
// a backend's load by (0: never chosen) and its load: its connections as
// the last conntrack sweep counted them (LeastLoadActive each established
// one, LeastLoadInactive each other). The datapath adds LeastLoadActive
// for every connection it opens until the next write.
func (d *Datapath) SetBackendLoad(id, weight uint32, load uint64) error {
	if id >= MaxBackends {
		return fmt.Errorf("backend load: id %d out of range", id)
	}
	if err := d.objs.BackendLoads.Update(id, xdplbBackendLoad{Conns: load, Weight: weight}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write the load of backend %d: %w", id, err)
	}
	return nil
}
