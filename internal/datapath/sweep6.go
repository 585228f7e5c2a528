package datapath

import "errors"

// sweep6 is the sweep of the IPv6 connections, counted into the same
// result. Always a full sweep: both tables are walked, the reverse halves
// first, as fullSweep does. IPv6 connections are not synced, so none is
// listed as ended.
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
	var delFwd, delRev []xdplbCt6Key
	err = walk(d.objs.Ct6Forward, func(keys []xdplbCt6Key, vals []xdplbCt6Fwd) error {
		for i, k := range keys {
			v := &vals[i]
			st := State(v.State)
			sw.res.Entries++
			sw.res.tally(v.SvcId, v.BackendId, st, addrFromAddr6(v.LocalAddr))
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
	return errors.Join(deleteWire(d.objs.Ct6Forward, delFwd, nil), d.deleteReverse6(delRev))
}

type revSummary6 struct {
	client   xdplbCt6Key
	lastSeen uint64
	state    State
	matched  bool
}
