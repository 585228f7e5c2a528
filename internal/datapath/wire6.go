package datapath

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// addr6 is an IPv6 address as the datapath keeps it: its bytes in network
// order, held in four words stored in host order.
func addr6(a netip.Addr) (xdplbAddr6, error) {
	if !a.Is6() || a.Is4In6() {
		return xdplbAddr6{}, fmt.Errorf("%s is not an IPv6 address", a)
	}
	b := a.As16()
	var w xdplbAddr6
	for i := range w.W {
		w.W[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return w, nil
}

func addrFromAddr6(w xdplbAddr6) netip.Addr {
	var b [16]byte
	for i, v := range w.W {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return netip.AddrFrom16(b)
}

func (k FlowKey) wire6() (xdplbCt6Key, error) {
	s, err := addr6(k.Src.Addr())
	if err != nil {
		return xdplbCt6Key{}, err
	}
	d, err := addr6(k.Dst.Addr())
	if err != nil {
		return xdplbCt6Key{}, err
	}
	return xdplbCt6Key{Saddr: s, Daddr: d, Sport: be16(k.Src.Port()), Dport: be16(k.Dst.Port()), Proto: k.Proto}, nil
}

func flowKeyFromWire6(k xdplbCt6Key) FlowKey {
	return FlowKey{
		Src:   netip.AddrPortFrom(addrFromAddr6(k.Saddr), portFromBE16(k.Sport)),
		Dst:   netip.AddrPortFrom(addrFromAddr6(k.Daddr), portFromBE16(k.Dport)),
		Proto: k.Proto,
	}
}

// splitFamilies parts keys into IPv4 and IPv6 connections (by the
// source, as the datapath has no connection across families).
func splitFamilies(keys []FlowKey) (v4, v6 []FlowKey) {
	for _, k := range keys {
		if k.Src.Addr().Is4() {
			v4 = append(v4, k)
		} else {
			v6 = append(v6, k)
		}
	}
	return v4, v6
}
