package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/ident"
)

var (
	localAddr6 = netip.MustParseAddr("fd00:19::5")
	vip6       = netip.MustParseAddr("fd00:19::10")
	rs1Addr6   = netip.MustParseAddr("fd00:19::2")
	rs2Addr6   = netip.MustParseAddr("fd00:19::3")
	client6    = netip.MustParseAddrPort("[fd00:77::9]:40000")
)

// Ids of the IPv6 services and backends, after the IPv4 fixture's.
const (
	svc6IDBase     = 100
	backend6IDBase = 1000
)

var fixtureServices6 = []testService{
	{key: ident.Service{VIP: vip6, Port: 80, Proto: ident.TCP},
		backends: []netip.AddrPort{netip.AddrPortFrom(rs1Addr6, 80), netip.AddrPortFrom(rs2Addr6, 8080)}},
	{key: ident.Service{VIP: vip6, Port: 53, Proto: ident.UDP}, backends: []netip.AddrPort{netip.AddrPortFrom(rs1Addr6, 5353)}},
	{key: ident.Service{VIP: vip6, Port: 85, Proto: ident.TCP},
		backends: []netip.AddrPort{netip.AddrPortFrom(rs1Addr6, 85), netip.AddrPortFrom(rs2Addr6, 85)}, index: IndexTupleHash},
	{key: ident.Service{VIP: vip6, Port: 87, Proto: ident.TCP},
		backends: []netip.AddrPort{netip.AddrPortFrom(rs1Addr6, 87), netip.AddrPortFrom(rs2Addr6, 87)}, persist: time.Minute},
	// NAT64: IPv4 backends.
	{key: ident.Service{VIP: vip6, Port: 90, Proto: ident.TCP}, backends: []netip.AddrPort{ap("172.19.0.2:80"), ap("172.19.0.3:8080")}},
	{key: ident.Service{VIP: vip6, Port: 91, Proto: ident.UDP}, backends: []netip.AddrPort{ap("172.19.0.2:5353")}},
}

// newFixture6 is the IPv4 fixture with IPv6 on lb0 too: an IPv6 local
// address beside the IPv4 one, the backends' neighbours, and the IPv6
// services above. Its local ports are 10000-10001.
func newFixture6(t testing.TB) *fixture {
	t.Helper()
	return newFixture6With(t, 10000, 10001, 4096)
}

// newFixture6With is newFixture6 with the local ports and the conntrack
// capacity (of each half, both families) given.
func newFixture6With(t testing.TB, portMin, portMax uint16, capacity uint32) *fixture {
	t.Helper()
	f := newFixtureWith(t, portMin, portMax, capacity)
	addIPv6(t, f.nt, "lb0", netip.PrefixFrom(localAddr6, 64), map[netip.Addr][6]byte{
		rs1Addr6: [6]byte(rs1MAC), rs2Addr6: [6]byte(rs2MAC),
	})
	ports := Ports{Min: portMin, Max: portMax}
	if err := f.dp.SetLocal([]netip.Addr{localAddr, localAddr6}, ports, ports); err != nil {
		t.Fatal(err)
	}
	backendID, slot := uint32(backend6IDBase), uint32(backend6IDBase)
	for i, s := range fixtureServices6 {
		ring := Ring{Offset: slot, Len: uint32(len(s.backends))}
		var ids []uint32
		for _, b := range s.backends {
			if err := f.dp.SetBackend(backendID, uint32(svc6IDBase+i), b, false); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, backendID)
			backendID++
		}
		if err := f.dp.WriteRing(slot, ids); err != nil {
			t.Fatal(err)
		}
		slot += uint32(len(ids))
		svc := Service{ID: uint32(svc6IDBase + i), Ring: ring, Index: s.index, Persist: s.persist,
			NAT64: s.backends[0].Addr().Is4()}
		if err := f.dp.SetService(s.key, svc); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// addIPv6 gives link name an IPv6 address (no duplicate address
// detection) and permanent neighbours, with IPv6 forwarding on, which the
// FIB lookup of IPv6 needs.
func addIPv6(t testing.TB, nt *nsThread, name string, addr netip.Prefix, neigh map[netip.Addr][6]byte) {
	t.Helper()
	var err error
	nt.do(func() {
		err = func() error {
			for _, p := range []string{"all", name} {
				if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/forwarding", []byte("1"), 0o644); err != nil {
					return err
				}
			}
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 128)}
			if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
				return fmt.Errorf("add address %s: %w", addr, err)
			}
			for ip, hw := range neigh {
				err := netlink.NeighAdd(&netlink.Neigh{
					LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V6,
					State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: hw[:],
				})
				if err != nil {
					return fmt.Errorf("add neighbour %s: %w", ip, err)
				}
			}
			return nil
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func vip6Port(port uint16) netip.AddrPort { return netip.AddrPortFrom(vip6, port) }

// TestNAT66 follows an IPv6 TCP connection both ways: client -> VIP
// becomes local -> backend with one hop less, the backend's reply becomes
// VIP -> client to the MAC the client's packets came from, and the TCP
// checksums (pseudo header included) are those gopacket computes. The
// ring alternates, and conntrack lists the connection with its IPv6
// addresses.
func TestNAT66(t *testing.T) {
	f := newFixture6(t)
	syn := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), syn: true, seq: 100}
	want := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: netip.AddrPortFrom(localAddr6, 10000),
		dst: netip.AddrPortFrom(rs1Addr6, 80), syn: true, seq: 100}
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")

	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: netip.AddrPortFrom(rs1Addr6, 80),
		dst: netip.AddrPortFrom(localAddr6, 10000), syn: true, ack: true, seq: 5000, ackNum: 101}
	back := frame{srcMAC: lbMAC, dstMAC: clientMAC, src: vip6Port(80), dst: client6,
		syn: true, ack: true, seq: 5000, ackNum: 101}
	f.run(t, synAck.bytes(t), f.lb0.ifindex, xdpTX, back.bytes(t), "fwd_tx")

	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), ack: true, seq: 101, ackNum: 5001,
		payload: []byte("GET / HTTP/1.0\r\n\r\n")}
	wantAck := ack
	wantAck.srcMAC, wantAck.dstMAC = lbMAC, rs1MAC
	wantAck.src, wantAck.dst = netip.AddrPortFrom(localAddr6, 10000), netip.AddrPortFrom(rs1Addr6, 80)
	f.run(t, ack.bytes(t), f.lb0.ifindex, xdpTX, wantAck.bytes(t), "fwd_tx")

	var fwds []Forward
	if err := f.dp.WalkForward(func(b []Forward) error { fwds = append(fwds, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	wantFwd := Forward{
		Key:   FlowKey{Src: client6, Dst: vip6Port(80), Proto: TCP},
		Local: netip.AddrPortFrom(localAddr6, 10000), Backend: netip.AddrPortFrom(rs1Addr6, 80),
		ServiceID: svc6IDBase, BackendID: backend6IDBase, State: StateEstablished,
	}
	if len(fwds) != 1 {
		t.Fatalf("forward halves %+v, want one", fwds)
	}
	fwds[0].LastSeen = 0
	if fwds[0] != wantFwd {
		t.Errorf("forward half %+v, want %+v", fwds[0], wantFwd)
	}

	// The next client goes to the second backend (round robin).
	other := netip.MustParseAddrPort("[fd00:77::a]:40001")
	syn2 := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: other, dst: vip6Port(80), syn: true, seq: 7}
	want2 := frame{srcMAC: lbMAC, dstMAC: rs2MAC, src: netip.AddrPortFrom(localAddr6, 10000),
		dst: netip.AddrPortFrom(rs2Addr6, 8080), syn: true, seq: 7}
	f.run(t, syn2.bytes(t), f.lb0.ifindex, xdpTX, want2.bytes(t), "fwd_tx")
}

// TestNAT66UDP: a datagram and its answer, checksums included; a
// datagram without a checksum (illegal over IPv6) is left without one.
func TestNAT66UDP(t *testing.T) {
	f := newFixture6(t)
	q := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(53), udp: true, payload: []byte("query")}
	wq := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: netip.AddrPortFrom(localAddr6, 10000),
		dst: netip.AddrPortFrom(rs1Addr6, 5353), udp: true, payload: []byte("query")}
	f.run(t, q.bytes(t), f.lb0.ifindex, xdpTX, wq.bytes(t), "fwd_tx")
	a := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: netip.AddrPortFrom(rs1Addr6, 5353),
		dst: netip.AddrPortFrom(localAddr6, 10000), udp: true, payload: []byte("answer!")}
	wa := frame{srcMAC: lbMAC, dstMAC: clientMAC, src: vip6Port(53), dst: client6, udp: true, payload: []byte("answer!")}
	f.run(t, a.bytes(t), f.lb0.ifindex, xdpTX, wa.bytes(t), "fwd_tx")

	q.zeroUDPCsum, wq.zeroUDPCsum = true, true
	f.run(t, q.bytes(t), f.lb0.ifindex, xdpTX, wq.bytes(t), "fwd_tx")
}

// TestNAT66HopLimit: a packet with a hop limit of 1 is not forwarded (nor
// passed, which would deliver it to the VIP on this host).
func TestNAT66HopLimit(t *testing.T) {
	f := newFixture6(t)
	syn := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), syn: true, seq: 100, ttl: 1}
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_ttl")
}

// withExtension inserts an extension header of protocol proto, as body
// (its next-header byte is set here), in front of in's upper-layer header.
// The TCP and UDP checksums do not cover extension headers.
func withExtension(in []byte, proto byte, body []byte) []byte {
	const ip6 = 14
	out := append([]byte{}, in[:ip6+40]...)
	hdr := append([]byte{}, body...)
	hdr[0] = out[ip6+6]
	out[ip6+6] = proto
	binary.BigEndian.PutUint16(out[ip6+4:], binary.BigEndian.Uint16(out[ip6+4:])+uint16(len(hdr)))
	out = append(out, hdr...)
	return append(out, in[ip6+40:]...)
}

var (
	hopByHop    = []byte{0, 0, 1, 4, 0, 0, 0, 0}                          // PadN
	destOptions = []byte{0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // 16 bytes
	routing     = []byte{0, 0, 4, 0, 0, 0, 0, 0}                          // a segment routing header, no segments left
)

// fragmentHeader is an IPv6 fragment header at offset (in 8-byte units)
// with more fragments to come or not.
func fragmentHeader(offset uint16, more bool) []byte {
	h := []byte{0, 0, 0, 0, 0, 0, 0x12, 0x34}
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(h[2:], v)
	return h
}

// TestNAT66Extensions: hop-by-hop and destination options are walked and
// kept; an atomic fragment is a whole packet; a fragment to a VIP is
// dropped (it has no ports to balance by), to anything else passed; a
// routing header is the host's.
func TestNAT66Extensions(t *testing.T) {
	f := newFixture6(t)
	syn := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), syn: true, seq: 100}
	want := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: netip.AddrPortFrom(localAddr6, 10000),
		dst: netip.AddrPortFrom(rs1Addr6, 80), syn: true, seq: 100}
	in := withExtension(withExtension(syn.bytes(t), 60, destOptions), 0, hopByHop)
	out := withExtension(withExtension(want.bytes(t), 60, destOptions), 0, hopByHop)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")

	other := netip.MustParseAddrPort("[fd00:77::b]:40002")
	syn.src = other
	want.dstMAC, want.dst = rs2MAC, netip.AddrPortFrom(rs2Addr6, 8080)
	f.run(t, withExtension(syn.bytes(t), 44, fragmentHeader(0, false)), f.lb0.ifindex, xdpTX,
		withExtension(want.bytes(t), 44, fragmentHeader(0, false)), "fwd_tx")

	f.run(t, withExtension(syn.bytes(t), 44, fragmentHeader(0, true)), f.lb0.ifindex, xdpDrop, nil, "drop_fragment")
	f.run(t, withExtension(syn.bytes(t), 44, fragmentHeader(8, false)), f.lb0.ifindex, xdpDrop, nil, "drop_fragment")
	notVIP := syn
	notVIP.dst = netip.AddrPortFrom(localAddr6, 22)
	f.run(t, withExtension(notVIP.bytes(t), 44, fragmentHeader(8, false)), f.lb0.ifindex, xdpPass, nil, "pass_fragment")
	f.run(t, withExtension(syn.bytes(t), 43, routing), f.lb0.ifindex, xdpPass, nil, "pass_ipv6_ext")
}

// TestNAT66Malformed: what cannot be read whole is the host's, and never
// forwarded; ICMPv6 is the host's (neighbour discovery among it).
func TestNAT66Malformed(t *testing.T) {
	f := newFixture6(t)
	syn := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), syn: true, seq: 100}
	good := syn.bytes(t)

	f.run(t, good[:14+30], f.lb0.ifindex, xdpPass, nil, "pass_truncated")
	f.run(t, good[:14+40+10], f.lb0.ifindex, xdpPass, nil, "pass_truncated")

	long := append([]byte{}, good...)
	binary.BigEndian.PutUint16(long[14+4:], uint16(len(good)-14-40+1)) // one byte more than the frame
	f.run(t, long, f.lb0.ifindex, xdpPass, nil, "pass_bad_header")

	jumbo := append([]byte{}, good...)
	binary.BigEndian.PutUint16(jumbo[14+4:], 0)
	f.run(t, jumbo, f.lb0.ifindex, xdpPass, nil, "pass_bad_header")

	v4 := append([]byte{}, good...)
	v4[14] = 0x45
	f.run(t, v4, f.lb0.ifindex, xdpPass, nil, "pass_bad_header")

	longExt := withExtension(good, 0, []byte{0, 200, 1, 4, 0, 0, 0, 0}) // says 1608 bytes
	f.run(t, longExt, f.lb0.ifindex, xdpPass, nil, "pass_truncated")

	icmp := append([]byte{}, good...)
	icmp[14+6] = 58
	f.run(t, icmp, f.lb0.ifindex, xdpPass, nil, "pass_icmp")

	foreign := syn
	foreign.dstMAC = client2MAC
	f.run(t, foreign.bytes(t), f.lb0.ifindex, xdpPass, nil, "pass_not_ours")
}

// TestNAT66Sweep: the sweep counts and expires IPv6 connections as IPv4
// ones, and their local ports go back to their pools: the next connection
// to the backend gets the port again.
func TestNAT66Sweep(t *testing.T) {
	f := newFixture6(t)
	syn := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), syn: true, seq: 100}
	f.runOK(t, syn.bytes(t), f.lb0.ifindex, xdpTX)
	res, err := f.dp.Sweep(Now(), 0, func(uint8, State, State, uint64) bool { return false }, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 1 || res.PerService[svc6IDBase] != 1 || res.PortsInUse[localAddr6] != 1 || res.HalfOpen != 1 {
		t.Errorf("sweep %+v: want one half-open connection of service %d on %s", res, svc6IDBase, localAddr6)
	}
	res, err = f.dp.Sweep(Now(), 0, func(uint8, State, State, uint64) bool { return true }, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 1 {
		t.Errorf("sweep expired %d, want 1", res.Expired)
	}
	for name, m := range map[string]*ebpf.Map{"ct6_forward": f.dp.objs.Ct6Forward, "ct6_reverse": f.dp.objs.Ct6Reverse} {
		var k xdplbCt6Key
		if err := m.NextKey(nil, &k); !errors.Is(err, ebpf.ErrKeyNotExist) {
			t.Errorf("%s after the sweep: first key %+v (%v), want none", name, k, err)
		}
	}
	// Both of rs1's ports were handed out fresh (the cursor went past
	// 10000); 10000 came back, and goes again to rs1.
	syn.src = netip.MustParseAddrPort("[fd00:77::c]:40003")
	f.runOK(t, syn.bytes(t), f.lb0.ifindex, xdpTX) // rs2
	syn.src = netip.MustParseAddrPort("[fd00:77::d]:40004")
	want := frame{srcMAC: lbMAC, dstMAC: rs1MAC, src: netip.AddrPortFrom(localAddr6, 10001),
		dst: netip.AddrPortFrom(rs1Addr6, 80), syn: true, seq: 100}
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")
	syn.src = netip.MustParseAddrPort("[fd00:77::e]:40005")
	f.runOK(t, syn.bytes(t), f.lb0.ifindex, xdpTX) // rs2
	syn.src = netip.MustParseAddrPort("[fd00:77::f]:40006")
	want.src = netip.AddrPortFrom(localAddr6, 10000)
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")
}

// TestNAT66ControlPlane: the services and backends read back as written,
// with their IPv6 addresses and persistence prefix.
func TestNAT66ControlPlane(t *testing.T) {
	f := newFixture6(t)
	key := ident.Service{VIP: vip6, Port: 87, Proto: ident.TCP}
	if err := f.dp.SetService(key, Service{ID: svc6IDBase + 3, Persist: time.Minute, PersistBits: 64,
		Ring: Ring{Offset: backend6IDBase + 5, Len: 2}}); err != nil {
		t.Fatal(err)
	}
	svcs, err := f.dp.Services()
	if err != nil {
		t.Fatal(err)
	}
	if got := svcs[key]; got.ID != svc6IDBase+3 || got.PersistBits != 64 || got.Persist != time.Minute {
		t.Errorf("service %s read back as %+v", key, got)
	}
	if err := f.dp.SetService(key, Service{ID: svc6IDBase + 3, PersistBits: 129}); err == nil {
		t.Error("a persistence prefix of /129 was accepted")
	}
	entries, err := f.dp.BackendEntries()
	if err != nil {
		t.Fatal(err)
	}
	if got := entries[backend6IDBase+1]; got.Addr != netip.AddrPortFrom(rs2Addr6, 8080) || got.ServiceID != svc6IDBase || !got.Assigned {
		t.Errorf("backend %d read back as %+v", backend6IDBase+1, got)
	}
	if err := f.dp.DeleteService(key, false); err != nil {
		t.Fatal(err)
	}
	if svcs, _ = f.dp.Services(); svcs[key].ID != 0 {
		t.Errorf("service %s still there after DeleteService", key)
	}
}

// refFlowHash6 is an independent rendering of the datapath's IPv6 flow
// hash (bpf/lib/sched6.h flow_hash6): the addresses word by word, as the
// program reads them from the packet.
func refFlowHash6(src, dst netip.AddrPort, proto uint8, sourceOnly bool) uint32 {
	mix := func(h uint32) uint32 {
		h ^= h >> 16
		h *= 0x85ebca6b
		h ^= h >> 13
		h *= 0xc2b2ae35
		h ^= h >> 16
		return h
	}
	port := func(p uint16) uint32 { return uint32(p>>8 | p<<8) }
	h := uint32(0x9e3779b9)
	s, d := src.Addr().As16(), dst.Addr().As16()
	for i := 0; i < 16; i += 4 {
		h = mix(h ^ binary.LittleEndian.Uint32(s[i:]))
	}
	if sourceOnly {
		return h
	}
	for i := 0; i < 16; i += 4 {
		h = mix(h ^ binary.LittleEndian.Uint32(d[i:]))
	}
	h = mix(h ^ (port(src.Port())<<16 | port(dst.Port())))
	return mix(h ^ uint32(proto))
}

// backendOf6 opens a connection from c to the IPv6 VIP's port and returns
// the backend its SYN was sent to.
func (f *fixture) backendOf6(t *testing.T, c netip.AddrPort, port uint16) netip.AddrPort {
	t.Helper()
	var out []byte
	var verdict uint32
	var err error
	f.nt.do(func() {
		verdict, out, _, err = f.dp.Run(frame{srcMAC: clientMAC, dstMAC: lbMAC, src: c, dst: vip6Port(port), syn: true}.bytes(t),
			f.lb0.ifindex, 1)
	})
	if err != nil || verdict != xdpTX || len(out) < 14+40+4 {
		t.Fatalf("SYN from %s: verdict %d (%v), %d bytes out", c, verdict, err, len(out))
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(out[14+24:14+40])), binary.BigEndian.Uint16(out[14+42:]))
}

// TestNAT66Schedulers: maglev's tuple hash picks the backend from the
// IPv6 5-tuple as an independent rendering of the hash says; persistence
// sends a client back to the backend it got, whatever its port, while
// another client goes on round robin.
func TestNAT66Schedulers(t *testing.T) {
	f := newFixture6With(t, 10000, 10999, 4096)
	backends := fixtureServices6[2].backends
	seen := map[netip.AddrPort]bool{}
	for i := range 16 {
		c := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x77, 15: byte(i + 1)}), uint16(40000+i))
		want := backends[refFlowHash6(c, vip6Port(85), TCP, false)%2]
		if got := f.backendOf6(t, c, 85); got != want {
			t.Errorf("maglev: %s went to %s, want %s", c, got, want)
		}
		seen[want] = true
	}
	if len(seen) != 2 {
		t.Errorf("16 clients hashed to %v only: pick others", seen)
	}

	a, b := netip.MustParseAddr("fd00:77::100"), netip.MustParseAddr("fd00:77::200")
	first := f.backendOf6(t, netip.AddrPortFrom(a, 41000), 87)
	other := f.backendOf6(t, netip.AddrPortFrom(b, 41000), 87)
	if first == other {
		t.Errorf("persistence service: two clients both went to %s; round robin should alternate", first)
	}
	for p := uint16(41001); p < 41005; p++ {
		if got := f.backendOf6(t, netip.AddrPortFrom(a, p), 87); got != first {
			t.Errorf("persistence: %s's connection from port %d went to %s, want %s", a, p, got, first)
		}
	}
}

// TestNAT66ResetKeepsAReclaimedPort: the control plane ends a connection
// (its forward half marked reset, its reverse half removed, as
// conntrack.DropBackend does), and its local port goes to another
// connection before the first client's next packet. That packet forgets
// the first connection and nothing of the second, which keeps its
// reverse half.
func TestNAT66ResetKeepsAReclaimedPort(t *testing.T) {
	f := newFixture6(t)
	a := netip.MustParseAddr("fd00:77::300")
	first := netip.AddrPortFrom(a, 41000)
	backend := f.backendOf6(t, first, 87) // persistence: a's every connection goes there
	ended := FlowKey{Src: first, Dst: vip6Port(87), Proto: TCP}
	rev := FlowKey{Src: backend, Dst: netip.AddrPortFrom(localAddr6, 10000), Proto: TCP}
	if err := f.dp.ResetForward([]FlowKey{ended}); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.DeleteReverse([]FlowKey{rev}); err != nil {
		t.Fatal(err)
	}
	f.backendOf6(t, netip.AddrPortFrom(a, 41001), 87) // the pool's next fresh port, 10001
	third := netip.AddrPortFrom(a, 41002)
	f.backendOf6(t, third, 87) // 10000 again, returned by DeleteReverse

	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: first, dst: vip6Port(87), ack: true, seq: 101}
	f.run(t, ack.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_conn")
	k, err := rev.wire6()
	if err != nil {
		t.Fatal(err)
	}
	var v xdplbCt6Rev
	if err := f.dp.objs.Ct6Reverse.Lookup(k, &v); err != nil || flowKeyFromWire6(v.Client).Src != third {
		t.Errorf("reverse half %v after the ended connection's packet: client %v (%v), want %s's",
			rev, flowKeyFromWire6(v.Client), err, third)
	}
}
