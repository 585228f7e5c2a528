package lb

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// Writer is the part of the datapath the balancer writes to; tests record
// the calls to check that a change produces exactly the writes it should.
type Writer interface {
	SetService(key ident.Service, svc datapath.Service) error
	DeleteService(key ident.Service, vipInUse bool) error
	WriteRing(offset uint32, ids []uint32) error
	SetBackend(id, serviceID uint32, addr netip.AddrPort, drained bool) error
	ClearBackend(id uint32) error
	ResetServiceTraffic(id uint32) error
	ResetBackendTraffic(id uint32) error
	SetBackendLoad(id, weight uint32, load uint64) error
}

// Balancer is the desired state last applied to the datapath.
type Balancer struct {
	w          Writer
	services   map[ident.Service]*service
	svcIDs     *idAlloc
	backendIDs *idAlloc
	rings      ringAlloc
	// down holds the backends health checks took out, per service.
	down map[ident.Service]map[netip.AddrPort]bool
	// retired are backend ids that left their service while connections
	// may still carry them, with when: they are not reused until a sweep
	// that started later finds none (see Release).
	retired map[uint32]time.Time
	// retiredServices are service ids kept out of use likewise: a
	// connection's service id decides whose counters it feeds.
	retiredServices map[uint32]time.Time
	// held and heldBackends are what an adopted datapath holds that no
	// Apply has claimed yet (see Adopt).
	held         map[ident.Service]datapath.Service
	heldBackends map[heldBackend]uint32
	now          func() time.Time
}

type service struct {
	cfg      config.Service
	key      ident.Service
	id       uint32
	backends []backend // in config order
	ring     datapath.Ring
	ringIDs  []uint32
	written  datapath.Service // what the datapath holds for it
}

type backend struct {
	cfg     config.Backend
	id      uint32
	drained bool // as written to the datapath
	// loadWeight and load are what the least-connection schedulers were
	// last given for it (see least.go).
	loadWeight uint32
	load       uint64
}

// New returns an empty balancer writing to w.
func New(w Writer) *Balancer {
	return &Balancer{
		w:               w,
		services:        map[ident.Service]*service{},
		svcIDs:          newIDAlloc(datapath.MaxServices),
		backendIDs:      newIDAlloc(datapath.MaxBackends),
		rings:           ringAlloc{size: datapath.RingSlots},
		down:            map[ident.Service]map[netip.AddrPort]bool{},
		retired:         map[uint32]time.Time{},
		retiredServices: map[uint32]time.Time{},
		held:            map[ident.Service]datapath.Service{},
		heldBackends:    map[heldBackend]uint32{},
		now:             time.Now,
	}
}

// forwarding is the datapath's form of a service's forwarding mode.
func forwarding(mode string) datapath.Forwarding {
	switch mode {
	case config.ForwardingDSRL2:
		return datapath.DSRL2
	case config.ForwardingDSRIPIP:
		return datapath.DSRIPIP
	case config.ForwardingDSRGUE:
		return datapath.DSRGUE
	default:
		return datapath.FullNAT
	}
}

// index is how the datapath indexes a scheduler's ring.
func index(scheduler string) datapath.Index {
	switch scheduler {
	case "maglev":
		return datapath.IndexTupleHash
	case "sh":
		return datapath.IndexSourceHash
	case "lc", "wlc":
		return datapath.IndexLeast
	default:
		return datapath.IndexCounter
	}
}

// SetHealth makes down the set of backends health checks hold out, and
// rebuilds the ring of each service whose set changed, once however many
// of its backends changed: a down backend gets no new connections,
// exactly like one of weight 0. A service whose rebuild fails keeps its
// old ring and is retried by the next call.
func (b *Balancer) SetHealth(down map[ident.Backend]bool) error {
	next := map[ident.Service]map[netip.AddrPort]bool{}
	for be, isDown := range down {
		if !isDown {
			continue
		}
		k := be.Service
		if next[k] == nil {
			next[k] = map[netip.AddrPort]bool{}
		}
		next[k][be.Addr] = true
	}
	changed := map[ident.Service]bool{}
	for k, addrs := range next {
		if !maps.Equal(addrs, b.down[k]) {
			changed[k] = true
		}
	}
	for k, addrs := range b.down {
		if len(addrs) > 0 && next[k] == nil {
			changed[k] = true
		}
	}
	prev := b.down
	b.down = next
	var errs []error
	for _, k := range sortedKeys(changed) {
		s, ok := b.services[k]
		if !ok {
			continue
		}
		if err := b.update(s, s.cfg); err != nil {
			b.down[k] = prev[k]
			errs = append(errs, fmt.Errorf("service %s: %w", s.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Down returns the backends SetHealth holds out of their rings.
func (b *Balancer) Down() map[ident.Backend]bool {
	out := map[ident.Backend]bool{}
	for k, addrs := range b.down {
		for a := range addrs {
			out[ident.Backend{Service: k, Addr: a}] = true
		}
	}
	return out
}

// ServiceID is the datapath's id of the service with key k.
func (b *Balancer) ServiceID(k ident.Service) (uint32, bool) {
	s, ok := b.services[k]
	if !ok {
		return 0, false
	}
	return s.id, true
}

func sortedKeys(set map[ident.Service]bool) []ident.Service {
	out := make([]ident.Service, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i], out[j]) })
	return out
}

// members lists a service's backends as the balancer tracks them: the
// configured ones, then the fallback if there is one.
func members(cs config.Service) []config.Backend {
	if cs.Fallback == nil {
		return cs.Backends
	}
	return append(slices.Clone(cs.Backends), *cs.Fallback)
}

// effective is the service as the rings see it, its backends parallel to
// members(cs): down backends weigh 0, and the fallback weighs 1 only while
// no other backend can take a connection.
func (b *Balancer) effective(cs config.Service) config.Service {
	down := b.down[cs.Key()]
	eff := cs
	eff.Backends = slices.Clone(members(cs))
	usable := false
	for i := range cs.Backends {
		if down[addrPort(eff.Backends[i])] {
			eff.Backends[i].Weight = 0
		}
		usable = usable || eff.Backends[i].Weight > 0
	}
	if cs.Fallback != nil {
		fallback := &eff.Backends[len(eff.Backends)-1]
		fallback.Weight = 0
		if !usable {
			fallback.Weight = 1
		}
	}
	return eff
}

// Apply makes the datapath serve exactly the desired services. Services and
// backends that did not change are not written; established connections
// are never moved, whatever changes. A service whose change fails keeps its
// previous state (or, if new, is left out) and is retried by the next Apply.
func (b *Balancer) Apply(desired []config.Service) error {
	want := make(map[ident.Service]config.Service, len(desired))
	vips := map[netip.Addr]bool{}
	for _, s := range desired {
		want[s.Key()] = s
		vips[s.VIP] = true
	}
	var gone []*service
	for key, s := range b.services {
		if _, ok := want[key]; !ok {
			gone = append(gone, s)
		}
	}
	// Removed in key order, so that the writes do not depend on map order.
	sort.Slice(gone, func(i, j int) bool { return keyLess(gone[i].key, gone[j].key) })
	var errs []error
	for _, s := range gone {
		if err := b.remove(s, vips[s.key.VIP]); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.cfg.Name, err))
		}
	}
	for _, cs := range desired {
		var err error
		if s, ok := b.services[cs.Key()]; ok {
			if reflect.DeepEqual(s.cfg, cs) {
				continue // health changes reach the datapath through SetDown
			}
			err = b.update(s, cs)
		} else {
			err = b.add(cs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", cs.Name, err))
		}
	}
	return errors.Join(append(errs, b.dropUnclaimed(vips))...)
}

// add programs a new service. On failure nothing of it is kept: its ids are
// freed and the backends it wrote are cleared again.
func (b *Balancer) add(cs config.Service) error {
	eff := b.effective(cs)
	positions, err := buildRing(eff.Scheduler, eff.Backends)
	if err != nil {
		return err
	}
	s := &service{cfg: cs, key: cs.Key()}
	held, adopted := b.claimService(s.key)
	if adopted {
		// Its id and counters carry on; the ring it has is replaced by
		// publishRing like any other change, and freed then.
		s.id, s.ring, s.written = held.ID, held.Ring, held
	} else if s.id, err = b.svcIDs.alloc(); err != nil {
		return fmt.Errorf("service id: %w", err)
	}
	fail := func(err error, created []backend) error {
		if !adopted {
			b.svcIDs.free(s.id)
		}
		return errors.Join(err, b.discard(created))
	}
	all := members(cs)
	backends := make([]backend, 0, len(all))
	for i, cb := range all {
		drained := eff.Backends[i].Weight == 0
		var be backend
		if id, ok := b.claimBackend(s.id, addrPort(cb)); ok {
			be, err = backend{cfg: cb, id: id, drained: drained}, b.w.SetBackend(id, s.id, addrPort(cb), drained)
		} else {
			be, err = b.newBackend(s.id, cb, drained)
		}
		if err != nil {
			return fail(err, backends)
		}
		backends = append(backends, be)
	}
	if !adopted {
		if err := b.w.ResetServiceTraffic(s.id); err != nil {
			return fail(err, backends)
		}
	}
	if err := b.writeWeights(backends, eff); err != nil {
		return fail(err, backends)
	}
	if err := b.publishRing(s, eff, backends, positions); err != nil {
		return fail(err, backends)
	}
	s.backends = backends
	b.services[s.key] = s
	return nil
}

// update moves a service to its new config. On failure the service keeps
// its previous config, backends and ring, and the backends written for the
// new config are cleared again.
func (b *Balancer) update(s *service, cs config.Service) error {
	eff := b.effective(cs)
	positions, err := buildRing(eff.Scheduler, eff.Backends)
	if err != nil {
		return err
	}
	byAddr := make(map[netip.AddrPort]backend, len(s.backends))
	for _, be := range s.backends {
		byAddr[addrPort(be.cfg)] = be
	}
	all := members(cs)
	backends := make([]backend, 0, len(all))
	var created []backend
	for i, cb := range all {
		drained := eff.Backends[i].Weight == 0
		be, ok := byAddr[addrPort(cb)]
		if ok {
			delete(byAddr, addrPort(cb))
			be.cfg = cb
		} else {
			if be, err = b.newBackend(s.id, cb, drained); err != nil {
				return errors.Join(err, b.discard(created))
			}
			created = append(created, be)
		}
		backends = append(backends, be)
	}
	if err := b.writeWeights(backends, eff); err != nil {
		return errors.Join(err, b.discard(created))
	}
	if err := b.publishRing(s, eff, backends, positions); err != nil {
		return errors.Join(err, b.discard(created))
	}
	var removed []backend
	for _, be := range s.backends {
		if _, ok := byAddr[addrPort(be.cfg)]; ok {
			removed = append(removed, be)
		}
	}
	s.cfg, s.backends = cs, backends
	// Drained backends are already out of the new ring; mark them so
	// persistence stops choosing them too. Undrained ones are marked only
	// now, but they are in the ring already: marking is no gate for rings.
	var errs []error
	for i := range s.backends {
		be := &s.backends[i]
		if drained := eff.Backends[i].Weight == 0; drained != be.drained {
			if err := b.w.SetBackend(be.id, s.id, addrPort(be.cfg), drained); err != nil {
				errs = append(errs, err)
				continue
			}
			be.drained = drained
		}
	}
	// Only now that no ring names them can the removed backends go.
	return errors.Join(append(errs, b.retire(removed))...)
}

func (b *Balancer) remove(s *service, vipInUse bool) error {
	if err := b.w.DeleteService(s.key, vipInUse); err != nil {
		return err
	}
	delete(b.services, s.key)
	b.retiredServices[s.id] = b.now()
	b.rings.free(s.ring)
	return b.retire(s.backends)
}

// publishRing lays the ring of backends out at positions and, if it differs
// from the service's current one, writes it to a fresh slice and then
// points the service at it in one write. The old slice is freed only then;
// on failure the service keeps its old ring.
func (b *Balancer) publishRing(s *service, eff config.Service, backends []backend, positions []int) error {
	ids := make([]uint32, len(positions))
	for i, p := range positions {
		ids[i] = backends[p].id
	}
	want := datapath.Service{
		ID: s.id, Ring: s.ring, Index: index(eff.Scheduler),
		Persist: eff.Persistence, PersistBits: eff.PersistenceNetmask,
		TOA: eff.ClientAddress == config.ClientAddressTOA, Forwarding: forwarding(eff.Forwarding),
		NAT64: eff.NAT64(),
	}
	if s.ringIDs != nil && slices.Equal(ids, s.ringIDs) {
		if want == s.written {
			return nil
		}
		if err := b.w.SetService(s.key, want); err != nil {
			return err
		}
		s.written = want
		return nil
	}
	var ring datapath.Ring
	if len(ids) > 0 {
		var err error
		if ring, err = b.rings.alloc(uint32(len(ids))); err != nil {
			return err
		}
		if err := b.w.WriteRing(ring.Offset, ids); err != nil {
			b.rings.free(ring)
			return err
		}
	}
	want.Ring = ring
	if err := b.w.SetService(s.key, want); err != nil {
		b.rings.free(ring)
		return err
	}
	b.rings.free(s.ring)
	s.ring, s.ringIDs, s.written = ring, ids, want
	return nil
}

func (b *Balancer) newBackend(svcID uint32, cb config.Backend, drained bool) (backend, error) {
	id, err := b.backendIDs.alloc()
	if err != nil {
		return backend{}, fmt.Errorf("backend %s: id: %w", addrPort(cb), err)
	}
	if err := b.w.ResetBackendTraffic(id); err != nil {
		b.backendIDs.free(id)
		return backend{}, err
	}
	if err := b.w.SetBackend(id, svcID, addrPort(cb), drained); err != nil {
		b.backendIDs.free(id)
		return backend{}, err
	}
	return backend{cfg: cb, id: id, drained: drained}, nil
}

// discard frees the ids of backends written for a change that failed:
// no ring named them, so no connection carries them.
func (b *Balancer) discard(bes []backend) error {
	var errs []error
	for _, be := range bes {
		b.backendIDs.free(be.id)
		if err := b.w.ClearBackend(be.id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// retire clears backends no ring names any more, so no new connection and
// no persistence entry chooses them, and keeps their ids out of use while
// their connections may still carry them.
func (b *Balancer) retire(bes []backend) error {
	var errs []error
	now := b.now()
	for _, be := range bes {
		b.retired[be.id] = now
		if err := b.w.ClearBackend(be.id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func keyLess(a, b ident.Service) bool {
	if c := a.VIP.Compare(b.VIP); c != 0 {
		return c < 0
	}
	if a.Port != b.Port {
		return a.Port < b.Port
	}
	return a.Proto < b.Proto
}

func addrPort(b config.Backend) netip.AddrPort { return netip.AddrPortFrom(b.Address, b.Port) }

// ServiceInfo describes one applied service, for listings and counters.
type ServiceInfo struct {
	Name      string
	Key       ident.Service
	ID        uint32
	Scheduler string
	Backends  []BackendInfo
}

// BackendInfo describes one backend of an applied service.
type BackendInfo struct {
	Addr   netip.AddrPort
	Weight uint32
	ID     uint32
}

// Services lists the applied services ordered by VIP, port and protocol.
func (b *Balancer) Services() []ServiceInfo {
	out := make([]ServiceInfo, 0, len(b.services))
	for _, s := range b.services {
		si := ServiceInfo{Name: s.cfg.Name, Key: s.key, ID: s.id, Scheduler: s.cfg.Scheduler}
		for _, be := range s.backends {
			si.Backends = append(si.Backends, BackendInfo{Addr: addrPort(be.cfg), Weight: be.cfg.Weight, ID: be.id})
		}
		out = append(out, si)
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].Key, out[j].Key) })
	return out
}
