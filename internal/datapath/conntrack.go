package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// FlowKey is one direction of a connection as it appears on the wire.
type FlowKey struct {
	Src, Dst netip.AddrPort
	Proto    uint8
}

func (k FlowKey) wire() (xdplbCtKey, error) {
	s, err := be32(k.Src.Addr())
	if err != nil {
		return xdplbCtKey{}, err
	}
	d, err := be32(k.Dst.Addr())
	if err != nil {
		return xdplbCtKey{}, err
	}
	return xdplbCtKey{Saddr: s, Daddr: d, Sport: be16(k.Src.Port()), Dport: be16(k.Dst.Port()), Proto: k.Proto}, nil
}

func flowKeyFromWire(k xdplbCtKey) FlowKey {
	return FlowKey{
		Src:   netip.AddrPortFrom(addrFromBE32(k.Saddr), portFromBE16(k.Sport)),
		Dst:   netip.AddrPortFrom(addrFromBE32(k.Daddr), portFromBE16(k.Dport)),
		Proto: k.Proto,
	}
}

// State is the TCP state one half of a connection has seen.
type State uint8

const (
	// StateNone: no state; in a sync record, "not changed by this record".
	StateNone        = State(xdplbCtStateCT_NONE)
	StateSynSent     = State(xdplbCtStateCT_SYN_SENT)
	StateEstablished = State(xdplbCtStateCT_ESTABLISHED)
	StateFinWait     = State(xdplbCtStateCT_FIN_WAIT)
	StateClose       = State(xdplbCtStateCT_CLOSE)
	StateUDP         = State(xdplbCtStateCT_UDP)
	// StateReset marks a connection the control plane ended: the client's
	// next packet is answered with a TCP reset.
	StateReset = State(xdplbCtStateCT_RESET)
)

func (s State) String() string {
	switch s {
	case StateSynSent:
		return "SYN_SENT"
	case StateEstablished:
		return "ESTABLISHED"
	case StateFinWait:
		return "FIN_WAIT"
	case StateClose:
		return "CLOSE"
	case StateUDP:
		return "UDP"
	case StateReset:
		return "RESET"
	}
	return fmt.Sprintf("STATE_%d", uint8(s))
}

// Forward is the client's half of a connection: client -> VIP, rewritten
// to local -> backend.
type Forward struct {
	Key       FlowKey // client -> VIP
	Local     netip.AddrPort
	Backend   netip.AddrPort
	ServiceID uint32
	BackendID uint32
	State     State
	LastSeen  uint64 // Now() of the last packet, at one-second resolution
	// Forwarding is the mode the connection was opened with. A DSR
	// connection has no Local and no reverse half: its backend answers
	// the client directly.
	Forwarding Forwarding
}

// ReverseKey is the key of the backend's half of the same connection.
func (f Forward) ReverseKey() FlowKey {
	return FlowKey{Src: f.Backend, Dst: f.Local, Proto: f.Key.Proto}
}

// Reverse is the backend's half: backend -> local, rewritten to VIP ->
// client and sent to the client's next hop.
type Reverse struct {
	Key       FlowKey // backend -> local
	Client    FlowKey // the forward key
	ClientMAC [6]byte
	LBMAC     [6]byte
	Ifindex   uint32
	ServiceID uint32
	BackendID uint32
	State     State
	LastSeen  uint64
	// Origin is the node id of the balancer that opened the connection
	// (0: this one, before it had an id).
	Origin uint8
}

// Now is the datapath's clock (CLOCK_MONOTONIC_COARSE, as
// bpf_ktime_get_coarse_ns), in nanoseconds.
func Now() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime: %v", err)) // cannot fail on Linux
	}
	return uint64(ts.Nano())
}

// ConntrackCapacity is the number of entries each half can hold.
func (d *Datapath) ConntrackCapacity() uint32 { return d.objs.CtForward.MaxEntries() }

const walkBatch = 4096

// WalkForward passes every forward entry to fn, a batch at a time. Entries
// added or removed during the walk may or may not be seen.
func (d *Datapath) WalkForward(fn func([]Forward) error) error {
	err := walk(d.objs.CtForward, func(keys []xdplbCtKey, vals []xdplbCtFwd) error {
		out := make([]Forward, len(keys))
		for i := range keys {
			v := vals[i]
			out[i] = Forward{
				Key:       flowKeyFromWire(keys[i]),
				Local:     netip.AddrPortFrom(addrFromBE32(v.LocalAddr), portFromBE16(v.LocalPort)),
				Backend:   netip.AddrPortFrom(addrFromBE32(v.BackendAddr), portFromBE16(v.BackendPort)),
				ServiceID: v.SvcId, BackendID: v.BackendId, State: State(v.State), LastSeen: v.LastSeen,
				Forwarding: Forwarding(v.Flags & xdplbCtFwdFlagsCT_FWD_MODE),
			}
			if out[i].Forwarding.DSR() {
				out[i].Local = netip.AddrPort{} // the fields hold the tunnel's MTU and GUE port
			}
		}
		return fn(out)
	})
	if err != nil {
		return err
	}
	return d.walkForward6(fn)
}

// WalkReverse passes every reverse entry to fn, a batch at a time.
func (d *Datapath) WalkReverse(fn func([]Reverse) error) error {
	err := walk(d.objs.CtReverse, func(keys []xdplbCtKey, vals []xdplbCtRev) error {
		out := make([]Reverse, len(keys))
		for i := range keys {
			v := vals[i]
			out[i] = Reverse{
				Key: flowKeyFromWire(keys[i]), Client: flowKeyFromWire(v.Client),
				ClientMAC: v.ClientMac, LBMAC: v.LbMac, Ifindex: v.Ifindex,
				ServiceID: v.SvcId, BackendID: v.BackendId, State: State(v.State), LastSeen: v.LastSeen,
				Origin: v.Origin,
			}
			if v.Flags&uint8(xdplbCtFlagsCT_F_NAT64) != 0 {
				if err := d.nat64Client(keys[i], &out[i]); err != nil {
					return err
				}
			}
		}
		return fn(out)
	})
	if err != nil {
		return err
	}
	return d.walkReverse6(fn)
}

func walk[K, V any](m *ebpf.Map, fn func([]K, []V) error) error {
	keys := make([]K, walkBatch)
	vals := make([]V, walkBatch)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		done := errors.Is(err, ebpf.ErrKeyNotExist)
		if err != nil && !done {
			return fmt.Errorf("walk %s: %w", m, err)
		}
		if n > 0 {
			if ferr := fn(keys[:n], vals[:n]); ferr != nil {
				return ferr
			}
		}
		if done {
			return nil
		}
	}
}

// ResetForward marks forward entries StateReset, so the datapath answers
// their clients' next packets with a TCP reset (IPv4; an IPv6 connection
// is forgotten at its next packet); missing ones are skipped.
func (d *Datapath) ResetForward(keys []FlowKey) error {
	keys, keys6 := splitFamilies(keys)
	if err := d.resetForward6(keys6); err != nil {
		return err
	}
	var v xdplbCtFwd
	for _, k := range keys {
		w, err := k.wire()
		if err != nil {
			return err
		}
		if err := d.objs.CtForward.Lookup(w, &v); errors.Is(err, ebpf.ErrKeyNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("reset %v: %w", k, err)
		}
		v.State = xdplbCtStateCT_RESET
		if err := d.objs.CtForward.Update(w, v, ebpf.UpdateExist); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("reset %v: %w", k, err)
		}
	}
	return nil
}

// DeleteForward removes forward entries; missing ones are not an error.
func (d *Datapath) DeleteForward(keys []FlowKey) error {
	keys, keys6 := splitFamilies(keys)
	wire, err := wireKeys(keys)
	if err != nil {
		return err
	}
	wire6, err := wireKeys6(keys6)
	if err != nil {
		return err
	}
	return errors.Join(deleteWire(d.objs.CtForward, wire, nil), deleteWire(d.objs.Ct6Forward, wire6, nil))
}

// DeleteReverse removes reverse entries, their local ports going back to
// their pools; missing ones are not an error.
func (d *Datapath) DeleteReverse(keys []FlowKey) error {
	keys, keys6 := splitFamilies(keys)
	wire, err := wireKeys(keys)
	if err != nil {
		return err
	}
	wire6, err := wireKeys6(keys6)
	if err != nil {
		return err
	}
	return errors.Join(d.deleteReverse(wire), d.deleteReverse6(wire6))
}

func wireKeys(keys []FlowKey) ([]xdplbCtKey, error) {
	wire := make([]xdplbCtKey, len(keys))
	for i, k := range keys {
		w, err := k.wire()
		if err != nil {
			return nil, err
		}
		wire[i] = w
	}
	return wire, nil
}

// PutConns inserts IPv4 connections, both halves each, all reverse halves
// first as the datapath does. It is how connections learnt elsewhere (a
// peer balancer, a test) enter this datapath. fs[i] and rs[i] are one
// connection.
func (d *Datapath) PutConns(fs []Forward, rs []Reverse) error {
	if len(fs) != len(rs) {
		return fmt.Errorf("put connections: %d forward halves but %d reverse", len(fs), len(rs))
	}
	fkeys := make([]xdplbCtKey, len(fs))
	fvals := make([]xdplbCtFwd, len(fs))
	rkeys := make([]xdplbCtKey, len(rs))
	rvals := make([]xdplbCtRev, len(rs))
	for i := range fs {
		var err error
		if fkeys[i], fvals[i], err = fs[i].wire(); err != nil {
			return fmt.Errorf("forward %v: %w", fs[i].Key, err)
		}
		if rkeys[i], rvals[i], err = rs[i].wire(); err != nil {
			return fmt.Errorf("reverse %v: %w", rs[i].Key, err)
		}
	}
	if len(fs) == 0 {
		return nil
	}
	if _, err := d.objs.CtReverse.BatchUpdate(rkeys, rvals, nil); err != nil {
		return fmt.Errorf("insert reverse halves: %w", err)
	}
	if _, err := d.objs.CtForward.BatchUpdate(fkeys, fvals, nil); err != nil {
		return fmt.Errorf("insert forward halves: %w", err)
	}
	return nil
}

func (f Forward) wire() (xdplbCtKey, xdplbCtFwd, error) {
	k, err := f.Key.wire()
	if err != nil {
		return k, xdplbCtFwd{}, err
	}
	var la uint32
	if !f.Forwarding.DSR() {
		if la, err = be32(f.Local.Addr()); err != nil {
			return k, xdplbCtFwd{}, err
		}
	}
	ba, err := be32(f.Backend.Addr())
	if err != nil {
		return k, xdplbCtFwd{}, err
	}
	return k, xdplbCtFwd{
		LastSeen: f.LastSeen, LocalAddr: la, BackendAddr: ba,
		LocalPort: be16(f.Local.Port()), BackendPort: be16(f.Backend.Port()),
		BackendId: f.BackendID, SvcId: f.ServiceID, State: xdplbCtState(f.State), Flags: xdplbCtFwdFlags(f.Forwarding),
	}, nil
}

func (r Reverse) wire() (xdplbCtKey, xdplbCtRev, error) {
	k, err := r.Key.wire()
	if err != nil {
		return k, xdplbCtRev{}, err
	}
	ck, err := r.Client.wire()
	if err != nil {
		return k, xdplbCtRev{}, err
	}
	return k, xdplbCtRev{
		LastSeen: r.LastSeen, Client: ck, ClientMac: r.ClientMAC, LbMac: r.LBMAC, Ifindex: r.Ifindex,
		SvcId: r.ServiceID, BackendId: r.BackendID, State: xdplbCtState(r.State), Origin: r.Origin,
	}, nil
}
