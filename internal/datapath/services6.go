package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/ident"
)

// service6Wire is the datapath's form of an IPv6 service key.
func service6Wire(k ident.Service) (xdplbSvc6Key, error) {
	vip, err := addr6(k.VIP)
	if err != nil {
		return xdplbSvc6Key{}, fmt.Errorf("service %s: %w", k, err)
	}
	return xdplbSvc6Key{Vip: vip, Port: be16(k.Port), Proto: uint8(k.Proto)}, nil
}

// setService6 is SetService's IPv6 half: the service's own maps, and the
// per-id ones both families share.
func (d *Datapath) setService6(key ident.Service, svc Service) error {
	if svc.TOA || svc.Forwarding != FullNAT {
		return fmt.Errorf("service %s: an IPv6 service is Full-NAT without TOA", key)
	}
	k, err := service6Wire(key)
	if err != nil {
		return err
	}
	if err := d.objs.Vips6.Update(k.Vip, uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write VIP %s: %w", key.VIP, err)
	}
	if err := d.addToVIPFilter(fold6(k.Vip)); err != nil {
		return err
	}
	if err := d.objs.Persist6Masks.Update(svc.ID, persistMask6(svc.PersistBits), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write the persistence netmask of service %s: %w", key, err)
	}
	if err := d.writeServiceModes(key, svc); err != nil {
		return err
	}
	nat64 := uint32(0)
	if svc.NAT64 {
		nat64 = 1
	}
	if err := d.objs.SvcNat64.Update(svc.ID, nat64, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write the backends' family of service %s: %w", key, err)
	}
	if err := d.objs.Services6.Update(k, serviceValue(svc), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write service %s: %w", key, err)
	}
	return nil
}

func (d *Datapath) deleteService6(key ident.Service, vipInUse bool) error {
	k, err := service6Wire(key)
	if err != nil {
		return err
	}
	if err := d.objs.Services6.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete service %s: %w", key, err)
	}
	if vipInUse {
		return nil
	}
	if err := d.objs.Vips6.Delete(k.Vip); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete VIP %s: %w", key.VIP, err)
	}
	return d.rebuildVIPFilter()
}

// services6 adds the IPv6 services to out.
func (d *Datapath) services6(out map[ident.Service]Service) error {
	var k xdplbSvc6Key
	var v xdplbSvcValue
	it := d.objs.Services6.Iterate()
	for it.Next(&k, &v) {
		key := ident.Service{VIP: addrFromAddr6(k.Vip), Port: portFromBE16(k.Port), Proto: ident.Protocol(k.Proto)}
		var mask xdplbAddr6
		if err := d.objs.Persist6Masks.Lookup(v.Id, &mask); err != nil {
			return fmt.Errorf("read the persistence netmask of service %s: %w", key, err)
		}
		var nat64 uint32
		if err := d.objs.SvcNat64.Lookup(v.Id, &nat64); err != nil {
			return fmt.Errorf("read the backends' family of service %s: %w", key, err)
		}
		out[key] = Service{
			ID: v.Id, Ring: Ring{Offset: v.RingOff, Len: v.RingLen},
			Index: Index(v.Sched), Persist: time.Duration(v.PersistSecs) * time.Second, PersistBits: maskBits6(mask),
			NAT64: nat64 != 0,
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list IPv6 services: %w", err)
	}
	return nil
}

// persistMask6 is the netmask of an IPv6 prefix length as the datapath
// applies it; 0 (and 128) is the whole address.
func persistMask6(bits uint8) xdplbAddr6 {
	if bits == 0 || bits >= 128 {
		return xdplbAddr6{}
	}
	var b [16]byte
	for i := range bits {
		b[i/8] |= 0x80 >> (i % 8)
	}
	m, _ := addr6(netip.AddrFrom16(b))
	return m
}

// maskBits6 is the prefix length of a mask persistMask6 made.
func maskBits6(mask xdplbAddr6) uint8 {
	var n uint8
	for _, b := range addrFromAddr6(mask).As16() {
		for ; b&0x80 != 0; b <<= 1 {
			n++
		}
	}
	return n
}
