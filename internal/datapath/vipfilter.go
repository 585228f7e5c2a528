package datapath

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// vipFilterBits mirrors VIP_FILTER_BITS: the size of the datapath's Bloom
// filter of VIPs.
const vipFilterBits = 1 << 16

// vipBit is the filter bit of a VIP (wire order, as the program hashes
// it): the murmur3 finaliser, as bpf/lib/sched.h mix32.
func vipBit(vipBE uint32) uint32 {
	h := vipBE
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h & (vipFilterBits - 1)
}

// fold6 is an IPv6 VIP in one word, as the program folds it for the
// filter (bpf/lib/nat6.h fold6).
func fold6(a xdplbAddr6) uint32 { return a.W[0] ^ a.W[1] ^ a.W[2] ^ a.W[3] }

// addToVIPFilter sets a VIP's bit. It runs before the service is written,
// so the service is never hidden from packets.
func (d *Datapath) addToVIPFilter(vipBE uint32) error {
	var words [vipFilterBits / 64]uint64
	if err := d.objs.VipFilter.Get(&words); err != nil {
		return fmt.Errorf("read VIP filter: %w", err)
	}
	bit := vipBit(vipBE)
	words[bit/64] |= 1 << (bit % 64)
	if err := d.objs.VipFilter.Set(words); err != nil {
		return fmt.Errorf("write VIP filter: %w", err)
	}
	return nil
}

// rebuildVIPFilter recomputes the filter from the VIPs the datapath has,
// dropping the bits of VIPs that are gone. A word whose bits stay is
// rewritten with the same value, so no VIP is ever missing from it.
func (d *Datapath) rebuildVIPFilter() error {
	var words [vipFilterBits / 64]uint64
	var vip, unused uint32
	it := d.objs.Vips.Iterate()
	for it.Next(&vip, &unused) {
		bit := vipBit(vip)
		words[bit/64] |= 1 << (bit % 64)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list VIPs: %w", err)
	}
	var vip6 xdplbAddr6
	it = d.objs.Vips6.Iterate()
	for it.Next(&vip6, &unused) {
		bit := vipBit(fold6(vip6))
		words[bit/64] |= 1 << (bit % 64)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list IPv6 VIPs: %w", err)
	}
	if err := d.objs.VipFilter.Set(words); err != nil {
		return fmt.Errorf("write VIP filter: %w", err)
	}
	return nil
}

// restoreGlobals writes the hot-path globals of a freshly loaded program
// from adopted maps: they live in the program's own memory, which a
// restart does not keep.
func (d *Datapath) restoreGlobals() error {
	var cfg xdplbLbConfig
	if err := d.objs.Config.Lookup(uint32(0), &cfg); err != nil {
		return fmt.Errorf("read datapath config: %w", err)
	}
	if err := d.setPortGlobals(cfg.PortMin, cfg.PortMax); err != nil {
		return err
	}
	return d.rebuildVIPFilter()
}

func (d *Datapath) setPortGlobals(lo, hi uint16) error {
	return setGlobals(
		global{"nat_port_min", d.objs.NatPortMin, uint32(lo)},
		global{"nat_port_max", d.objs.NatPortMax, uint32(hi)},
	)
}

// global is a value for one of the program's global variables.
type global struct {
	name string
	v    *ebpf.Variable
	val  any
}

// setGlobals writes the values in order.
func setGlobals(gs ...global) error {
	for _, g := range gs {
		if err := g.v.Set(g.val); err != nil {
			return fmt.Errorf("write %s: %w", g.name, err)
		}
	}
	return nil
}
