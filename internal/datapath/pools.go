package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// pools is the control plane's account of the free-slot pools (maps.h,
// port_pools): one per backend address:port, shared by every backend id
// with that address, made for one set of local addresses and one port
// slice. The kernel holds the pools themselves; this is which index is
// whose, rebuilt from the pinned maps when a daemon adopts them.
type pools struct {
	// mu orders the writers: the balancer's edits, the collector's
	// releases and the event handler's remakes.
	mu     sync.Mutex
	byDest map[netip.AddrPort]uint32 // backend address:port -> pool index
	ofID   map[uint32]uint32         // backend id -> pool index
	refs   map[uint32]int            // pool index -> backend ids using it
	local  []netip.Addr              // the local addresses the pools were made for
	alloc  Ports                     // and the port slice
	// below is an index under which every index is in use.
	below uint32
	// remade is when each pool was last made afresh for being full.
	remade map[uint32]time.Time
}

func newPools() *pools {
	return &pools{byDest: map[netip.AddrPort]uint32{}, ofID: map[uint32]uint32{}, refs: map[uint32]int{},
		remade: map[uint32]time.Time{}}
}

// slots is how many local address:port pairs each pool hands out.
func (p *pools) slots() uint32 {
	if !p.alloc.valid() {
		return 0
	}
	return uint32(len(p.local)) * (uint32(p.alloc.Max) - uint32(p.alloc.Min) + 1)
}

// freeIndex is the lowest pool index no backend uses.
func (p *pools) freeIndex() uint32 {
	for ; ; p.below++ {
		if _, used := p.refs[p.below]; !used {
			return p.below
		}
	}
}

// assignPool gives backend id (about to be written with address addr) the
// pool of that address, made if it is the first, and releases the pool it
// had before. The pool is in place before the backend is: a new
// connection never finds a backend without one.
func (d *Datapath) assignPool(id uint32, addr netip.AddrPort) error {
	p := d.pools
	p.mu.Lock()
	defer p.mu.Unlock()
	idx, ok := p.byDest[addr]
	if had, assigned := p.ofID[id]; ok && assigned && had == idx {
		return nil
	}
	if !ok {
		idx = p.freeIndex()
		if err := d.makePool(idx); err != nil {
			return fmt.Errorf("backend %s: %w", addr, err)
		}
		p.byDest[addr] = idx
	}
	p.refs[idx]++
	if err := d.objs.BackendPool.Update(id, idx+1, ebpf.UpdateAny); err != nil {
		return errors.Join(fmt.Errorf("backend %d (%s): write its pool: %w", id, addr, err), d.unrefPool(idx))
	}
	old, had := p.ofID[id]
	p.ofID[id] = idx
	if had {
		return d.unrefPool(old)
	}
	return nil
}

// releasePool takes backend id's pool away from it, as it is cleared.
func (d *Datapath) releasePool(id uint32) error {
	d.pools.mu.Lock()
	defer d.pools.mu.Unlock()
	idx, ok := d.pools.ofID[id]
	if !ok {
		return nil
	}
	if err := d.objs.BackendPool.Update(id, uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("backend %d: clear its pool: %w", id, err)
	}
	delete(d.pools.ofID, id)
	return d.unrefPool(idx)
}

// unrefPool drops one user of pool idx, and the pool with its last. The
// connections it still has end as any other; their slots then go nowhere,
// and a pool made later for the same address starts from its cursor.
func (d *Datapath) unrefPool(idx uint32) error {
	p := d.pools
	if p.refs[idx]--; p.refs[idx] > 0 {
		return nil
	}
	delete(p.refs, idx)
	delete(p.remade, idx)
	p.below = min(p.below, idx)
	for addr, i := range p.byDest {
		if i == idx {
			delete(p.byDest, addr)
		}
	}
	if err := d.objs.PortPools.Delete(idx); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("remove port pool %d: %w", idx, err)
	}
	return nil
}

// RemakePool makes pool idx afresh, as the datapath asks when the pool's
// queue was full (EventPoolFull). Every push that found it full asks: the
// ones that arrive within a second of a remake are answered by it.
func (d *Datapath) RemakePool(idx uint32) error {
	p := d.pools
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, used := p.refs[idx]; !used || time.Since(p.remade[idx]) < time.Second {
		return nil
	}
	p.remade[idx] = time.Now()
	return d.makePool(idx)
}

// makePool puts an empty queue at pool index idx with its cursor at the
// start: every slot is then handed out fresh once, before any comes back.
// Without local addresses yet there is nothing to hand out; SetLocal makes
// the pool.
func (d *Datapath) makePool(idx uint32) error {
	n := d.pools.slots()
	if n == 0 {
		return nil
	}
	q, err := ebpf.NewMap(d.poolQueue)
	if err != nil {
		return fmt.Errorf("make port pool: %w", err)
	}
	defer q.Close()
	if err := d.objs.PoolCursor.Update(idx, uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("reset port pool %d: %w", idx, err)
	}
	if err := d.objs.PortPools.Update(idx, q, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("install port pool %d: %w", idx, err)
	}
	return nil
}

// setPoolsLocal makes every pool afresh for new local addresses or a new
// port slice; the same ones keep the pools as they are. The connections
// open on the old ones keep their slots: a fresh pool skips a slot it finds
// taken, and gets it back when its connection ends.
func (d *Datapath) setPoolsLocal(addrs []netip.Addr, alloc Ports) error {
	p := d.pools
	p.mu.Lock()
	defer p.mu.Unlock()
	// In the order the datapath's tables have them, as restorePools
	// reads them back.
	v4, v6 := localFamilies(addrs)
	addrs = append(v4, v6...)
	if slices.Equal(p.local, addrs) && p.alloc == alloc {
		return nil
	}
	for _, a := range p.local {
		if !slices.Contains(addrs, a) {
			if err := d.forgetLocal(a); err != nil {
				return err
			}
		}
	}
	if err := d.indexLocal(addrs); err != nil {
		return err
	}
	p.local, p.alloc = slices.Clone(addrs), alloc
	for idx := range p.refs {
		if err := d.makePool(idx); err != nil {
			return err
		}
	}
	return nil
}

// indexLocal writes each local address's index among those of its family,
// for the datapath to find the slot of a connection it removes.
func (d *Datapath) indexLocal(addrs []netip.Addr) error {
	v4, v6 := localFamilies(addrs)
	for i, a := range v4 {
		v, _ := be32(a)
		if err := d.objs.LocalIndex.Update(v, uint32(i), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("index local address %s: %w", a, err)
		}
	}
	for i, a := range v6 {
		v, err := addr6(a)
		if err != nil {
			return fmt.Errorf("local address: %w", err)
		}
		if err := d.objs.Local6Index.Update(v, uint32(i), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("index local address %s: %w", a, err)
		}
	}
	return nil
}

// forgetLocal removes a local address's index.
func (d *Datapath) forgetLocal(a netip.Addr) error {
	var err error
	if a.Is4() {
		v, _ := be32(a)
		err = d.objs.LocalIndex.Delete(v)
	} else {
		v, _ := addr6(a)
		err = d.objs.Local6Index.Delete(v)
	}
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("forget local address %s: %w", a, err)
	}
	return nil
}

// familyIndex is local address a's index among those of its family in
// local, -1 if it is not there.
func familyIndex(local []netip.Addr, a netip.Addr) int {
	i := 0
	for _, l := range local {
		if l == a {
			return i
		}
		if l.Is4() == a.Is4() {
			i++
		}
	}
	return -1
}

// releaseSlots returns the slots of removed reverse halves to their pools,
// as the datapath does for the halves it removes itself. Slots of no pool
// (a backend gone, a peer's address or port slice) go nowhere.
func (d *Datapath) releaseSlots(removed []FlowKey) error {
	p := d.pools
	p.mu.Lock()
	defer p.mu.Unlock()
	byPool := map[uint32][]uint32{}
	for _, k := range removed {
		port := k.Dst.Port()
		if port < p.alloc.Min || port > p.alloc.Max {
			continue
		}
		idx, ok := p.byDest[k.Src]
		local := familyIndex(p.local, k.Dst.Addr())
		if !ok || local < 0 {
			continue
		}
		byPool[idx] = append(byPool[idx], uint32(local)<<16|uint32(port))
	}
	for idx, slots := range byPool {
		if err := d.pushSlots(idx, slots); err != nil {
			return err
		}
	}
	return nil
}

func (d *Datapath) pushSlots(idx uint32, slots []uint32) error {
	var q *ebpf.Map
	if err := d.objs.PortPools.Lookup(idx, &q); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		return fmt.Errorf("open port pool %d: %w", idx, err)
	}
	defer q.Close()
	for _, s := range slots {
		err := q.Update(nil, s, ebpf.UpdateAny)
		if errors.Is(err, unix.E2BIG) {
			return d.makePool(idx) // full: see port_pools
		}
		if err != nil {
			return fmt.Errorf("return slot to port pool %d: %w", idx, err)
		}
	}
	return nil
}

// restorePools rebuilds the account of the pools from adopted maps: the
// local addresses and slice they were made for, and which backend id uses
// which. A backend without a pool (maps of a version before pools) gets
// one now, so no adopted backend refuses new connections. Load calls it
// before anything else can use d, so it needs no lock of its own.
func (d *Datapath) restorePools() error {
	var cfg xdplbLbConfig
	if err := d.objs.Config.Lookup(uint32(0), &cfg); err != nil {
		return fmt.Errorf("read datapath config: %w", err)
	}
	var cfg6 xdplbLbConfig6
	if err := d.objs.Config6.Lookup(uint32(0), &cfg6); err != nil {
		return fmt.Errorf("read datapath config: %w", err)
	}
	p := d.pools
	for i := range min(cfg.LocalCount, MaxLocalAddrs) {
		var v uint32
		if err := d.objs.LocalAddrs.Lookup(i, &v); err != nil {
			return fmt.Errorf("read local address %d: %w", i, err)
		}
		p.local = append(p.local, addrFromBE32(v))
	}
	for i := range min(cfg6.LocalCount, MaxLocalAddrs) {
		var v xdplbAddr6
		if err := d.objs.Local6Addrs.Lookup(i, &v); err != nil {
			return fmt.Errorf("read local address %d: %w", i, err)
		}
		p.local = append(p.local, addrFromAddr6(v))
	}
	p.alloc = Ports{Min: cfg.PortMin, Max: cfg.PortMax}
	if err := d.indexLocal(p.local); err != nil {
		return err
	}
	backends, err := d.BackendEntries()
	if err != nil {
		return err
	}
	refs, err := readArray[uint32](d.objs.BackendPool, MaxBackends)
	if err != nil {
		return err
	}
	var unpooled []uint32
	for id, e := range backends {
		if !e.Addr.IsValid() {
			continue
		}
		if refs[id] == 0 {
			unpooled = append(unpooled, id)
			continue
		}
		idx := refs[id] - 1
		p.byDest[e.Addr] = idx
		p.ofID[id] = idx
		p.refs[idx]++
	}
	for idx := range p.refs {
		var q *ebpf.Map
		err := d.objs.PortPools.Lookup(idx, &q)
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			err = d.makePool(idx)
		case err == nil:
			err = q.Close()
		}
		if err != nil {
			return fmt.Errorf("adopt port pool %d: %w", idx, err)
		}
	}
	slices.Sort(unpooled)
	for _, id := range unpooled {
		if err := d.assignPool(id, backends[id].Addr); err != nil {
			return err
		}
	}
	return nil
}
