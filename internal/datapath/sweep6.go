package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// sweep6 is the sweep of the IPv6 connections, counted into the same
// result. Always a full sweep: both tables are walked, the reverse halves
// first, as fullSweep does; a NAT64 connection's reverse half is in
// ct_reverse. IPv6 connections are not synced, so none is listed as
// ended.
func (d *Datapath) sweep6(sw *sweep) error {
	revs := map[xdplbCt6Key]revSummary6{}
	err := walk(d.objs.Ct6Reverse, func(keys []xdplbCt6Key, vals []xdplbCt6Rev) error {
		for i, k := range keys {
			revs[k] = revSummary6{client: vals[i].Client, lastSeen: vals[i].LastSeen, state: State(vals[i].State)}
		}
		return nil
	})
	if err != nil {
		return err
	}
	revs64, err := d.nat64Reverses()
	if err != nil {
		return err
	}
	var delFwd, delRev []xdplbCt6Key
	var delRev64 []xdplbCtKey
	err = walk(d.objs.Ct6Forward, func(keys []xdplbCt6Key, vals []xdplbCt6Fwd) error {
		for i, k := range keys {
			v := &vals[i]
			st := State(v.State)
			sw.res.Entries++
			sw.res.tally(v.SvcId, v.BackendId, st, addrFromAddr6(v.LocalAddr).Unmap())
			if v.Flags&xdplbCt6FwdFlagsCT6FWD_NAT64 != 0 {
				rk := xdplbCtKey{Saddr: v.BackendAddr.W[3], Daddr: v.LocalAddr.W[3], Sport: v.BackendPort, Dport: v.LocalPort, Proto: k.Proto}
				r, ok := revs64[rk]
				if ok && r.client == k {
					r.matched = true
					revs64[rk] = r
				}
				switch {
				case !ok || r.client != k:
					if idle(sw.now, v.LastSeen) > sw.grace {
						sw.res.halfOpen(v.SvcId, st, -1)
						delFwd = append(delFwd, k)
						sw.res.Orphans++
					}
				case sw.expired(k.Proto, st, r.state, idle(sw.now, LastActive(st, v.LastSeen, r.lastSeen))):
					sw.res.halfOpen(v.SvcId, st, -1)
					delFwd = append(delFwd, k)
					delRev64 = append(delRev64, rk)
					sw.res.Expired++
				}
				continue
			}
			rk := xdplbCt6Key{Saddr: v.BackendAddr, Daddr: v.LocalAddr, Sport: v.BackendPort, Dport: v.LocalPort, Proto: k.Proto}
			r, ok := revs[rk]
			if !ok || r.client != k {
				if idle(sw.now, v.LastSeen) > sw.grace {
					sw.res.halfOpen(v.SvcId, st, -1)
					delFwd = append(delFwd, k)
					sw.res.Orphans++
				}
				continue
			}
			r.matched = true
			revs[rk] = r
			if sw.expired(k.Proto, st, r.state, idle(sw.now, LastActive(st, v.LastSeen, r.lastSeen))) {
				sw.res.halfOpen(v.SvcId, st, -1)
				delFwd = append(delFwd, k)
				delRev = append(delRev, rk)
				sw.res.Expired++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, r := range revs {
		if !r.matched && idle(sw.now, r.lastSeen) > sw.grace {
			delRev = append(delRev, k)
			sw.res.Orphans++
		}
	}
	for k, r := range revs64 {
		if !r.matched && idle(sw.now, r.lastSeen) > sw.grace {
			delRev64 = append(delRev64, k)
			sw.res.Orphans++
		}
	}
	return errors.Join(deleteWire(d.objs.Ct6Forward, delFwd, nil), d.deleteReverse6(delRev), d.deleteReverse(delRev64))
}

// nat64Reverses are the reverse halves of NAT64 connections (in
// ct_reverse, found by their clients in ct_rev_client6), summarised with
// their IPv6 client. A client whose reverse half is gone is left alone:
// both go together, and one found alone may be a new connection's,
// whose reverse half is claimed first.
func (d *Datapath) nat64Reverses() (map[xdplbCtKey]revSummary6, error) {
	out := map[xdplbCtKey]revSummary6{}
	var rev xdplbCtRev
	err := walk(d.objs.CtRevClient6, func(keys []xdplbCtKey, clients []xdplbCt6Key) error {
		for i, k := range keys {
			err := d.objs.CtReverse.Lookup(k, &rev)
			switch {
			case errors.Is(err, ebpf.ErrKeyNotExist):
			case err != nil:
				return fmt.Errorf("look up reverse half: %w", err)
			default:
				out[k] = revSummary6{client: clients[i], lastSeen: rev.LastSeen, state: State(rev.State)}
			}
		}
		return nil
	})
	return out, err
}

type revSummary6 struct {
	client   xdplbCt6Key
	lastSeen uint64
	state    State
	matched  bool
}
