package datapath

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"unsafe"
)

// The datapath keeps addresses and ports in network byte order. The
// generated structs hold them in integer fields that are stored in host
// order, so conversions go through the bytes as they sit in memory.

func be32(a netip.Addr) (uint32, error) {
	if !a.Is4() {
		return 0, fmt.Errorf("%s is not an IPv4 address", a)
	}
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:]), nil
}

func addrFromBE32(v uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func be16(port uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], port)
	return binary.NativeEndian.Uint16(b[:])
}

func portFromBE16(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

// bytesOf is v's memory, for map operations on structs that must not go
// through encoding/binary's reflection: bpf2go lays the generated structs
// out as C does, so their bytes are the map's layout. Used where a
// million of them go by (adopting a peer's connections).
func bytesOf[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}
