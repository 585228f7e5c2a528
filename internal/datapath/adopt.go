package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// NoBackendID stands for a backend this daemon does not have, in an
// adopted connection: beyond every array indexed by backend id, so its
// packets flow but count for no backend.
const NoBackendID = MaxBackends

// Adopted is a connection a peer opened, to be taken into this datapath,
// with this daemon's ids for its service and backend (NoBackendID: the
// backend is not one of ours).
type Adopted struct {
	SyncRecord
	ServiceID uint32
	BackendID uint32
	Origin    uint8
	LastSeen  uint64 // the peer's last packet, in Now()'s clock
}

// AdoptResult counts what Adopt did with each connection.
type AdoptResult struct {
	// Created: new here; Updated: known, merged with the record.
	Created, Updated int
	// Replaced: known with another local address or backend, and seen
	// here less recently than the record says: the peer's wins.
	Replaced int
	// Stale: known with another local address or backend and seen here
	// more recently: this node's wins, the record is dropped.
	Stale int
	// Conflicts: the local address:port is held here by another client's
	// connection; the record was not taken.
	Conflicts int
	// Failed: the maps refused (a full table); the first error is returned.
	Failed int
}

type adoptOutcome int

const (
	adoptCreated adoptOutcome = iota
	adoptUpdated
	adoptReplaced
	adoptStale
	adoptConflict
)

// Adopt takes connections a peer opened into the conntrack maps, both
// halves, so the reverse half reserves the local address:port here too.
// The halves get no next hop: the datapath looks it up on their first
// packet (ifindex 0, hop_ifindex 0). A half already known keeps its next
// hop, and whichever of the record and this node saw the connection last
// decides its states. A connection the maps refuse is counted and skipped.
func (d *Datapath) Adopt(conns []Adopted) (AdoptResult, error) {
	var res AdoptResult
	var first error
	for _, c := range conns {
		outcome, err := d.adoptOne(c)
		if err != nil {
			res.Failed++
			if first == nil {
				first = fmt.Errorf("adopt %v: %w", c.Client, err)
			}
			continue
		}
		switch outcome {
		case adoptCreated:
			res.Created++
		case adoptUpdated:
			res.Updated++
		case adoptReplaced:
			res.Replaced++
		case adoptStale:
			res.Stale++
		case adoptConflict:
			res.Conflicts++
		}
	}
	return res, first
}

// halves are c's two conntrack halves, with no next hop.
func (c Adopted) halves() (Forward, Reverse) {
	fwd := Forward{Key: c.Client, Local: c.Local, Backend: c.Backend, ServiceID: c.ServiceID,
		BackendID: c.BackendID, State: c.FwdState, LastSeen: c.LastSeen}
	rev := Reverse{Key: fwd.ReverseKey(), Client: c.Client, ServiceID: c.ServiceID,
		BackendID: c.BackendID, State: c.RevState, LastSeen: c.LastSeen, Origin: c.Origin}
	return fwd, rev
}

// adoptOne adopts c, merging it with what this node knows of it. A
// connection new here, the bulk of a node's first pull, costs two inserts
// that fail if anything is there already; only then are the halves looked
// up and merged.
func (d *Datapath) adoptOne(c Adopted) (adoptOutcome, error) {
	if !c.Local.Addr().IsValid() || c.Local.Addr().IsUnspecified() {
		return adoptStale, nil // a DSR connection: peers keep theirs (worthSyncing)
	}
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
			return 0, errors.Join(err, d.deleteReverse([]xdplbCtKey{rk}))
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
	case err == nil && isDSR(&oldF):
		// This node forwards the client directly: a Full-NAT mapping
		// from a peer must not turn it into one.
		return adoptStale, d.deleteReverseOf(fk, rk)
	case err == nil && sameMapping(oldF, fv):
		outcome = adoptUpdated
		mergeForward(&fv, oldF, c.LastSeen >= oldF.LastSeen)
	case err == nil && oldF.LastSeen > c.LastSeen:
		return adoptStale, nil
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
		mergeReverse(&rv, oldR, c.LastSeen >= oldR.LastSeen)
	case !errors.Is(err, ebpf.ErrKeyNotExist):
		return 0, err
	}
	fillStates(&fv.State, &rv.State, c.Client.Proto)
	if outcome == adoptReplaced {
		// The stale mapping's port is given back, if it is still this
		// client's.
		if err := d.deleteReverseOf(fk, reverseKeyOf(fk, &oldF)); err != nil {
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

func sameMapping(a, b xdplbCtFwd) bool {
	return a.LocalAddr == b.LocalAddr && a.LocalPort == b.LocalPort &&
		a.BackendAddr == b.BackendAddr && a.BackendPort == b.BackendPort
}

// deleteReverseOf deletes reverse half rk if it belongs to the client of
// fk: a key held by another client is that client's live port.
func (d *Datapath) deleteReverseOf(fk, rk xdplbCtKey) error {
	var r xdplbCtRev
	switch err := d.objs.CtReverse.Lookup(bytesOf(&rk), bytesOf(&r)); {
	case errors.Is(err, ebpf.ErrKeyNotExist):
		return nil
	case err != nil:
		return err
	case r.Client != fk:
		return nil
	}
	return d.deleteReverse([]xdplbCtKey{rk})
}

// mergeForward keeps what this node knows better than the record: its
// next hop, a newer last-seen time, and its state where the record has
// none or is older.
func mergeForward(v *xdplbCtFwd, old xdplbCtFwd, recordNewer bool) {
	v.HopIfindex, v.HopDmac, v.HopSmac = old.HopIfindex, old.HopDmac, old.HopSmac
	v.LastSeen = max(v.LastSeen, old.LastSeen)
	if v.State == xdplbCtStateCT_NONE || !recordNewer {
		v.State = old.State
	}
}

func mergeReverse(v *xdplbCtRev, old xdplbCtRev, recordNewer bool) {
	v.ClientMac, v.LbMac, v.Ifindex = old.ClientMac, old.LbMac, old.Ifindex
	v.LastSeen = max(v.LastSeen, old.LastSeen)
	v.Flags = old.Flags
	if old.Origin != 0 {
		v.Origin = old.Origin
	}
	if v.State == xdplbCtStateCT_NONE || !recordNewer {
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
// with the same local address and backend and has seen no packet of it
// after seenBefore (Now's clock; the peer's last one): a peer's timers may
// run ahead of this node's traffic. It reports whether it removed it.
func (d *Datapath) Forget(r SyncRecord, seenBefore uint64) (bool, error) {
	f := Forward{Key: r.Client, Local: r.Local, Backend: r.Backend}
	fk, want, err := f.wire()
	if err != nil {
		return false, err
	}
	var old xdplbCtFwd
	if err := d.objs.CtForward.Lookup(bytesOf(&fk), bytesOf(&old)); errors.Is(err, ebpf.ErrKeyNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("forget %v: %w", r.Client, err)
	}
	if !sameMapping(old, want) || old.LastSeen > seenBefore {
		return false, nil
	}
	rk := reverseKeyOf(fk, &old)
	var rev xdplbCtRev
	switch err := d.objs.CtReverse.Lookup(bytesOf(&rk), bytesOf(&rev)); {
	case err == nil && rev.Client == fk && rev.LastSeen > seenBefore:
		return false, nil
	case err != nil && !errors.Is(err, ebpf.ErrKeyNotExist):
		return false, fmt.Errorf("forget %v: %w", r.Client, err)
	}
	if err := deleteWire(d.objs.CtForward, []xdplbCtKey{fk}, nil); err != nil {
		return false, err
	}
	return true, d.deleteReverseOf(fk, rk)
}
