package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// BackendEntry is what the datapath holds for one backend id.
type BackendEntry struct {
	// ServiceID is the service the id belongs to; valid if Assigned.
	ServiceID uint32
	// Addr is the backend's address; the zero AddrPort if the id has none.
	Addr netip.AddrPort
	// Drained: established connections only, no new ones.
	Drained bool
	// Assigned: ServiceID is recorded. Ids written by SetBackend are;
	// ids upgraded from layout version 3 are if a service's ring named
	// them (see Migrated).
	Assigned bool
}

// SetBackend stores the address a backend id stands for and the service
// the id belongs to. A drained backend keeps its established connections
// but is no longer picked by persistence (rings simply leave it out). The
// service id is bookkeeping for the control plane, so a daemon taking over
// pinned maps can keep every id where it was; the packet path ignores it.
func (d *Datapath) SetBackend(id uint32, serviceID uint32, addr netip.AddrPort, drained bool) error {
	if id >= MaxBackends {
		return fmt.Errorf("backend %s: id %d out of range", addr, id)
	}
	if serviceID >= MaxServices {
		return fmt.Errorf("backend %d (%s): service id %d out of range", id, addr, serviceID)
	}
	v := xdplbBackend{Port: be16(addr.Port()), SvcId: uint16(serviceID), Flags: xdplbBackendFlagsBACKEND_ASSIGNED}
	if drained {
		v.Flags |= xdplbBackendFlagsBACKEND_DRAINED
	}
	if d.hostAddrs.has(addr.Addr()) {
		v.Flags |= xdplbBackendFlagsBACKEND_LOCAL
	}
	if addr.Addr().Is6() {
		return d.setBackend6(id, addr, v)
	}
	a, err := be32(addr.Addr())
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	v.Addr = a
	if err := d.assignPool(id, addr); err != nil {
		return err
	}
	// An id that was an IPv6 backend's keeps no trace of it.
	if err := d.objs.Backends6.Update(id, xdplbBackend6{}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write backend %d (%s): %w", id, addr, err)
	}
	if err := d.objs.Backends.Update(id, v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write backend %d (%s): %w", id, addr, err)
	}
	return nil
}

// ClearBackend blanks a backend id, its service and load included; a ring still
// naming it drops new connections with the bad_backend reason instead of
// sending them anywhere.
func (d *Datapath) ClearBackend(id uint32) error {
	if err := d.objs.Backends.Update(id, xdplbBackend{}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("clear backend %d: %w", id, err)
	}
	if err := d.objs.Backends6.Update(id, xdplbBackend6{}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("clear backend %d: %w", id, err)
	}
	if err := d.releasePool(id); err != nil {
		return err
	}
	return d.SetBackendLoad(id, 0, 0)
}

// BackendEntries returns every backend id that has an address or is
// assigned to a service. After a restart it is what the previous daemon
// left.
func (d *Datapath) BackendEntries() (map[uint32]BackendEntry, error) {
	vals, err := readArray[xdplbBackend](d.objs.Backends, MaxBackends)
	if err != nil {
		return nil, err
	}
	vals6, err := readArray[xdplbBackend6](d.objs.Backends6, MaxBackends)
	if err != nil {
		return nil, err
	}
	out := map[uint32]BackendEntry{}
	for id, v := range vals {
		assigned := v.Flags&xdplbBackendFlagsBACKEND_ASSIGNED != 0
		if v.Addr == 0 && !assigned {
			continue
		}
		e := BackendEntry{Drained: v.Flags&xdplbBackendFlagsBACKEND_DRAINED != 0, Assigned: assigned}
		if a6 := vals6[id].Addr; a6 != (xdplbAddr6{}) {
			e.Addr = netip.AddrPortFrom(addrFromAddr6(a6), portFromBE16(vals6[id].Port))
		} else if v.Addr != 0 {
			e.Addr = netip.AddrPortFrom(addrFromBE32(v.Addr), portFromBE16(v.Port))
		}
		if assigned {
			e.ServiceID = uint32(v.SvcId)
		}
		out[uint32(id)] = e
	}
	return out, nil
}

// readArray reads the first n values of an array map, many per syscall.
func readArray[V any](m *ebpf.Map, n uint32) ([]V, error) {
	const batch = 1 << 14
	out := make([]V, n)
	keys := make([]uint32, batch)
	vals := make([]V, batch)
	var cursor ebpf.MapBatchCursor
	for next := uint32(0); next < n; {
		c := min(batch, n-next)
		got, err := m.BatchLookup(&cursor, keys[:c], vals[:c], nil)
		done := errors.Is(err, ebpf.ErrKeyNotExist)
		if err != nil && !done {
			return nil, fmt.Errorf("read %s: %w", m, err)
		}
		for i := range got {
			if keys[i] < n {
				out[keys[i]] = vals[i]
			}
			next = keys[i] + 1
		}
		if done || got == 0 {
			break
		}
	}
	return out, nil
}

// setBackend6 is SetBackend for an IPv6 address: backends6 holds it for
// the IPv6 path, and the id's entry in backends, with no address, the
// bookkeeping both families share (so the IPv4 path never takes the id).
func (d *Datapath) setBackend6(id uint32, addr netip.AddrPort, v xdplbBackend) error {
	a, err := addr6(addr.Addr())
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	if err := d.assignPool(id, addr); err != nil {
		return err
	}
	v6 := xdplbBackend6{Addr: a, Port: v.Port, SvcId: v.SvcId, Flags: v.Flags}
	if err := d.objs.Backends6.Update(id, v6, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write backend %d (%s): %w", id, addr, err)
	}
	if err := d.objs.Backends.Update(id, v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write backend %d (%s): %w", id, addr, err)
	}
	return nil
}
