package datapath

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/ident"
)

// Protocol numbers as the conntrack keys carry them.
const (
	TCP = uint8(ident.TCP)
	UDP = uint8(ident.UDP)
)

// serviceWire is the datapath's form of a service key.
func serviceWire(k ident.Service) (xdplbSvcKey, error) {
	vip, err := be32(k.VIP)
	if err != nil {
		return xdplbSvcKey{}, fmt.Errorf("service %s: %w", k, err)
	}
	return xdplbSvcKey{Vip: vip, Port: be16(k.Port), Proto: uint8(k.Proto)}, nil
}

// Ring is a slice of the rings array holding one service's backend ids.
type Ring struct {
	Offset uint32
	Len    uint32
}

// Index is how a new connection picks its slot of a service's ring.
type Index uint32

const (
	// IndexCounter: a counter shared by all CPUs (rr, wrr).
	IndexCounter = Index(xdplbSchedKindSCHED_COUNTER)
	// IndexTupleHash: a hash of the client's 5-tuple (maglev).
	IndexTupleHash = Index(xdplbSchedKindSCHED_HASH_TUPLE)
	// IndexSourceHash: a hash of the client's address (sh).
	IndexSourceHash = Index(xdplbSchedKindSCHED_HASH_SRC)
)

// Service is what the datapath holds for a service.
type Service struct {
	ID    uint32
	Ring  Ring
	Index Index
	// Persist, if non-zero, sends a client address back to the backend it
	// last got for this long after its last new connection.
	Persist time.Duration
	// PersistBits, if not 0, is the prefix length of the netmask applied
	// to client addresses for persistence: clients of one subnet then
	// share their backend. 0 and 32 (128 for IPv6) mean the whole
	// address.
	PersistBits uint8
	// TOA puts the client's address and port in a TCP option (kind 254) of
	// the client's packets that acknowledge the backend's SYN-ACK, and
	// lowers the MSS the backend announces to leave room for it.
	TOA bool
	// Forwarding is how packets reach the backends: Full-NAT (the zero
	// value) or one of the DSR modes. A change applies to new connections.
	Forwarding Forwarding
	// NAT64: an IPv6 service whose backends are IPv4 (Full-NAT with the
	// header translated). A change ends the established connections.
	NAT64 bool
}

// SetService makes key reachable: packets to it pick backends from the
// service's ring. The value is replaced in one map write, so packets see
// the old ring or the new one, never a mix.
func (d *Datapath) SetService(key ident.Service, svc Service) error {
	id, ring := svc.ID, svc.Ring
	if id >= MaxServices {
		return fmt.Errorf("service %s: id %d out of range", key, id)
	}
	if uint64(ring.Offset)+uint64(ring.Len) > RingSlots {
		return fmt.Errorf("service %s: ring [%d,+%d) beyond %d slots", key, ring.Offset, ring.Len, RingSlots)
	}
	if svc.Persist < 0 || svc.Persist > math.MaxUint32*time.Second {
		return fmt.Errorf("service %s: persistence %s out of range", key, svc.Persist)
	}
	if svc.PersistBits > uint8(key.VIP.BitLen()) {
		return fmt.Errorf("service %s: persistence netmask /%d out of range", key, svc.PersistBits)
	}
	if key.VIP.Is6() {
		return d.setService6(key, svc)
	}
	k, err := serviceWire(key)
	if err != nil {
		return err
	}
	// The VIP first: if that fails, the service still points at its old
	// ring, which the caller may then keep using.
	if err := d.objs.Vips.Update(k.Vip, uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write VIP %s: %w", key.VIP, err)
	}
	if err := d.addToVIPFilter(k.Vip); err != nil {
		return err
	}
	// The mask and the modes before the service that uses them.
	if err := d.objs.PersistMasks.Update(id, persistMask(svc.PersistBits), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write the persistence netmask of service %s: %w", key, err)
	}
	if err := d.writeServiceModes(key, svc); err != nil {
		return err
	}
	if err := d.objs.Services.Update(k, serviceValue(svc), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write service %s: %w", key, err)
	}
	return nil
}

// writeServiceModes writes the per-id settings of service svc, of either
// family: its client address mode and forwarding mode.
func (d *Datapath) writeServiceModes(key ident.Service, svc Service) error {
	if err := d.objs.SvcClientAddr.Update(svc.ID, clientAddrMode(svc.TOA), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write the client address mode of service %s: %w", key, err)
	}
	if err := d.objs.SvcFwdMode.Update(svc.ID, uint32(svc.Forwarding), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write the forwarding mode of service %s: %w", key, err)
	}
	return nil
}

func serviceValue(svc Service) xdplbSvcValue {
	return xdplbSvcValue{
		Id: svc.ID, RingOff: svc.Ring.Offset, RingLen: svc.Ring.Len,
		Sched: xdplbSchedKind(svc.Index), PersistSecs: uint32(svc.Persist.Round(time.Second) / time.Second),
	}
}

// DeleteService removes key. Established connections keep flowing: they
// are found in conntrack before the service is looked at again.
// vipInUse tells whether another service still uses the same VIP.
func (d *Datapath) DeleteService(key ident.Service, vipInUse bool) error {
	if key.VIP.Is6() {
		return d.deleteService6(key, vipInUse)
	}
	k, err := serviceWire(key)
	if err != nil {
		return err
	}
	if err := d.objs.Services.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete service %s: %w", key, err)
	}
	if vipInUse {
		return nil
	}
	if err := d.objs.Vips.Delete(k.Vip); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete VIP %s: %w", key.VIP, err)
	}
	return d.rebuildVIPFilter()
}

// WriteRing stores backend ids into consecutive ring slots from offset.
func (d *Datapath) WriteRing(offset uint32, ids []uint32) error {
	if uint64(offset)+uint64(len(ids)) > RingSlots {
		return fmt.Errorf("ring write [%d,+%d) beyond %d slots", offset, len(ids), RingSlots)
	}
	if len(ids) == 0 {
		return nil
	}
	keys := make([]uint32, len(ids))
	for i := range ids {
		keys[i] = offset + uint32(i)
	}
	if _, err := d.objs.Rings.BatchUpdate(keys, ids, nil); err != nil {
		return fmt.Errorf("write ring [%d,+%d): %w", offset, len(ids), err)
	}
	return nil
}

// Ports is an inclusive range of local ports.
type Ports struct{ Min, Max uint16 }

func (p Ports) valid() bool { return p.Min != 0 && p.Min <= p.Max }

// SetLocal sets the pool of local source addresses, the port range replies
// are recognised on (ports), and the slice of it new connections take
// their local address:port from (alloc): the nodes of an HA pair each hand
// out their own slice, while each recognises replies on the whole range,
// since it may carry a peer's connections. Alone, alloc is ports.
// Addresses are written before the count that makes them visible. IPv4
// and IPv6 addresses may be mixed: each family has its own table.
func (d *Datapath) SetLocal(addrs []netip.Addr, ports, alloc Ports) error {
	v4, v6 := localFamilies(addrs)
	if len(addrs) == 0 || len(v4) > MaxLocalAddrs || len(v6) > MaxLocalAddrs {
		return fmt.Errorf("local addresses: %d IPv4 and %d IPv6 given, want 1 or more and at most %d of each",
			len(v4), len(v6), MaxLocalAddrs)
	}
	if !ports.valid() || !alloc.valid() || alloc.Min < ports.Min || alloc.Max > ports.Max {
		return fmt.Errorf("local ports %d-%d, handed out %d-%d: not a range and a slice of it",
			ports.Min, ports.Max, alloc.Min, alloc.Max)
	}
	for i, a := range v4 {
		v, _ := be32(a)
		if err := d.objs.LocalAddrs.Update(uint32(i), v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write local address %s: %w", a, err)
		}
	}
	for i, a := range v6 {
		v, err := addr6(a)
		if err != nil {
			return fmt.Errorf("local address: %w", err)
		}
		if err := d.objs.Local6Addrs.Update(uint32(i), v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write local address %s: %w", a, err)
		}
	}
	cfg := xdplbLbConfig{LocalCount: uint32(len(v4)), PortMin: alloc.Min, PortMax: alloc.Max}
	if err := d.objs.Config.Update(uint32(0), cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write datapath config: %w", err)
	}
	if err := d.objs.Config6.Update(uint32(0), xdplbLbConfig6{LocalCount: uint32(len(v6))}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write datapath config: %w", err)
	}
	if err := d.setPoolsLocal(addrs, alloc); err != nil {
		return err
	}
	return d.setPortGlobals(ports.Min, ports.Max)
}

// localFamilies parts local addresses by family, each in its order: a
// family's addresses are indexed among themselves (local_addrs,
// local6_addrs).
func localFamilies(addrs []netip.Addr) (v4, v6 []netip.Addr) {
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6
}

// ServiceKeys lists the services the datapath serves.
func (d *Datapath) ServiceKeys() ([]ident.Service, error) {
	svcs, err := d.Services()
	if err != nil {
		return nil, err
	}
	out := make([]ident.Service, 0, len(svcs))
	for k := range svcs {
		out = append(out, k)
	}
	return out, nil
}

// Services returns the services map as the datapath holds it: for each
// service its id, ring, index rule and persistence. After a restart it is
// what the previous daemon left.
func (d *Datapath) Services() (map[ident.Service]Service, error) {
	out := map[ident.Service]Service{}
	var k xdplbSvcKey
	var v xdplbSvcValue
	it := d.objs.Services.Iterate()
	for it.Next(&k, &v) {
		key := ident.Service{VIP: addrFromBE32(k.Vip), Port: portFromBE16(k.Port), Proto: ident.Protocol(k.Proto)}
		var mask, mode, fwd uint32
		if err := d.objs.PersistMasks.Lookup(v.Id, &mask); err != nil {
			return nil, fmt.Errorf("read the persistence netmask of service %s: %w", key, err)
		}
		if err := d.objs.SvcClientAddr.Lookup(v.Id, &mode); err != nil {
			return nil, fmt.Errorf("read the client address mode of service %s: %w", key, err)
		}
		if err := d.objs.SvcFwdMode.Lookup(v.Id, &fwd); err != nil {
			return nil, fmt.Errorf("read the forwarding mode of service %s: %w", key, err)
		}
		out[key] = Service{
			ID: v.Id, Ring: Ring{Offset: v.RingOff, Len: v.RingLen},
			Index: Index(v.Sched), Persist: time.Duration(v.PersistSecs) * time.Second, PersistBits: maskBits(mask),
			TOA: mode == uint32(xdplbClientAddrModeCLIENT_ADDR_TOA), Forwarding: Forwarding(fwd),
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return out, d.services6(out)
}

// persistMask is the netmask of a prefix length as the datapath applies
// it, in network order; 0 (and 32) is the whole address.
func persistMask(bits uint8) uint32 {
	if bits == 0 || bits >= 32 {
		return 0
	}
	m := ^uint32(0) << (32 - bits)
	b, _ := be32(netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}))
	return b
}

// maskBits is the prefix length of a mask persistMask made.
func maskBits(mask uint32) uint8 {
	if mask == 0 {
		return 0
	}
	a := addrFromBE32(mask).As4()
	return uint8(bits.OnesCount32(uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])))
}
