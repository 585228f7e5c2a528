package decap

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/testbed"
)

const (
	xdpDrop = 1
	xdpPass = 2

	testGUEPort = 6080
)

var (
	balancer = netip.MustParseAddr("192.0.2.1")
	stranger = netip.MustParseAddr("192.0.2.66")
	backend  = netip.MustParseAddr("192.0.2.10")
	client   = netip.MustParseAddrPort("198.51.100.7:40000")
	vip      = netip.MustParseAddrPort("203.0.113.80:80")
)

// loadProgram loads the decapsulator, unpinned, with balancer as its one
// allowed source, and closes it when the test ends.
func loadProgram(t *testing.T) *decapObjects {
	t.Helper()
	testbed.RequirePrivileges(t)
	var objs decapObjects
	if err := loadDecapObjects(&objs, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	if err := syncSources(objs.DecapSources, []netip.Addr{balancer}); err != nil {
		t.Fatal(err)
	}
	return &objs
}

// run passes frame through the program once and returns the verdict and
// the frame as the program left it.
func run(t *testing.T, prog *ebpf.Program, frame []byte) (uint32, []byte) {
	t.Helper()
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	verdict, err := prog.Run(&opts)
	if err != nil {
		t.Fatal(err)
	}
	return verdict, opts.DataOut
}

// TestProgram passes frames through the program and checks the verdict,
// the frame it leaves byte for byte, and the counter each one moves.
func TestProgram(t *testing.T) {
	objs := loadProgram(t)
	inner := packet{src: client, dst: vip, tcp: true}.bytes(t)
	udpInner := packet{src: client, dst: vip, payload: []byte("hello")}.bytes(t)
	lastHop := packet{src: client, dst: vip, ttl: 1}.bytes(t)
	withIHL := func(b []byte, ihl byte) []byte {
		b = bytes.Clone(b)
		b[0] = 0x40 | ihl
		return b
	}
	withTotLen := func(b []byte, n uint16) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint16(b[2:], n)
		return b
	}
	from := func(src netip.Addr, tun tunnel, in []byte) frame {
		return frame{tunnel: tun, src: src, dst: backend, udpPort: testGUEPort, inner: in}
	}
	tagged := func(f frame, vlan uint16, qinq bool) frame {
		f.vlan, f.qinq = vlan, qinq
		return f
	}
	toPort := func(f frame, port uint16) frame {
		f.udpPort = port
		return f
	}
	for _, tc := range []struct {
		name    string
		f       frame
		noGUE   bool // gue_port is 0
		verdict uint32
		// decap says the frame leaves decapsulated; else untouched.
		decap   bool
		counter decapDecapCounter
	}{
		{"IPIP", from(balancer, ipip, inner), false, xdpPass, true, decapDecapCounterDECAP_PASS_INNER},
		{"GUE", from(balancer, gue, inner), false, xdpPass, true, decapDecapCounterDECAP_PASS_INNER},
		{"GUE, a UDP datagram inside", from(balancer, gue, udpInner), false, xdpPass, true, decapDecapCounterDECAP_PASS_INNER},
		{"GUE, 802.1Q tag", tagged(from(balancer, gue, inner), 100, false), false, xdpPass, true, decapDecapCounterDECAP_PASS_INNER},
		{"IPIP, 802.1AD tag", tagged(from(balancer, ipip, inner), 7, true), false, xdpPass, true, decapDecapCounterDECAP_PASS_INNER},
		{"IPIP, inner TTL 1 left alone", from(balancer, ipip, lastHop), false, xdpPass, true, decapDecapCounterDECAP_PASS_INNER},
		// Bytes after the inner packet stay; the stack trims them.
		{"IPIP, bytes after the inner packet", from(balancer, ipip, append(bytes.Clone(inner), 0, 0, 0, 0, 0, 0)), false, xdpPass, true, decapDecapCounterDECAP_PASS_INNER},

		{"IPIP from a source not allowed", from(stranger, ipip, inner), false, xdpDrop, false, decapDecapCounterDECAP_DROP_SOURCE},
		{"GUE from a source not allowed", from(stranger, gue, inner), false, xdpDrop, false, decapDecapCounterDECAP_DROP_SOURCE},
		{"GUE, tagged, from a source not allowed", tagged(from(stranger, gue, inner), 100, false), false, xdpDrop, false, decapDecapCounterDECAP_DROP_SOURCE},

		{"GUE, IPv6 inside", from(balancer, gue, ipv6Packet(t)), false, xdpDrop, false, decapDecapCounterDECAP_DROP_MALFORMED},
		{"GUE variant 0: a GUE header first", from(balancer, gue, append([]byte{0, 4, 0, 0}, inner...)), false, xdpDrop, false, decapDecapCounterDECAP_DROP_MALFORMED},
		{"IPIP, inner packet truncated", from(balancer, ipip, inner[:len(inner)-1]), false, xdpDrop, false, decapDecapCounterDECAP_DROP_MALFORMED},
		{"IPIP, inner header cut short", from(balancer, ipip, inner[:12]), false, xdpDrop, false, decapDecapCounterDECAP_DROP_MALFORMED},
		{"IPIP, nothing inside", from(balancer, ipip, nil), false, xdpDrop, false, decapDecapCounterDECAP_DROP_MALFORMED},
		{"IPIP, inner IHL 4", from(balancer, ipip, withIHL(inner, 4)), false, xdpDrop, false, decapDecapCounterDECAP_DROP_MALFORMED},
		{"IPIP, inner total length shorter than its header", from(balancer, ipip, withTotLen(inner, 16)), false, xdpDrop, false, decapDecapCounterDECAP_DROP_MALFORMED},
		{"GUE, 802.1Q tag, inner packet truncated", tagged(from(balancer, gue, inner[:30]), 100, false), false, xdpDrop, false, decapDecapCounterDECAP_DROP_MALFORMED},

		{"UDP to another port", toPort(from(balancer, gue, inner), testGUEPort+1), false, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
		{"UDP to the port, GUE off", from(balancer, gue, inner), true, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
		{"UDP to port 0, GUE off", toPort(from(balancer, gue, inner), 0), true, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
		{"IPIP, outer options", frame{tunnel: ipip, src: balancer, dst: backend, options: true, inner: inner}, false, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
		{"IPIP, outer fragment", frame{tunnel: ipip, src: balancer, dst: backend, fragment: true, inner: inner}, false, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
		{"plain TCP", frame{inner: inner}, false, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
		{"plain TCP, 802.1Q tag", frame{vlan: 100, inner: inner}, false, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
		{"IPv6", frame{etherType: 0x86dd, inner: ipv6Packet(t)}, false, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
		{"802.1Q tag cut short", frame{vlan: 100, cut: 16}, false, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
		{"outer IPv4 header cut short", frame{inner: from(balancer, ipip, inner).bytes(t)[14:30]}, false, xdpPass, false, decapDecapCounterDECAP_PASS_NOT_TUNNEL},
	} {
		port := uint32(testGUEPort)
		if tc.noGUE {
			port = 0
		}
		if err := objs.GuePort.Set(port); err != nil {
			t.Fatal(err)
		}
		in := tc.f.bytes(t)
		before := countersOf(objs.DecapStats)
		verdict, out := run(t, objs.XdplbDecap, in)
		want := in
		if tc.decap {
			want = tc.f.decapsulated()
		}
		if verdict != tc.verdict || !bytes.Equal(out, want) {
			t.Errorf("%s: verdict %d, frame\n%x\nwant %d,\n%x", tc.name, verdict, out, tc.verdict, want)
		}
		if diff := diffCounters(before, countersOf(objs.DecapStats)); diff != tc.counter {
			t.Errorf("%s: counted %v; want %v", tc.name, diff, tc.counter)
		}
	}
}

// diffCounters names the one counter that moved by one from before to
// after, or returns DECAP_COUNTERS if that is not what happened.
func diffCounters(before, after Counters) decapDecapCounter {
	moved := decapDecapCounterDECAP_COUNTERS
	for c, d := range map[decapDecapCounter]uint64{
		decapDecapCounterDECAP_PASS_INNER:      after.Decapsulated - before.Decapsulated,
		decapDecapCounterDECAP_DROP_SOURCE:     after.DroppedSource - before.DroppedSource,
		decapDecapCounterDECAP_DROP_MALFORMED:  after.DroppedMalformed - before.DroppedMalformed,
		decapDecapCounterDECAP_PASS_NOT_TUNNEL: after.NotTunnel - before.NotTunnel,
	} {
		switch {
		case d == 0:
		case d == 1 && moved == decapDecapCounterDECAP_COUNTERS:
			moved = c
		default:
			return decapDecapCounterDECAP_COUNTERS
		}
	}
	return moved
}

// TestAllowList: the program takes a source once it is added and refuses
// it once it is removed, and syncSources leaves exactly the list given.
func TestAllowList(t *testing.T) {
	objs := loadProgram(t)
	if err := objs.GuePort.Set(uint32(testGUEPort)); err != nil {
		t.Fatal(err)
	}
	f := frame{tunnel: gue, src: stranger, dst: backend, udpPort: testGUEPort, inner: packet{src: client, dst: vip}.bytes(t)}
	verdictFor := func() uint32 {
		v, _ := run(t, objs.XdplbDecap, f.bytes(t))
		return v
	}
	if v := verdictFor(); v != xdpDrop {
		t.Fatalf("before: verdict %d; want drop", v)
	}
	if err := syncSources(objs.DecapSources, []netip.Addr{stranger}); err != nil {
		t.Fatal(err)
	}
	if v := verdictFor(); v != xdpPass {
		t.Errorf("allowed: verdict %d; want pass", v)
	}
	if err := syncSources(objs.DecapSources, []netip.Addr{balancer}); err != nil {
		t.Fatal(err)
	}
	if v := verdictFor(); v != xdpDrop {
		t.Errorf("removed again: verdict %d; want drop", v)
	}

	// A full list replaced by another full one: the old go out first.
	many := func(first byte) []netip.Addr {
		var out []netip.Addr
		for i := range MaxSources {
			out = append(out, netip.AddrFrom4([4]byte{10, first, byte(i >> 8), byte(i)}))
		}
		return out
	}
	for _, list := range [][]netip.Addr{many(1), many(2)} {
		if err := syncSources(objs.DecapSources, list); err != nil {
			t.Fatal(err)
		}
		var (
			key   [4]byte
			value uint32
			n     int
		)
		it := objs.DecapSources.Iterate()
		for it.Next(&key, &value) {
			if key[1] != list[0].As4()[1] {
				t.Fatalf("%s left in the list", netip.AddrFrom4(key))
			}
			n++
		}
		if n != MaxSources {
			t.Errorf("%d sources; want %d", n, MaxSources)
		}
	}
}

// model is decap_frame's contract, written again plainly: the verdict,
// the frame the program leaves and the counter it moves, for a program
// that allows the sources in allowed and takes GUE on port (0: none).
func model(in []byte, allowed netip.Addr, port uint16) (uint32, []byte, decapDecapCounter) {
	notTunnel := func() (uint32, []byte, decapDecapCounter) {
		return xdpPass, in, decapDecapCounterDECAP_PASS_NOT_TUNNEL
	}
	malformed := func() (uint32, []byte, decapDecapCounter) {
		return xdpDrop, in, decapDecapCounterDECAP_DROP_MALFORMED
	}
	be16 := func(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
	l2 := 14
	etherType := be16(in[12:])
	if etherType == 0x8100 || etherType == 0x88a8 {
		if len(in) < 18 {
			return notTunnel()
		}
		etherType, l2 = be16(in[16:]), 18
	}
	if etherType != 0x0800 || len(in) < l2+20 {
		return notTunnel()
	}
	outer := in[l2:]
	if outer[0] != 0x45 || be16(outer[6:])&0x3fff != 0 {
		return notTunnel()
	}
	var outerLen int
	switch {
	case outer[9] == 4:
		outerLen = 20
	case outer[9] == 17 && port != 0:
		if len(outer) < 28 || be16(outer[22:]) != port {
			return notTunnel()
		}
		outerLen = 28
	default:
		return notTunnel()
	}
	if netip.AddrFrom4([4]byte(outer[12:16])) != allowed {
		return xdpDrop, in, decapDecapCounterDECAP_DROP_SOURCE
	}
	inner := outer[outerLen:]
	if len(inner) < 20 || inner[0]>>4 != 4 || inner[0]&0xf < 5 {
		return malformed()
	}
	if n := int(be16(inner[2:])); n < int(inner[0]&0xf)*4 || n > len(inner) {
		return malformed()
	}
	return xdpPass, append(bytes.Clone(in[:l2]), inner...), decapDecapCounterDECAP_PASS_INNER
}

// FuzzProgram: on any frame, the program does what model says.
func FuzzProgram(f *testing.F) {
	testbed.RequirePrivileges(f)
	var objs decapObjects
	if err := loadDecapObjects(&objs, nil); err != nil {
		f.Fatal(err)
	}
	defer objs.Close()
	if err := syncSources(objs.DecapSources, []netip.Addr{balancer}); err != nil {
		f.Fatal(err)
	}
	inner := packet{src: client, dst: vip, payload: []byte("seed")}.bytes(f)
	for _, fr := range []frame{
		{tunnel: ipip, src: balancer, dst: backend, inner: inner},
		{tunnel: gue, src: balancer, dst: backend, udpPort: testGUEPort, inner: inner},
		{tunnel: gue, src: balancer, dst: backend, udpPort: testGUEPort, inner: inner, vlan: 3},
		{tunnel: ipip, src: stranger, dst: backend, inner: inner},
		{tunnel: ipip, src: balancer, dst: backend, inner: inner[:25]},
		{inner: inner},
	} {
		f.Add(fr.bytes(f), true)
		f.Add(fr.bytes(f), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, withGUE bool) {
		// What BPF_PROG_TEST_RUN takes for XDP.
		if len(in) < 14 || len(in) > 1500 {
			t.Skip()
		}
		port := uint16(0)
		if withGUE {
			port = testGUEPort
		}
		if err := objs.GuePort.Set(uint32(port)); err != nil {
			t.Fatal(err)
		}
		before := countersOf(objs.DecapStats)
		verdict, out := run(t, objs.XdplbDecap, bytes.Clone(in))
		wantVerdict, wantOut, wantCounter := model(in, balancer, port)
		if verdict != wantVerdict || !bytes.Equal(out, wantOut) {
			t.Errorf("frame %x:\nverdict %d, left %x\nwant %d, %x", in, verdict, out, wantVerdict, wantOut)
		}
		if c := diffCounters(before, countersOf(objs.DecapStats)); c != wantCounter {
			t.Errorf("frame %x: counted %v; want %v", in, c, wantCounter)
		}
	})
}
