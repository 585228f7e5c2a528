package datapath

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// SyncRecord is a connection as the peers of an HA pair learn it: by
// addresses, since ids are each daemon's own. A zero state means "not
// changed by this record".
type SyncRecord struct {
	Client   FlowKey // client -> VIP
	Local    netip.AddrPort
	Backend  netip.AddrPort
	FwdState State
	RevState State
}

// SetSync turns the emission of sync records on or off and sets the node
// id stamped on connections opened here. Like the port globals it lives in
// the program's own memory: set it before attaching.
func (d *Datapath) SetSync(on bool, nodeID uint8) error {
	var flag uint32
	if on {
		flag = 1
	}
	if err := d.objs.SyncOn.Set(flag); err != nil {
		return fmt.Errorf("write sync_on: %w", err)
	}
	if err := d.objs.NodeId.Set(uint32(nodeID)); err != nil {
		return fmt.Errorf("write node_id: %w", err)
	}
	d.syncOn = on
	return nil
}

// ReadSync delivers the datapath's sync records to fn until ctx ends.
func (d *Datapath) ReadSync(ctx context.Context, fn func(SyncRecord)) error {
	rd, err := ringbuf.NewReader(d.objs.SyncEvents)
	if err != nil {
		return fmt.Errorf("open sync ring: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	defer rd.Close()
	var rec ringbuf.Record
	var raw xdplbSyncEvent
	for {
		err := rd.ReadInto(&rec)
		if errors.Is(err, ringbuf.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read sync record: %w", err)
		}
		if err := binary.Read(bytes.NewReader(rec.RawSample), binary.NativeEndian, &raw); err != nil {
			continue // a short record cannot come from our program; skip it
		}
		fn(SyncRecord{
			Client:   flowKeyFromWire(raw.Client),
			Local:    netip.AddrPortFrom(addrFromBE32(raw.LocalAddr), portFromBE16(raw.LocalPort)),
			Backend:  netip.AddrPortFrom(addrFromBE32(raw.BackendAddr), portFromBE16(raw.BackendPort)),
			FwdState: State(raw.FwdState),
			RevState: State(raw.RevState),
		})
	}
}

// SyncRingFull is how many sync records the datapath could not emit
// because the ring was full.
func (d *Datapath) SyncRingFull() (uint64, error) {
	var perCPU []uint64
	if err := d.objs.SyncStats.Lookup(uint32(xdplbSyncCounterSYNC_RING_FULL), &perCPU); err != nil {
		return 0, fmt.Errorf("read sync counters: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// NoBackendID stands for a backend this daemon does not have, in an
// adopted connection: beyond every array indexed by backend id, so its
// packets flow but count for no backend.
const NoBackendID = MaxBackends

// Adopted is a connection a peer opened, to be taken into this datapath,
// with this daemon's ids for its service and backend (BackendID 0: the
// backend is not one of ours).
type Adopted struct {
	SyncRecord
	ServiceID uint32
	BackendID uint32
	Origin    uint8
	LastSeen  uint64 // in Now()'s clock
}

// AdoptResult counts what Adopt did with each connection.
type AdoptResult struct {
	// Created: new here; Updated: known, its states and age refreshed.
	Created, Updated int
	// Replaced: known with another local address or backend (a stale
	// entry of this node): the peer's wins.
	Replaced int
	// Conflicts: the local address:port is held here by another client's
	// connection; the record was not taken.
	Conflicts int
}

// Adopt takes connections a peer opened into the conntrack maps, both
// halves, so the reverse half reserves the local address:port here too.
// The halves get no next hop: the datapath looks it up on their first
// packet (ifindex 0, hop_ifindex 0). A half already known keeps its next
// hop and its newer last-seen time.
func (d *Datapath) Adopt(conns []Adopted) (AdoptResult, error) {
	var res AdoptResult
	for _, c := range conns {
		outcome, err := d.adoptOne(c)
		if err != nil {
			return res, fmt.Errorf("adopt %v: %w", c.Client, err)
		}
		switch outcome {
		case adoptCreated:
			res.Created++
		case adoptUpdated:
			res.Updated++
		case adoptReplaced:
			res.Replaced++
		case adoptConflict:
			res.Conflicts++
		}
	}
	return res, nil
}

// halves are c's two conntrack halves, with no next hop.
func (c Adopted) halves() (Forward, Reverse) {
	fwd := Forward{Key: c.Client, Local: c.Local, Backend: c.Backend, ServiceID: c.ServiceID,
		BackendID: c.BackendID, State: c.FwdState, LastSeen: c.LastSeen}
	rev := Reverse{Key: fwd.ReverseKey(), Client: c.Client, ServiceID: c.ServiceID,
		BackendID: c.BackendID, State: c.RevState, LastSeen: c.LastSeen, Origin: c.Origin}
	return fwd, rev
}

type adoptOutcome int

const (
	adoptCreated adoptOutcome = iota
	adoptUpdated
	adoptReplaced
	adoptConflict
)

// adoptOne adopts c, merging it with what this node knows of it. A
// connection new here, the bulk of a node's first pull, costs two inserts
// that fail if anything is there already; only then are the halves looked
// up and merged.
func (d *Datapath) adoptOne(c Adopted) (adoptOutcome, error) {
	fwd, rev := c.halves()
	fk, fv, err := fwd.wire()
	if err != nil {
		return 0, err
	}
	rk, rv, err := rev.wire()
	if err != nil {
		return 0, err
	}
	newF, newR := fv, rv
	fillStates(&newF.State, &newR.State, c.Client.Proto)
	// Reverse first, as the datapath does: the port is reserved before the
	// forward half can send anything to it.
	switch err := d.objs.CtReverse.Update(bytesOf(&rk), bytesOf(&newR), ebpf.UpdateNoExist); {
	case err == nil:
		err := d.objs.CtForward.Update(bytesOf(&fk), bytesOf(&newF), ebpf.UpdateNoExist)
		if err == nil {
			return adoptCreated, nil
		}
		if !errors.Is(err, ebpf.ErrKeyExist) {
			// A full table, most likely: give the port back.
			return 0, errors.Join(err, deleteWire(d.objs.CtReverse, []xdplbCtKey{rk}))
		}
	case !errors.Is(err, ebpf.ErrKeyExist):
		return 0, err
	}
	return d.merge(c, fk, fv, rk, rv)
}

// merge adopts c, whose halves (fk, fv and rk, rv, as the record has
// them) meet entries already there.
func (d *Datapath) merge(c Adopted, fk xdplbCtKey, fv xdplbCtFwd, rk xdplbCtKey, rv xdplbCtRev) (adoptOutcome, error) {
	outcome := adoptCreated
	var oldF xdplbCtFwd
	switch err := d.objs.CtForward.Lookup(bytesOf(&fk), bytesOf(&oldF)); {
	case err == nil && oldF.LocalAddr == fv.LocalAddr && oldF.LocalPort == fv.LocalPort &&
		oldF.BackendAddr == fv.BackendAddr && oldF.BackendPort == fv.BackendPort:
		outcome = adoptUpdated
		mergeForward(&fv, oldF)
	case err == nil:
		outcome = adoptReplaced
	case !errors.Is(err, ebpf.ErrKeyNotExist):
		return 0, err
	}
	var oldR xdplbCtRev
	switch err := d.objs.CtReverse.Lookup(bytesOf(&rk), bytesOf(&oldR)); {
	case err == nil && oldR.Client != fk:
		return adoptConflict, nil
	case err == nil:
		mergeReverse(&rv, oldR)
	case !errors.Is(err, ebpf.ErrKeyNotExist):
		return 0, err
	}
	fillStates(&fv.State, &rv.State, c.Client.Proto)
	if outcome == adoptReplaced {
		old := Forward{Local: netip.AddrPortFrom(addrFromBE32(oldF.LocalAddr), portFromBE16(oldF.LocalPort)),
			Backend: netip.AddrPortFrom(addrFromBE32(oldF.BackendAddr), portFromBE16(oldF.BackendPort)),
			Key:     c.Client}
		if err := deleteKeys(d.objs.CtReverse, []FlowKey{old.ReverseKey()}); err != nil {
			return 0, err
		}
	}
	if err := d.objs.CtReverse.Update(bytesOf(&rk), bytesOf(&rv), ebpf.UpdateAny); err != nil {
		return 0, err
	}
	if err := d.objs.CtForward.Update(bytesOf(&fk), bytesOf(&fv), ebpf.UpdateAny); err != nil {
		return 0, err
	}
	return outcome, nil
}

// mergeForward keeps what this node knows better than the record: its
// next hop, a newer last-seen time, and its state where the record has
// none.
func mergeForward(v *xdplbCtFwd, old xdplbCtFwd) {
	v.HopIfindex, v.HopDmac, v.HopSmac = old.HopIfindex, old.HopDmac, old.HopSmac
	v.LastSeen = max(v.LastSeen, old.LastSeen)
	if v.State == xdplbCtStateCT_NONE {
		v.State = old.State
	}
}

func mergeReverse(v *xdplbCtRev, old xdplbCtRev) {
	v.ClientMac, v.LbMac, v.Ifindex = old.ClientMac, old.LbMac, old.Ifindex
	v.LastSeen = max(v.LastSeen, old.LastSeen)
	v.Flags = old.Flags
	if old.Origin != 0 {
		v.Origin = old.Origin
	}
	if v.State == xdplbCtStateCT_NONE {
		v.State = old.State
	}
}

// fillStates gives a half that neither the record nor this node knows a
// state its partner's, so a new entry never sits in CT_NONE.
func fillStates(fwd, rev *xdplbCtState, proto uint8) {
	switch {
	case *fwd == xdplbCtStateCT_NONE && *rev == xdplbCtStateCT_NONE:
		*fwd = xdplbCtStateCT_ESTABLISHED
		if proto == UDP {
			*fwd = xdplbCtStateCT_UDP
		}
		*rev = *fwd
	case *fwd == xdplbCtStateCT_NONE:
		*fwd = *rev
	case *rev == xdplbCtStateCT_NONE:
		*rev = *fwd
	}
}

// Forget removes a connection a peer reports ended, if this node knows it
// with the same local address and backend; it reports whether it did.
func (d *Datapath) Forget(r SyncRecord) (bool, error) {
	fk, err := r.Client.wire()
	if err != nil {
		return false, err
	}
	var old xdplbCtFwd
	if err := d.objs.CtForward.Lookup(fk, &old); errors.Is(err, ebpf.ErrKeyNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("forget %v: %w", r.Client, err)
	}
	f := Forward{Key: r.Client, Local: r.Local, Backend: r.Backend}
	_, want, err := f.wire()
	if err != nil {
		return false, err
	}
	if old.LocalAddr != want.LocalAddr || old.LocalPort != want.LocalPort ||
		old.BackendAddr != want.BackendAddr || old.BackendPort != want.BackendPort {
		return false, nil
	}
	if err := deleteKeys(d.objs.CtReverse, []FlowKey{f.ReverseKey()}); err != nil {
		return false, err
	}
	return true, deleteKeys(d.objs.CtForward, []FlowKey{r.Client})
}
