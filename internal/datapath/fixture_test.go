package datapath

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/ident"
	"github.com/xdplb/xdplb/internal/testbed"
)

// XDP verdicts as the kernel numbers them.
const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

var (
	lbMAC      = mac("02:00:00:00:00:05")
	lb1MAC     = mac("02:00:00:00:01:05")
	clientMAC  = mac("02:00:00:00:00:09")
	client2MAC = mac("02:00:00:00:00:08")
	rs1MAC     = mac("02:00:00:00:00:02")
	rs2MAC     = mac("02:00:00:00:00:03")
	rs3MAC     = mac("02:00:00:00:01:02")

	localAddr = netip.MustParseAddr("172.19.0.5")
	vip       = netip.MustParseAddr("172.19.0.10")
)

// fixture is a loaded datapath configured like the reference scenario, in a
// private namespace with two interfaces: lb0 on the clients' and backends'
// segment, lb1 towards one more backend (to see redirects).
type fixture struct {
	dp  *Datapath
	nt  *nsThread
	lb0 testLink
	lb1 testLink
}

type testService struct {
	key      ident.Service
	backends []netip.AddrPort
	index    Index
	persist  time.Duration
	toa      bool
}

var fixtureServices = []testService{
	{key: ident.Service{VIP: vip, Port: 80, Proto: ident.TCP}, backends: []netip.AddrPort{ap("172.19.0.2:80"), ap("172.19.0.3:8080")}},
	{key: ident.Service{VIP: vip, Port: 53, Proto: ident.UDP}, backends: []netip.AddrPort{ap("172.19.0.2:5353")}},
	{key: ident.Service{VIP: vip, Port: 81, Proto: ident.TCP}, backends: []netip.AddrPort{ap("172.19.0.99:80")}}, // no neighbour
	{key: ident.Service{VIP: vip, Port: 82, Proto: ident.TCP}, backends: []netip.AddrPort{ap("198.18.0.1:80")}},  // no route
	{key: ident.Service{VIP: vip, Port: 83, Proto: ident.TCP}, backends: nil},                                    // empty ring
	{key: ident.Service{VIP: vip, Port: 84, Proto: ident.TCP}, backends: []netip.AddrPort{ap("10.20.0.2:80")}},   // behind lb1
	{key: ident.Service{VIP: netip.MustParseAddr("172.19.0.11"), Port: 80, Proto: ident.TCP}, backends: []netip.AddrPort{ap("172.19.0.2:80")}},
	{key: ident.Service{VIP: vip, Port: 85, Proto: ident.TCP}, backends: []netip.AddrPort{ap("172.19.0.2:85"), ap("172.19.0.3:85")}, index: IndexTupleHash},
	{key: ident.Service{VIP: vip, Port: 86, Proto: ident.TCP}, backends: []netip.AddrPort{ap("172.19.0.2:86"), ap("172.19.0.3:86")}, index: IndexSourceHash},
	{key: ident.Service{VIP: vip, Port: 87, Proto: ident.TCP}, backends: []netip.AddrPort{ap("172.19.0.2:87"), ap("172.19.0.3:87")}, persist: time.Minute},
	{key: ident.Service{VIP: vip, Port: 88, Proto: ident.TCP}, backends: []netip.AddrPort{ap("172.19.0.2:88")}, toa: true},
}

func newFixture(t testing.TB, portMin, portMax uint16) *fixture {
	t.Helper()
	return newFixtureWith(t, portMin, portMax, 4096)
}

func newFixtureWith(t testing.TB, portMin, portMax uint16, capacity uint32) *fixture {
	t.Helper()
	testbed.RequirePrivileges(t)
	f := &fixture{nt: newNSThread(t)}
	f.lb0 = addVeth(t, f.nt, "lb0", lbMAC, netip.MustParsePrefix("172.19.0.5/16"),
		map[netip.Addr][6]byte{
			netip.MustParseAddr("172.19.0.2"): [6]byte(rs1MAC),
			netip.MustParseAddr("172.19.0.3"): [6]byte(rs2MAC),
		})
	f.lb1 = addVeth(t, f.nt, "lb1", lb1MAC, netip.MustParsePrefix("10.20.0.1/24"),
		map[netip.Addr][6]byte{netip.MustParseAddr("10.20.0.2"): [6]byte(rs3MAC)})

	dp, err := Load(Options{ConntrackCapacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	f.dp = dp
	// As Attach does: frames to other MACs than the interfaces' are not
	// forwarded.
	for _, l := range []testLink{f.lb0, f.lb1} {
		f.nt.do(func() { err = dp.addInterface(l.ifindex) })
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := dp.SetLocal([]netip.Addr{localAddr}, Ports{Min: portMin, Max: portMax}, Ports{Min: portMin, Max: portMax}); err != nil {
		t.Fatal(err)
	}
	var backendID, slot uint32
	for i, s := range fixtureServices {
		ring := Ring{Offset: slot, Len: uint32(len(s.backends))}
		var ids []uint32
		for _, b := range s.backends {
			if err := dp.SetBackend(backendID, uint32(i), b, false); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, backendID)
			backendID++
		}
		if err := dp.WriteRing(slot, ids); err != nil {
			t.Fatal(err)
		}
		slot += uint32(len(ids))
		if err := dp.SetService(s.key, Service{ID: uint32(i), Ring: ring, Index: s.index, Persist: s.persist, TOA: s.toa}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// run passes in through the program as arriving on ifindex and checks the
// verdict, the output frame (nil: unchanged) and that exactly the reasons in
// want moved, by one each.
func (f *fixture) run(t *testing.T, in []byte, ifindex int, verdict uint32, want []byte, reasons ...string) {
	t.Helper()
	before, err := f.dp.Reasons()
	if err != nil {
		t.Fatal(err)
	}
	var got uint32
	var out []byte
	f.nt.do(func() { got, out, _, err = f.dp.Run(in, ifindex, 1) })
	if err != nil {
		t.Fatal(err)
	}
	if got != verdict {
		t.Errorf("verdict %d, want %d", got, verdict)
	}
	if want == nil {
		want = in
	}
	if !bytes.Equal(out, want) {
		t.Errorf("output frame differs\n got: %s\nwant: %s", hex.EncodeToString(out), hex.EncodeToString(want))
	}
	after, err := f.dp.Reasons()
	if err != nil {
		t.Fatal(err)
	}
	wantDelta := map[string]uint64{}
	for _, r := range reasons {
		wantDelta[r]++
	}
	for r := range after {
		name := Reason(r).String()
		if d := after[r] - before[r]; d != wantDelta[name] {
			t.Errorf("counter %s moved by %d, want %d", name, d, wantDelta[name])
		}
	}
}

func (f *fixture) forward(t *testing.T, client netip.AddrPort) xdplbCtFwd {
	t.Helper()
	return f.forwardTo(t, client, 80)
}

// forwardTo is the forward half of client's connection to the VIP's port.
func (f *fixture) forwardTo(t *testing.T, client netip.AddrPort, port uint16) xdplbCtFwd {
	t.Helper()
	k := xdplbCtKey{Saddr: mustBE32(client.Addr()), Daddr: mustBE32(vip), Sport: be16(client.Port()), Dport: be16(port), Proto: TCP}
	var v xdplbCtFwd
	if err := f.dp.objs.CtForward.Lookup(k, &v); err != nil {
		t.Fatalf("forward entry of %s: %v", client, err)
	}
	return v
}

func mustBE32(a netip.Addr) uint32 {
	v, err := be32(a)
	if err != nil {
		panic(err)
	}
	return v
}
