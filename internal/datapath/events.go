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

// EventType says what the datapath asks the control plane to look at.
type EventType uint32

const (
	// EventNoNeighbour: a backend's next hop is not resolved; Addr is the
	// backend.
	EventNoNeighbour = EventType(xdplbEventTypeEV_NO_NEIGH)
	// EventPortsPressure: a backend's pool of local ports is running out
	// or ran out; Addr is the backend.
	EventPortsPressure = EventType(xdplbEventTypeEV_PORTS_PRESSURE)
	// EventPoolFull: a port pool's queue was full and lost a freed port;
	// ReadEvents has made the pool afresh (Err says if it could not).
	EventPoolFull = EventType(xdplbEventTypeEV_POOL_FULL)
	// EventHalfOpen: half-open connections are at a bound; counting them
	// again (a conntrack sweep) leaves out the ones that expired.
	EventHalfOpen = EventType(xdplbEventTypeEV_HALF_OPEN)
	// EventNoClientNeighbour: the next hop towards the client of a
	// connection adopted from a peer is not resolved; Addr is the client.
	EventNoClientNeighbour = EventType(xdplbEventTypeEV_NO_CLIENT_NEIGH)
)

// Event is one notification from the datapath.
type Event struct {
	Type EventType
	Addr netip.Addr
	Err  error
}

// ReadEvents delivers datapath events to fn until ctx ends. It answers
// the ones that are the datapath's own business first.
func (d *Datapath) ReadEvents(ctx context.Context, fn func(Event)) error {
	return readRing(ctx, d.objs.Events, "event", func(raw *xdplbEvent) {
		if EventType(raw.Type) == EventPoolFull {
			fn(Event{Type: EventPoolFull, Err: d.RemakePool(raw.Addr)})
			return
		}
		fn(Event{Type: EventType(raw.Type), Addr: addrFromBE32(raw.Addr)})
	})
}

// readRing passes every record of a ring buffer, decoded as a T, to fn
// until ctx ends. what names the records in errors.
func readRing[T any](ctx context.Context, m *ebpf.Map, what string, fn func(*T)) error {
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return fmt.Errorf("open %s ring: %w", what, err)
	}
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	defer rd.Close()
	var rec ringbuf.Record
	var raw T
	for {
		err := rd.ReadInto(&rec)
		if errors.Is(err, ringbuf.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		if err := binary.Read(bytes.NewReader(rec.RawSample), binary.NativeEndian, &raw); err != nil {
			continue // a short record cannot come from our program; skip it
		}
		fn(&raw)
	}
}
