package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// The IPv6 halves of WalkForward, WalkReverse, ResetForward and the
// deletes: the same connections, from ct6_forward and ct6_reverse.

func (d *Datapath) walkForward6(fn func([]Forward) error) error {
	return walk(d.objs.Ct6Forward, func(keys []xdplbCt6Key, vals []xdplbCt6Fwd) error {
		out := make([]Forward, len(keys))
		for i := range keys {
			out[i] = forward6(keys[i], &vals[i])
		}
		return fn(out)
	})
}

// forward6 is an IPv6 forward half; a NAT64 one's local and backend
// addresses are IPv4 (held IPv4-mapped).
func forward6(k xdplbCt6Key, v *xdplbCt6Fwd) Forward {
	return Forward{
		Key:       flowKeyFromWire6(k),
		Local:     netip.AddrPortFrom(addrFromAddr6(v.LocalAddr).Unmap(), portFromBE16(v.LocalPort)),
		Backend:   netip.AddrPortFrom(addrFromAddr6(v.BackendAddr).Unmap(), portFromBE16(v.BackendPort)),
		ServiceID: v.SvcId, BackendID: v.BackendId, State: State(v.State), LastSeen: v.LastSeen,
	}
}

// nat64Client fills in the IPv6 client of a NAT64 connection's reverse
// half r (its own Client field has none); r is left as it is if the
// client is not (or no longer) recorded.
func (d *Datapath) nat64Client(k xdplbCtKey, r *Reverse) error {
	var c xdplbCt6Key
	err := d.objs.CtRevClient6.Lookup(k, &c)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up the IPv6 client of %v: %w", r.Key, err)
	}
	r.Client = flowKeyFromWire6(c)
	return nil
}

func (d *Datapath) walkReverse6(fn func([]Reverse) error) error {
	return walk(d.objs.Ct6Reverse, func(keys []xdplbCt6Key, vals []xdplbCt6Rev) error {
		out := make([]Reverse, len(keys))
		for i := range keys {
			v := vals[i]
			out[i] = Reverse{
				Key: flowKeyFromWire6(keys[i]), Client: flowKeyFromWire6(v.Client),
				ClientMAC: v.ClientMac, LBMAC: v.LbMac, Ifindex: v.Ifindex,
				ServiceID: v.SvcId, BackendID: v.BackendId, State: State(v.State), LastSeen: v.LastSeen,
				Origin: v.Origin,
			}
		}
		return fn(out)
	})
}

func (d *Datapath) resetForward6(keys []FlowKey) error {
	var v xdplbCt6Fwd
	for _, k := range keys {
		w, err := k.wire6()
		if err != nil {
			return err
		}
		if err := d.objs.Ct6Forward.Lookup(w, &v); errors.Is(err, ebpf.ErrKeyNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("reset %v: %w", k, err)
		}
		v.State = xdplbCtStateCT_RESET
		if err := d.objs.Ct6Forward.Update(w, v, ebpf.UpdateExist); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("reset %v: %w", k, err)
		}
	}
	return nil
}

func wireKeys6(keys []FlowKey) ([]xdplbCt6Key, error) {
	wire := make([]xdplbCt6Key, len(keys))
	for i, k := range keys {
		w, err := k.wire6()
		if err != nil {
			return nil, err
		}
		wire[i] = w
	}
	return wire, nil
}

// deleteReverse6 removes IPv6 reverse halves and returns the local ports
// of those it removed to their pools.
func (d *Datapath) deleteReverse6(keys []xdplbCt6Key) error {
	var removed []FlowKey
	err := deleteWire(d.objs.Ct6Reverse, keys, func(ks []xdplbCt6Key) {
		for _, k := range ks {
			removed = append(removed, flowKeyFromWire6(k))
		}
	})
	return errors.Join(err, d.releaseSlots(removed))
}
