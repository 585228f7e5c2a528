package connsync

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/ha"
)

// deltaMessage encodes recs as a DELTA datagram, less the mac.
func deltaMessage(recs ...Record) []byte {
	b := make([]byte, headerLen)
	for i := range recs {
		b = appendRecord(b, &recs[i])
	}
	header{typ: typeDelta, node: 1, cluster: testCluster, count: uint16(len(recs)), epoch: 1, seq: 1,
		length: uint16(len(b) - headerLen)}.put(b)
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	v4, v6 := rec4(12345), rec6(7)
	del := v4
	del.Op, del.FwdState, del.RevState = OpDelete, 0, 0
	old := v4
	old.Age = 60 * 24 * time.Hour
	oldWant := v4
	oldWant.Age = math.MaxUint32 * time.Millisecond
	fine := v4
	fine.Age = 1500*time.Microsecond + 999
	fineWant := v4
	fineWant.Age = time.Millisecond
	neg := v4
	neg.Age = -time.Second
	negWant := v4
	negWant.Age = 0
	mapped := v6
	mapped.Client = netip.MustParseAddrPort("[::ffff:10.0.0.1]:1234")

	for _, tc := range []struct {
		name string
		in   Record
		want Record
		size int
	}{
		{"ipv4", v4, v4, recordLen4},
		{"ipv6", v6, v6, recordLen6},
		{"delete", del, del, recordLen4},
		{"age saturates at 2^32-1 ms", old, oldWant, recordLen4},
		{"age in whole ms", fine, fineWant, recordLen4},
		{"negative age is 0", neg, negWant, recordLen4},
		{"v4-mapped IPv6 stays IPv6", mapped, mapped, recordLen6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.in.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			msg := deltaMessage(tc.in, tc.in)
			if got := len(msg) - headerLen; got != 2*tc.size {
				t.Errorf("two records take %d bytes, want %d", got, 2*tc.size)
			}
			m, err := parseMessage(msg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.recs) != 2 || m.recs[0] != tc.want || m.recs[1] != tc.want {
				t.Errorf("got %+v\nwant %+v", m.recs, tc.want)
			}
		})
	}
}

func TestRecordValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Record)
		want   string
	}{
		{"unknown op", func(r *Record) { r.Op = 3 }, "unknown op"},
		{"no op", func(r *Record) { r.Op = 0 }, "unknown op"},
		{"mixed families", func(r *Record) { r.Backend = netip.MustParseAddrPort("[2001:db8::1]:80") }, "mix"},
		{"no local address", func(r *Record) { r.Local = netip.AddrPort{} }, "local: no address"},
		{"zone", func(r *Record) {
			*r = rec6(1)
			r.VIP = netip.AddrPortFrom(r.VIP.Addr().WithZone("eth0"), 53)
		}, "zone"},
		{"client port 0", func(r *Record) { r.Client = netip.AddrPortFrom(r.Client.Addr(), 0) }, "client: port 0"},
		{"vip port 0", func(r *Record) { r.VIP = netip.AddrPortFrom(r.VIP.Addr(), 0) }, "vip: port 0"},
		{"backend port 0", func(r *Record) { r.Backend = netip.AddrPortFrom(r.Backend.Addr(), 0) }, "backend: port 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rec4(1)
			tc.change(&r)
			err := r.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("validate: %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := deltaMessage(rec4(1), rec4(2))
	// edit returns a copy of good changed by f.
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	const rec1 = headerLen // first record
	const rec2 = headerLen + recordLen4

	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short header", good[:headerLen-1], "truncated"},
		{"truncated payload", edit(func(b []byte) []byte {
			b = b[:len(b)-1]
			b[21]-- // keep the length field honest: the count is what disagrees
			return b
		}), "do not fill"},
		{"payload length disagrees", good[:len(good)-1], "payload length"},
		{"count disagrees", edit(func(b []byte) []byte { b[11] = 3; return b }), "do not fill"},
		{"count 0 with records", edit(func(b []byte) []byte { b[11] = 0; return b }), "do not fill"},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'Y'; return b }), "magic"},
		{"version 2", edit(func(b []byte) []byte { b[4] = 2; return b }), "version"},
		{"unknown type", edit(func(b []byte) []byte { b[5] = 9; return b }), "unknown type"},
		{"header flags", edit(func(b []byte) []byte { b[6] = 1; return b }), "flags"},
		{"node id 0", edit(func(b []byte) []byte { b[7] = 0; return b }), "node id 0"},
		{"reserved", edit(func(b []byte) []byte { b[23] = 1; return b }), "reserved"},
		{"unknown op", edit(func(b []byte) []byte { b[rec2] = 7; return b }), "record 1: unknown op"},
		{"mixed families", edit(func(b []byte) []byte { b[rec2+4] = recFlagIPv6; return b }), "families"},
		{"unknown record flags", edit(func(b []byte) []byte { b[rec1+4] = 0x80; return b }), "unknown flags"},
		{"pad", edit(func(b []byte) []byte { b[rec1+7] = 1; return b }), "pad"},
		{"client port 0", edit(func(b []byte) []byte { b[rec1+16], b[rec1+17] = 0, 0; return b }), "client: port 0"},
		{"vip port 0", edit(func(b []byte) []byte { b[rec1+22], b[rec1+23] = 0, 0; return b }), "vip: port 0"},
		{"backend port 0", edit(func(b []byte) []byte { b[rec1+34], b[rec1+35] = 0, 0; return b }), "backend: port 0"},
		{"records in a heartbeat", edit(func(b []byte) []byte { b[5] = byte(typeHeartbeat); return b }), "carries no records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMessage(tc.msg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseMessage: %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestHeartbeatRoundTrip(t *testing.T) {
	for _, hb := range []Heartbeat{
		{},
		{Priority: 200, Role: ha.RoleMaster, Ready: true, AdvertInterval: time.Second},
		{Priority: 1, Role: ha.RoleFault, AdvertInterval: 65535 * time.Millisecond},
	} {
		got, err := decodeHeartbeat(appendHeartbeat(nil, hb))
		if err != nil || got != hb {
			t.Errorf("round trip of %+v: %+v, %v", hb, got, err)
		}
	}
	long := Heartbeat{AdvertInterval: time.Hour}
	if got, _ := decodeHeartbeat(appendHeartbeat(nil, long)); got.AdvertInterval != 65535*time.Millisecond {
		t.Errorf("an hour's advert interval arrives as %s, want it saturated at 65.535s", got.AdvertInterval)
	}
	for _, bad := range [][]byte{
		{1, 4, 0, 0, 0, 0, 0, 0}, // role
		{1, 1, 2, 0, 0, 0, 0, 0}, // ready
		{1, 1, 1, 1, 0, 0, 0, 0}, // pad
		{1, 1, 1, 0, 0, 0, 0, 1}, // reserved
		{1, 1, 1, 0, 0, 0, 0},    // short
	} {
		if _, err := decodeHeartbeat(bad); err == nil {
			t.Errorf("decodeHeartbeat(%v) accepted it", bad)
		}
	}
}
