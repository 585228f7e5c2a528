package connsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Op is what a record says about a connection.
type Op uint8

const (
	OpUpsert Op = 1 // the connection exists in these states
	OpDelete Op = 2 // the connection ended; forget it
)

// Record is one connection as every node names it: by addresses, never by
// per-daemon ids, so that any node can adopt it.
type Record struct {
	Op       Op
	Proto    uint8 // IANA protocol number: 6 TCP, 17 UDP
	FwdState uint8 // client half's state (datapath ct_state value); 0: unknown/unchanged
	RevState uint8 // backend half's state; 0: unknown/unchanged
	Origin   uint8 // node id that opened the connection
	// Age is the time since the connection's last packet. It travels in
	// whole milliseconds and saturates at 2^32-1 ms (about 49.7 days).
	Age time.Duration
	// The four addresses are all IPv4 or all IPv6, without zones.
	Client, VIP, Local, Backend netip.AddrPort
}

const (
	recordLen4 = 36
	recordLen6 = 84

	recFlagIPv6 = 1 << 0
)

// is6 tells which record layout r takes; validate has checked that all
// four addresses agree.
func (r *Record) is6() bool { return !r.Client.Addr().Is4() }

func (r *Record) size() int {
	if r.is6() {
		return recordLen6
	}
	return recordLen4
}

// validate reports why r cannot be put on the wire, or nil.
func (r *Record) validate() error {
	if r.Op != OpUpsert && r.Op != OpDelete {
		return fmt.Errorf("unknown op %d", r.Op)
	}
	is4 := r.Client.Addr().Is4()
	for _, a := range [...]struct {
		name string
		ap   netip.AddrPort
	}{{"client", r.Client}, {"vip", r.VIP}, {"local", r.Local}, {"backend", r.Backend}} {
		switch {
		case !a.ap.Addr().IsValid():
			return fmt.Errorf("%s: no address", a.name)
		case a.ap.Addr().Zone() != "":
			return fmt.Errorf("%s: %s has a zone", a.name, a.ap.Addr())
		case a.ap.Addr().Is4() != is4:
			return errors.New("addresses mix IPv4 and IPv6")
		case a.ap.Port() == 0 && a.name != "local":
			return fmt.Errorf("%s: port 0", a.name)
		}
	}
	return nil
}

// appendRecord appends the wire form of r, which must be valid, to b.
func appendRecord(b []byte, r *Record) []byte {
	var flags byte
	if r.is6() {
		flags = recFlagIPv6
	}
	b = append(b, byte(r.Op), r.Proto, r.FwdState, r.RevState, flags, r.Origin, 0, 0)
	b = binary.BigEndian.AppendUint32(b, ageMillis(r.Age))
	for _, ap := range [...]netip.AddrPort{r.Client, r.VIP, r.Local, r.Backend} {
		if flags&recFlagIPv6 != 0 {
			a := ap.Addr().As16()
			b = append(b, a[:]...)
		} else {
			a := ap.Addr().As4()
			b = append(b, a[:]...)
		}
		b = binary.BigEndian.AppendUint16(b, ap.Port())
	}
	return b
}

func ageMillis(d time.Duration) uint32 {
	ms := d.Milliseconds()
	switch {
	case ms < 0:
		return 0
	case ms > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(ms)
}

// decodeRecords appends the count records of payload p to dst. It rejects
// anything appendRecord would not have written, so that decoding then
// encoding gives back the same bytes.
func decodeRecords(dst []Record, p []byte, count int) ([]Record, error) {
	var v6 bool
	switch {
	case len(p) == count*recordLen4:
	case len(p) == count*recordLen6:
		v6 = true
	default:
		return dst, fmt.Errorf("%d records do not fill %d bytes", count, len(p))
	}
	size := len(p) / max(count, 1)
	for i := range count {
		r, err := decodeRecord(p[i*size:(i+1)*size], v6)
		if err != nil {
			return dst, fmt.Errorf("record %d: %w", i, err)
		}
		dst = append(dst, r)
	}
	return dst, nil
}

func decodeRecord(b []byte, v6 bool) (Record, error) {
	r := Record{
		Op:       Op(b[0]),
		Proto:    b[1],
		FwdState: b[2],
		RevState: b[3],
		Origin:   b[5],
		Age:      time.Duration(binary.BigEndian.Uint32(b[8:])) * time.Millisecond,
	}
	switch flags := b[4]; {
	case flags&^recFlagIPv6 != 0:
		return Record{}, fmt.Errorf("unknown flags %#x", flags)
	case (flags&recFlagIPv6 != 0) != v6:
		return Record{}, errors.New("address families differ between records")
	case b[6] != 0 || b[7] != 0:
		return Record{}, errors.New("pad is not 0")
	}
	addrs := [...]*netip.AddrPort{&r.Client, &r.VIP, &r.Local, &r.Backend}
	b = b[12:]
	for _, ap := range addrs {
		var a netip.Addr
		if v6 {
			a = netip.AddrFrom16([16]byte(b[:16]))
			b = b[16:]
		} else {
			a = netip.AddrFrom4([4]byte(b[:4]))
			b = b[4:]
		}
		*ap = netip.AddrPortFrom(a, binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if err := r.validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}
