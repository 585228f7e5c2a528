package datapath

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// migrate upgrades adopted maps of layout version v (3 or 4): version 3's
// meaning first, then a first copy of the conntrack entries into maps of
// this layout (see oldConntrack). FinishMigration stamps the new version;
// until then a failed upgrade can simply be run again.
func (d *Datapath) migrate(v uint32) error {
	if v == 3 {
		if err := d.migrateFrom3(); err != nil {
			return err
		}
	}
	if d.oldCT == nil {
		return fmt.Errorf("no conntrack maps of layout %d to copy", v)
	}
	n, err := d.copyConntrack(d.oldCT)
	d.migratedConns = n
	return err
}

// migrateFrom3 upgrades adopted maps of layout version 3 in place. Version
// 3 had padding where struct backend now records the service a backend id
// belongs to, so every id was unassigned: each id a service's ring names
// is assigned to that service. Ids no ring names (drained backends, which
// rings leave out) stay unassigned, and so do ids two services' rings name,
// which no daemon ever wrote. The caller stamps the new version after this
// succeeds; until then a failed upgrade can simply be run again.
func (d *Datapath) migrateFrom3() error {
	svcs, err := d.Services()
	if err != nil {
		return err
	}
	var end uint32
	for _, s := range svcs {
		end = max(end, uint32(min(uint64(s.Ring.Offset)+uint64(s.Ring.Len), RingSlots)))
	}
	rings, err := readArray[uint32](d.objs.Rings, end)
	if err != nil {
		return err
	}
	owner := map[uint32]uint32{} // backend id -> service id
	shared := map[uint32]bool{}
	for _, s := range svcs {
		lo := min(s.Ring.Offset, end)
		hi := uint32(min(uint64(s.Ring.Offset)+uint64(s.Ring.Len), uint64(end)))
		for _, id := range rings[lo:hi] {
			if prev, ok := owner[id]; ok && prev != s.ID {
				shared[id] = true
			}
			owner[id] = s.ID
		}
	}
	for id, svc := range owner {
		if shared[id] || id >= MaxBackends || svc >= MaxServices {
			continue
		}
		var v xdplbBackend
		if err := d.objs.Backends.Lookup(id, &v); err != nil {
			return fmt.Errorf("read backend %d: %w", id, err)
		}
		v.SvcId = uint16(svc)
		v.Flags |= xdplbBackendFlagsBACKEND_ASSIGNED
		if err := d.objs.Backends.Update(id, v, ebpf.UpdateExist); err != nil {
			return fmt.Errorf("write backend %d: %w", id, err)
		}
	}
	return nil
}
