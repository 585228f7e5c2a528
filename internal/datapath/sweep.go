package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// SweepResult is what one sweep of the conntrack table found and did.
type SweepResult struct {
	Entries int // connections (forward halves) seen
	Expired int // connections removed, both halves
	Orphans int // halves removed because their partner is missing
	// PortsInUse counts the connections (forward halves seen) per local
	// address: each holds one local port towards its backend.
	PortsInUse map[netip.Addr]int
}

func (r *SweepResult) countLocal(v *xdplbCtFwd) {
	if r.PortsInUse == nil {
		r.PortsInUse = map[netip.Addr]int{}
	}
	r.PortsInUse[addrFromBE32(v.LocalAddr)]++
}

// ExpiryFunc decides whether a connection is over, given its protocol, the
// state of each half and how long (ns) it has been idle in both directions.
type ExpiryFunc func(proto uint8, fwd, rev State, idle uint64) bool

// revSummary is what a sweep keeps of a reverse half: just enough to join
// it with its forward half. A million of them must stay cheap.
type revSummary struct {
	client   xdplbCtKey
	lastSeen uint64
	state    State
	matched  bool
}

// Sweep removes connections that expired says are over (both halves
// together) and halves whose partner has been missing for longer than grace
// (ns). The datapath inserts a reverse half just before its forward half,
// so a young lone half may be a connection being born. now is in Now's
// clock.
//
// A quick sweep reads the forward halves only, and looks up the reverse
// half of just those connections whose forward half alone is idle enough
// to be over; it cannot see reverse halves whose forward half is gone. A
// full sweep reads both tables and joins them, which finds those too but
// costs several times more: run one now and then.
func (d *Datapath) Sweep(now, grace uint64, expired ExpiryFunc, full bool) (SweepResult, error) {
	if full {
		return d.fullSweep(now, grace, expired)
	}
	var res SweepResult
	var delFwd, delRev []xdplbCtKey
	var rev xdplbCtRev
	err := walk(d.objs.CtForward, func(keys []xdplbCtKey, vals []xdplbCtFwd) error {
		for i, k := range keys {
			v := &vals[i]
			res.Entries++
			res.countLocal(v)
			fwdIdle := idle(now, v.LastSeen)
			if !couldExpire(expired, k.Proto, State(v.State), fwdIdle) && fwdIdle <= grace {
				continue
			}
			rk := reverseKeyOf(k, v)
			err := d.objs.CtReverse.Lookup(rk, &rev)
			switch {
			case errors.Is(err, ebpf.ErrKeyNotExist) || (err == nil && rev.Client != k):
				if fwdIdle > grace {
					delFwd = append(delFwd, k)
					res.Orphans++
				}
			case err != nil:
				return fmt.Errorf("look up reverse half: %w", err)
			case expired(k.Proto, State(v.State), State(rev.State), idle(now, max(v.LastSeen, rev.LastSeen))):
				delFwd = append(delFwd, k)
				delRev = append(delRev, rk)
				res.Expired++
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	return res, d.deleteHalves(delFwd, delRev)
}

// couldExpire tells whether a connection whose forward half is in state fwd
// and idle for fwdIdle could be over, whatever its reverse half says.
func couldExpire(expired ExpiryFunc, proto uint8, fwd State, fwdIdle uint64) bool {
	for _, rev := range []State{StateSynSent, StateEstablished, StateFinWait, StateClose, StateUDP} {
		if expired(proto, fwd, rev, fwdIdle) {
			return true
		}
	}
	return false
}

func reverseKeyOf(k xdplbCtKey, v *xdplbCtFwd) xdplbCtKey {
	return xdplbCtKey{Saddr: v.BackendAddr, Daddr: v.LocalAddr, Sport: v.BackendPort, Dport: v.LocalPort, Proto: k.Proto}
}

func (d *Datapath) fullSweep(now, grace uint64, expired ExpiryFunc) (SweepResult, error) {
	var res SweepResult
	revs := make(map[xdplbCtKey]revSummary, d.lastSweepSize)
	err := walk(d.objs.CtReverse, func(keys []xdplbCtKey, vals []xdplbCtRev) error {
		for i, k := range keys {
			revs[k] = revSummary{client: vals[i].Client, lastSeen: vals[i].LastSeen, state: State(vals[i].State)}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	d.lastSweepSize = len(revs)

	var delFwd, delRev []xdplbCtKey
	err = walk(d.objs.CtForward, func(keys []xdplbCtKey, vals []xdplbCtFwd) error {
		for i, k := range keys {
			v := &vals[i]
			res.Entries++
			res.countLocal(v)
			rk := reverseKeyOf(k, v)
			r, ok := revs[rk]
			if !ok || r.client != k {
				if idle(now, v.LastSeen) > grace {
					delFwd = append(delFwd, k)
					res.Orphans++
				}
				continue
			}
			r.matched = true
			revs[rk] = r
			if expired(k.Proto, State(v.State), r.state, idle(now, max(v.LastSeen, r.lastSeen))) {
				delFwd = append(delFwd, k)
				delRev = append(delRev, rk)
				res.Expired++
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	for k, r := range revs {
		if !r.matched && idle(now, r.lastSeen) > grace {
			delRev = append(delRev, k)
			res.Orphans++
		}
	}
	return res, d.deleteHalves(delFwd, delRev)
}

// deleteHalves removes forward halves first: once a client's packets find
// nothing, nothing refreshes the reverse half about to go.
func (d *Datapath) deleteHalves(fwd, rev []xdplbCtKey) error {
	if err := deleteWire(d.objs.CtForward, fwd); err != nil {
		return err
	}
	return deleteWire(d.objs.CtReverse, rev)
}

func idle(now, then uint64) uint64 {
	if then > now {
		return 0
	}
	return now - then
}

// deleteWire removes keys in batches. A batch delete stops at the first
// key that is gone (the datapath or a concurrent walk may have removed
// it); that key is skipped and the rest go on.
func deleteWire(m *ebpf.Map, keys []xdplbCtKey) error {
	for len(keys) > 0 {
		n, err := m.BatchDelete(keys, nil)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ebpf.ErrKeyNotExist):
			keys = keys[min(n+1, len(keys)):]
		default:
			return fmt.Errorf("delete from %s: %w", m, err)
		}
	}
	return nil
}
