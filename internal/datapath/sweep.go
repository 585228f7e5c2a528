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
	// PerBackend counts the connections (forward halves seen) per backend
	// id, as ipvsadm's ActiveConn and InActConn.
	PerBackend map[uint32]ConnCount
	// PerService counts them per service id.
	PerService map[uint32]int
	// HalfOpen counts the TCP connections whose client has not completed
	// the handshake (forward half SYN_SENT) and that the sweep left: a SYN
	// flood shows here. HalfOpenPerService splits them by service id.
	HalfOpen           int
	HalfOpenPerService map[uint32]int
	// Ended are the connections that expired, for the peers of an HA
	// pair; listed only while sync is on (SetSync).
	Ended []Ended
}

// Ended is a connection a sweep removed, and when it last saw a packet
// (Now's clock).
type Ended struct {
	SyncRecord
	LastSeen uint64
}

// ConnCount is how many connections of a backend are established
// (active) and in any other state (inactive).
type ConnCount struct {
	Active, Inactive uint64
}

// count adds forward half v to the occupancy counts.
func (r *SweepResult) count(v *xdplbCtFwd) {
	var local netip.Addr
	if !isDSR(v) {
		local = addrFromBE32(v.LocalAddr)
	}
	r.tally(v.SvcId, v.BackendId, State(v.State), local)
}

// tally counts a forward half of service svc to backend, in state st,
// holding a port of local (none for DSR), of either family.
func (r *SweepResult) tally(svc, backend uint32, st State, local netip.Addr) {
	if r.PortsInUse == nil {
		r.PortsInUse = map[netip.Addr]int{}
		r.PerBackend = map[uint32]ConnCount{}
		r.PerService = map[uint32]int{}
		r.HalfOpenPerService = map[uint32]int{}
	}
	r.PerService[svc]++
	r.halfOpen(svc, st, 1)
	if local.IsValid() {
		r.PortsInUse[local]++
	}
	c := r.PerBackend[backend]
	if st == StateEstablished {
		c.Active++
	} else {
		c.Inactive++
	}
	r.PerBackend[backend] = c
}

// countHalfOpen counts forward half v as half-open (delta 1), or takes it
// back (-1) as the sweep removes it, if it is one.
func (r *SweepResult) countHalfOpen(v *xdplbCtFwd, delta int) {
	r.halfOpen(v.SvcId, State(v.State), delta)
}

func (r *SweepResult) halfOpen(svc uint32, st State, delta int) {
	if st == StateSynSent { // a TCP state only
		r.HalfOpen += delta
		r.HalfOpenPerService[svc] += delta
	}
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
	sw := &sweep{now: now, grace: grace, expired: expired, listEnded: d.syncOn}
	halfOpenBefore, err := readArray[int64](d.objs.HalfOpen, MaxServices+1)
	if err != nil {
		return sw.res, err
	}
	if full {
		err = d.fullSweep(sw)
	} else {
		err = d.quickSweep(sw)
	}
	if err != nil {
		return sw.res, err
	}
	if err := d.deleteHalves(sw.delFwd, sw.delRev); err != nil {
		return sw.res, err
	}
	if err := d.sweep6(sw); err != nil {
		return sw.res, err
	}
	return sw.res, d.writeHalfOpen(sw.res.HalfOpenPerService, sw.res.HalfOpen, halfOpenBefore)
}

// sweep is one sweep's verdicts so far.
type sweep struct {
	now, grace     uint64
	expired        ExpiryFunc
	res            SweepResult
	delFwd, delRev []xdplbCtKey
	listEnded      bool
}

// judge decides the fate of forward half k, v given its reverse half rev
// (nil if missing or held by another connection).
func (sw *sweep) judge(k xdplbCtKey, v *xdplbCtFwd, rk xdplbCtKey, rev *revSummary) {
	if rev == nil {
		if idle(sw.now, v.LastSeen) > sw.grace {
			sw.res.countHalfOpen(v, -1)
			sw.delFwd = append(sw.delFwd, k)
			sw.res.Orphans++
		}
		return
	}
	if sw.expired(k.Proto, State(v.State), rev.state, idle(sw.now, lastActive(v, rev.lastSeen))) {
		sw.res.countHalfOpen(v, -1)
		sw.delFwd = append(sw.delFwd, k)
		sw.delRev = append(sw.delRev, rk)
		sw.res.Expired++
		if sw.listEnded {
			sw.res.Ended = append(sw.res.Ended, Ended{SyncRecord: SyncRecord{
				Client:  flowKeyFromWire(k),
				Local:   netip.AddrPortFrom(addrFromBE32(v.LocalAddr), portFromBE16(v.LocalPort)),
				Backend: netip.AddrPortFrom(addrFromBE32(v.BackendAddr), portFromBE16(v.BackendPort)),
			}, LastSeen: lastActive(v, rev.lastSeen)})
		}
	}
}

// judgeAlone decides the fate of a DSR connection: it has only its
// client's half (the backend answers the client directly), so that half's
// state and idle time alone decide, as IPVS's direct routing does.
func (sw *sweep) judgeAlone(k xdplbCtKey, v *xdplbCtFwd) {
	if sw.expired(k.Proto, State(v.State), State(v.State), idle(sw.now, v.LastSeen)) {
		sw.res.countHalfOpen(v, -1)
		sw.delFwd = append(sw.delFwd, k)
		sw.res.Expired++
	}
}

// isDSR tells a DSR connection's forward half.
func isDSR(v *xdplbCtFwd) bool {
	return v.Flags&xdplbCtFwdFlagsCT_FWD_MODE != 0
}

// LastActive is when a connection whose client half is in state fwd and
// was last seen at fwdSeen, its backend half at revSeen, last did something
// that keeps it alive. While the client's half is still opening, only the
// client's packets count: the backend's SYN-ACK retransmissions must not
// keep alive a connection the client (perhaps a spoofed address) never
// completed, nor the local port it holds.
func LastActive(fwd State, fwdSeen, revSeen uint64) uint64 {
	if fwd == StateSynSent {
		return fwdSeen
	}
	return max(fwdSeen, revSeen)
}

func lastActive(v *xdplbCtFwd, revSeen uint64) uint64 {
	return LastActive(State(v.State), v.LastSeen, revSeen)
}

// quickSweep reads the forward halves and looks up the reverse half only
// of connections whose forward half alone is idle enough to be over.
func (d *Datapath) quickSweep(sw *sweep) error {
	var rev xdplbCtRev
	return walk(d.objs.CtForward, func(keys []xdplbCtKey, vals []xdplbCtFwd) error {
		for i, k := range keys {
			v := &vals[i]
			sw.res.Entries++
			sw.res.count(v)
			if isDSR(v) {
				sw.judgeAlone(k, v)
				continue
			}
			fwdIdle := idle(sw.now, v.LastSeen)
			if !couldExpire(sw.expired, k.Proto, State(v.State), fwdIdle) && fwdIdle <= sw.grace {
				continue
			}
			rk := reverseKeyOf(k, v)
			err := d.objs.CtReverse.Lookup(rk, &rev)
			switch {
			case errors.Is(err, ebpf.ErrKeyNotExist) || (err == nil && rev.Client != k):
				sw.judge(k, v, rk, nil)
			case err != nil:
				return fmt.Errorf("look up reverse half: %w", err)
			default:
				sw.judge(k, v, rk, &revSummary{lastSeen: rev.LastSeen, state: State(rev.State)})
			}
		}
		return nil
	})
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

// fullSweep reads both tables and joins them in memory, which also finds
// reverse halves whose forward half is gone.
func (d *Datapath) fullSweep(sw *sweep) error {
	revs := make(map[xdplbCtKey]revSummary, d.lastSweepSize)
	err := walk(d.objs.CtReverse, func(keys []xdplbCtKey, vals []xdplbCtRev) error {
		for i, k := range keys {
			// A NAT64 connection's forward half is IPv6: sweep6's.
			if vals[i].Flags&uint8(xdplbCtFlagsCT_F_NAT64) != 0 {
				continue
			}
			revs[k] = revSummary{client: vals[i].Client, lastSeen: vals[i].LastSeen, state: State(vals[i].State)}
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.lastSweepSize = len(revs)

	err = walk(d.objs.CtForward, func(keys []xdplbCtKey, vals []xdplbCtFwd) error {
		for i, k := range keys {
			v := &vals[i]
			sw.res.Entries++
			sw.res.count(v)
			if isDSR(v) {
				sw.judgeAlone(k, v)
				continue
			}
			rk := reverseKeyOf(k, v)
			r, ok := revs[rk]
			if !ok || r.client != k {
				sw.judge(k, v, rk, nil)
				continue
			}
			r.matched = true
			revs[rk] = r
			sw.judge(k, v, rk, &r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, r := range revs {
		if !r.matched && idle(sw.now, r.lastSeen) > sw.grace {
			sw.delRev = append(sw.delRev, k)
			sw.res.Orphans++
		}
	}
	return nil
}

// deleteHalves removes forward halves first: once a client's packets find
// nothing, nothing refreshes the reverse half about to go.
func (d *Datapath) deleteHalves(fwd, rev []xdplbCtKey) error {
	if err := deleteWire(d.objs.CtForward, fwd, nil); err != nil {
		return err
	}
	return d.deleteReverse(rev)
}

// deleteReverse removes reverse halves and returns the local ports of
// those it removed to their pools.
func (d *Datapath) deleteReverse(keys []xdplbCtKey) error {
	var removed []FlowKey
	err := deleteWire(d.objs.CtReverse, keys, func(ks []xdplbCtKey) {
		for _, k := range ks {
			removed = append(removed, flowKeyFromWire(k))
		}
	})
	// The IPv6 clients of those that were NAT64 connections'.
	err = errors.Join(err, deleteWire(d.objs.CtRevClient6, keys, nil))
	return errors.Join(err, d.releaseSlots(removed))
}

func idle(now, then uint64) uint64 {
	if then > now {
		return 0
	}
	return now - then
}

// deleteWire removes keys in batches, and hands each run of keys it
// removed to removed (if not nil). A batch delete stops at the first key
// that is gone (the datapath or a concurrent walk may have removed it);
// that key is skipped and the rest go on.
func deleteWire[K any](m *ebpf.Map, keys []K, removed func([]K)) error {
	for len(keys) > 0 {
		n, err := m.BatchDelete(keys, nil)
		if removed != nil && n > 0 {
			removed(keys[:n])
		}
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
