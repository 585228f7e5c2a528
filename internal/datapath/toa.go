package datapath

import "fmt"

// clientAddrMode is the datapath's word for a service's client_address.
func clientAddrMode(toa bool) uint32 {
	if toa {
		return uint32(xdplbClientAddrModeCLIENT_ADDR_TOA)
	}
	return uint32(xdplbClientAddrModeCLIENT_ADDR_NONE)
}

// toaCounterNames names the TOA counters (bpf/lib/types.h enum
// toa_counter) as the metrics, the API and the CLI show them.
var toaCounterNames = map[xdplbToaCounter]string{
	xdplbToaCounterTOA_INSERTED:    "inserted",
	xdplbToaCounterTOA_NO_ROOM:     "no_room",
	xdplbToaCounterTOA_TOO_BIG:     "too_big",
	xdplbToaCounterTOA_MSS_LOWERED: "mss_lowered",
	xdplbToaCounterTOA_FORGED:      "forged",
}

// TOACounts reads the TOA counters, summed over CPUs, by name: client
// packets that carried the option (inserted), that went without it
// (no_room, too_big), that carried a kind-254 option of the client's own,
// disabled (forged), and SYN-ACKs whose MSS was lowered for it.
func (d *Datapath) TOACounts() (map[string]uint64, error) {
	out := make(map[string]uint64, len(toaCounterNames))
	for c, name := range toaCounterNames {
		n, err := SumCounter(d.objs.ToaStats, uint32(c))
		if err != nil {
			return nil, fmt.Errorf("read TOA counter %s: %w", name, err)
		}
		out[name] = n
	}
	return out, nil
}
