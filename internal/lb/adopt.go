package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// An adopted datapath holds an earlier daemon's services, rings and
// backend ids, and its connections carry those ids. The balancer takes
// them over as they are: a service keeps its id and ring, a backend that
// is still configured keeps its id (and so its counters and its
// connections' accounting), and ids that go are retired, not reused,
// until no connection carries them.

// Held is what an adopted datapath holds.
type Held struct {
	Services map[ident.Service]datapath.Service
	Backends map[uint32]datapath.BackendEntry
	// Carried are the service and backend ids its connections carry.
	// An id the services and backends no longer name (its owner was
	// removed before the hand-over, and retired then) stays out of use.
	CarriedServices, CarriedBackends map[uint32]bool
	// Connections is how many connections it holds.
	Connections int
}

// Reader reads what a datapath holds, for Adopt.
type Reader interface {
	Services() (map[ident.Service]datapath.Service, error)
	BackendEntries() (map[uint32]datapath.BackendEntry, error)
	WalkForward(fn func([]datapath.Forward) error) error
}

// heldBackend is a backend id an adopted service holds.
type heldBackend struct {
	serviceID uint32
	addr      netip.AddrPort
}

// ReadHeld reads what dp holds.
func ReadHeld(dp Reader) (Held, error) {
	svcs, err := dp.Services()
	if err != nil {
		return Held{}, fmt.Errorf("read adopted services: %w", err)
	}
	bes, err := dp.BackendEntries()
	if err != nil {
		return Held{}, fmt.Errorf("read adopted backends: %w", err)
	}
	h := Held{Services: svcs, Backends: bes, CarriedServices: map[uint32]bool{}, CarriedBackends: map[uint32]bool{}}
	err = dp.WalkForward(func(batch []datapath.Forward) error {
		for _, f := range batch {
			h.CarriedServices[f.ServiceID] = true
			h.CarriedBackends[f.BackendID] = true
		}
		h.Connections += len(batch)
		return nil
	})
	if err != nil {
		return Held{}, fmt.Errorf("read adopted connections: %w", err)
	}
	return h, nil
}

// Adopt returns a balancer writing to w that takes over held: its ids and
// ring slices are reserved, to be claimed by the first Apply.
func Adopt(w Writer, held Held) *Balancer {
	b := New(w)
	svcIDs := map[uint32]bool{}
	for key, s := range held.Services {
		svcIDs[s.ID] = true
		b.rings.reserve(s.Ring)
		b.held[key] = s
	}
	for id := range held.CarriedServices {
		if !svcIDs[id] {
			// Removed before the hand-over: out of use until no
			// connection carries it.
			svcIDs[id] = true
			b.retiredServices[id] = time.Time{}
		}
	}
	beIDs := map[uint32]bool{}
	for id, e := range held.Backends {
		beIDs[id] = true
		if e.Assigned {
			b.heldBackends[heldBackend{e.ServiceID, e.Addr}] = id
		} else {
			// Whose it was is unknown (recorded by an older layout).
			b.retired[id] = time.Time{}
		}
	}
	for id := range held.CarriedBackends {
		if !beIDs[id] {
			// Its backend was removed before the hand-over.
			beIDs[id] = true
			b.retired[id] = time.Time{}
		}
	}
	b.svcIDs = newIDAllocUsed(datapath.MaxServices, svcIDs)
	b.backendIDs = newIDAllocUsed(datapath.MaxBackends, beIDs)
	return b
}

// claimService returns the id and ring an adopted datapath holds for key,
// if it does.
func (b *Balancer) claimService(key ident.Service) (datapath.Service, bool) {
	s, ok := b.held[key]
	if ok {
		delete(b.held, key)
	}
	return s, ok
}

// claimBackend returns the id an adopted datapath holds for addr in the
// service with id svcID, if it does.
func (b *Balancer) claimBackend(svcID uint32, addr netip.AddrPort) (uint32, bool) {
	k := heldBackend{svcID, addr}
	id, ok := b.heldBackends[k]
	if ok {
		delete(b.heldBackends, k)
	}
	return id, ok
}

// dropUnclaimed removes what an adopted datapath held that the desired
// services did not claim: services the configuration no longer has, and
// backends they no longer have. Their backend ids are retired.
func (b *Balancer) dropUnclaimed(vips map[netip.Addr]bool) error {
	var errs []error
	keys := make([]ident.Service, 0, len(b.held))
	for k := range b.held {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	for _, k := range keys {
		s := b.held[k]
		if err := b.w.DeleteService(k, vips[k.VIP]); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", k, err))
			continue
		}
		delete(b.held, k)
		b.retiredServices[s.ID] = time.Time{}
		b.rings.free(s.Ring)
	}
	for k, id := range b.heldBackends {
		if err := b.w.ClearBackend(id); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(b.heldBackends, k)
		b.retired[id] = time.Time{}
	}
	return errors.Join(errs...)
}

// Carried is what a collector sweep found connections carry: their
// backend and service ids, and when the sweep began.
type Carried struct {
	Backends map[uint32]datapath.ConnCount
	Services map[uint32]int
	Started  time.Time
}

// Release frees the retired ids that no connection carried in a sweep that
// began after they were retired. It returns how many it freed.
func (b *Balancer) Release(c Carried) int {
	n := 0
	for id, at := range b.retired {
		if at.After(c.Started) || c.Backends[id] != (datapath.ConnCount{}) {
			continue
		}
		delete(b.retired, id)
		b.backendIDs.free(id)
		n++
	}
	for id, at := range b.retiredServices {
		if at.After(c.Started) || c.Services[id] > 0 {
			continue
		}
		delete(b.retiredServices, id)
		b.svcIDs.free(id)
		n++
	}
	return n
}
