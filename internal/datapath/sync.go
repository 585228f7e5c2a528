package datapath

import (
	"context"
	"fmt"
	"net/netip"
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
	return readRing(ctx, d.objs.SyncEvents, "sync record", func(raw *xdplbSyncEvent) {
		fn(SyncRecord{
			Client:   flowKeyFromWire(raw.Client),
			Local:    netip.AddrPortFrom(addrFromBE32(raw.LocalAddr), portFromBE16(raw.LocalPort)),
			Backend:  netip.AddrPortFrom(addrFromBE32(raw.BackendAddr), portFromBE16(raw.BackendPort)),
			FwdState: State(raw.FwdState),
			RevState: State(raw.RevState),
		})
	})
}

// SyncRingFull is how many sync records the datapath could not emit
// because the ring was full.
func (d *Datapath) SyncRingFull() (uint64, error) {
	n, err := SumCounter(d.objs.SyncStats, uint32(xdplbSyncCounterSYNC_RING_FULL))
	if err != nil {
		return 0, fmt.Errorf("read sync counters: %w", err)
	}
	return n, nil
}
