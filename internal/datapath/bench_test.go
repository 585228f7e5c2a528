package datapath

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// Benchmarks report the kernel's own time per packet (ns/packet), which
// excludes the cost of the test-run syscall.

func BenchmarkNewConnection(b *testing.B) {
	f := newFixtureWith(b, 10000, 60000, 1<<20)
	var locals []netip.Addr
	for i := 5; i < 13; i++ {
		locals = append(locals, netip.AddrFrom4([4]byte{172, 19, 0, byte(i)}))
	}
	f.benchNewConnections(b, locals, vip80, func(i int) netip.Addr {
		return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	})
}

// BenchmarkNewConnection6 is BenchmarkNewConnection over IPv6: 8 local
// addresses, the same ports and table capacity, a new client each SYN.
func BenchmarkNewConnection6(b *testing.B) {
	f := newFixture6With(b, 10000, 60000, 1<<20)
	var locals []netip.Addr
	for i := 5; i < 13; i++ {
		locals = append(locals, netip.AddrFrom16([16]byte{0: 0xfd, 3: 0x19, 15: byte(i)}))
	}
	f.benchNewConnections(b, locals, vip6Port(80), func(i int) netip.Addr {
		return netip.AddrFrom16([16]byte{0: 0xfd, 3: 0x77, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
	})
}

// benchNewConnections sends one SYN from a new client (clientAddr(i), on
// a port of its own) to `to` per iteration, through local addresses
// locals with ports 10000-60000, emptying conntrack every 500,000
// connections. The kernel's per-run timing is summed.
func (f *fixture) benchNewConnections(b *testing.B, locals []netip.Addr, to netip.AddrPort, clientAddr func(int) netip.Addr) {
	if err := f.dp.SetLocal(locals, Ports{Min: 10000, Max: 60000}, Ports{Min: 10000, Max: 60000}); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	opened := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if opened == 500_000 {
			b.StopTimer()
			clearConntrack(b, f.dp)
			opened = 0
			b.StartTimer()
		}
		c := netip.AddrPortFrom(clientAddr(i), uint16(1024+i%50000))
		frame := clientSYN(c, clientMAC, to).bytes(b)
		var verdict uint32
		var d time.Duration
		var err error
		f.nt.do(func() { verdict, _, d, err = f.dp.Run(frame, f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			b.Fatalf("SYN %d: verdict %d err %v", i, verdict, err)
		}
		total += d
		opened++
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/packet")
}

func BenchmarkEstablishedToBackend(b *testing.B) {
	f := newFixture(b, 10000, 10999)
	f.open(b, client, vip80)
	data := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, payload: make([]byte, 64)}
	f.benchRepeat(b, data.bytes(b), xdpTX)
}

func BenchmarkEstablishedToClient(b *testing.B) {
	f := newFixture(b, 10000, 10000)
	f.open(b, client, vip80)
	reply := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: ap("172.19.0.2:80"), dst: ap("172.19.0.5:10000"), ack: true, payload: make([]byte, 64)}
	f.benchRepeat(b, reply.bytes(b), xdpTX)
}

// BenchmarkEstablishedToBackend6 and BenchmarkEstablishedToClient6 are
// their IPv4 twins over IPv6 (NAT66), with the same 64-byte payloads; the
// frames are 20 bytes longer (the IPv6 header).
func BenchmarkEstablishedToBackend6(b *testing.B) {
	f := newFixture6With(b, 10000, 10999, 4096)
	f.open(b, client6, vip6Port(80))
	data := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client6, dst: vip6Port(80), ack: true, payload: make([]byte, 64)}
	f.benchRepeat(b, data.bytes(b), xdpTX)
}

func BenchmarkEstablishedToClient6(b *testing.B) {
	f := newFixture6With(b, 10000, 10000, 4096)
	f.open(b, client6, vip6Port(80))
	reply := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: netip.AddrPortFrom(rs1Addr6, 80),
		dst: netip.AddrPortFrom(localAddr6, 10000), ack: true, payload: make([]byte, 64)}
	f.benchRepeat(b, reply.bytes(b), xdpTX)
}

func BenchmarkUDP(b *testing.B) {
	f := newFixture(b, 10000, 10999)
	q := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: netip.AddrPortFrom(vip, 53), udp: true, payload: make([]byte, 64)}
	f.benchRepeat(b, q.bytes(b), xdpTX)
}

func BenchmarkNotForService(b *testing.B) {
	f := newFixture(b, 10000, 10999)
	ssh := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: ap("172.19.0.5:22"), ack: true, payload: make([]byte, 64)}
	f.benchRepeat(b, ssh.bytes(b), xdpPass)
}

// open establishes from's connection to `to` with a SYN (the first of a
// fixture's connections to the VIP's port 80 goes to rs1).
func (f *fixture) open(b *testing.B, from, to netip.AddrPort) {
	var verdict uint32
	var err error
	f.nt.do(func() { verdict, _, _, err = f.dp.Run(clientSYN(from, clientMAC, to).bytes(b), f.lb0.ifindex, 1) })
	if err != nil || verdict != xdpTX {
		b.Fatalf("SYN: verdict %d err %v", verdict, err)
	}
}

// benchRepeat runs the program once per iteration on a fresh copy of the
// frame: the kernel's repeat mode would run it again on the frame it has
// just rewritten. The kernel's per-run timing is summed.
func (f *fixture) benchRepeat(b *testing.B, in []byte, want uint32) {
	var total time.Duration
	b.ResetTimer()
	f.nt.do(func() {
		for i := 0; i < b.N; i++ {
			verdict, _, per, err := f.dp.Run(in, f.lb0.ifindex, 1)
			if err != nil || verdict != want {
				b.Errorf("verdict %d err %v", verdict, err)
				return
			}
			total += per
		}
	})
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/packet")
}

func clearConntrack(b *testing.B, dp *Datapath) {
	var fk, rk []FlowKey
	dp.WalkForward(func(batch []Forward) error {
		for _, e := range batch {
			fk = append(fk, e.Key)
		}
		return nil
	})
	dp.WalkReverse(func(batch []Reverse) error {
		for _, e := range batch {
			rk = append(rk, e.Key)
		}
		return nil
	})
	if err := dp.DeleteForward(fk); err != nil {
		b.Fatal(err)
	}
	if err := dp.DeleteReverse(rk); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSYNChallenge: a spoofed SYN answered with a challenge while
// SYN authentication is engaged: what a flood costs per packet, and so how
// many one core absorbs (1e9 / ns per packet).
func BenchmarkSYNChallenge(b *testing.B) {
	f := newFixture(b, 10000, 10999)
	if err := f.dp.SetSYNKey(testSYNKey); err != nil {
		b.Fatal(err)
	}
	if err := f.dp.SetSYNAuth(SYNAuthAlways, 0, time.Minute); err != nil {
		b.Fatal(err)
	}
	f.benchRepeat(b, clientSYN(client, clientMAC, vip80).bytes(b), xdpTX)
}

// BenchmarkHandshakeACK is the client's handshake ACK, which a TOA
// service's connection carries the client's address in (the frame grows
// by 8 bytes and its headers move) and another service's does not.
func BenchmarkHandshakeACK(b *testing.B) {
	for _, s := range []struct {
		name string
		port uint16
	}{{"none", 80}, {"toa", 88}} {
		b.Run(s.name, func(b *testing.B) {
			f := newFixture(b, 10000, 10000)
			to := netip.AddrPortFrom(vip, s.port)
			f.handshake(b, to)
			ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: to, ack: true, seq: 2, ackNum: 5001,
				tcpOptions: []layers.TCPOption{optNOP, optNOP, optTimestamp}}
			f.benchRepeat(b, ack.bytes(b), xdpTX)
		})
	}
}

// BenchmarkEstablishedToBackendTOA is BenchmarkEstablishedToBackend for a
// TOA service's connection past its handshake: what the option costs the
// packets that do not carry it.
func BenchmarkEstablishedToBackendTOA(b *testing.B) {
	f := newFixture(b, 10000, 10000)
	to := netip.AddrPortFrom(vip, 88)
	f.handshake(b, to)
	data := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: to, ack: true, ackNum: 6000, payload: make([]byte, 64)}
	f.benchRepeat(b, data.bytes(b), xdpTX)
}

// handshake opens the standard client's connection to `to` and passes the
// backend's SYN-ACK (sequence 5000) back; the fixture's single local port
// is 10000.
func (f *fixture) handshake(b testing.TB, to netip.AddrPort) {
	rs := netip.AddrPortFrom(netip.MustParseAddr("172.19.0.2"), to.Port())
	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs, dst: ap("172.19.0.5:10000"), syn: true, ack: true, seq: 5000, ackNum: 2,
		tcpOptions: []layers.TCPOption{optMSS1460}}
	for _, in := range [][]byte{clientSYN(client, clientMAC, to).bytes(b), synAck.bytes(b)} {
		var verdict uint32
		var err error
		f.nt.do(func() { verdict, _, _, err = f.dp.Run(in, f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			b.Fatalf("handshake: verdict %d err %v", verdict, err)
		}
	}
}

// BenchmarkNewConnectionOccupancy: a new connection to a backend whose
// local ports (one address, 10,000 ports) are 0, 50, 90 and 99 % taken. The
// oldest connection expires after each new one, as under steady churn, so
// the pool hands out freed ports. Flat is the goal.
func BenchmarkNewConnectionOccupancy(b *testing.B) {
	const slots = 10000
	for _, pct := range []int{0, 50, 90, 99} {
		b.Run(fmt.Sprintf("%d%%", pct), func(b *testing.B) {
			f := newFixtureWith(b, 20000, 20000+slots-1, 1<<16)
			var open []netip.AddrPort
			next := 0
			openOne := func() time.Duration {
				c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(next >> 16), byte(next >> 8), byte(next)}), uint16(1024+next%50000))
				next++
				var verdict uint32
				var d time.Duration
				var err error
				f.nt.do(func() { verdict, _, d, err = f.dp.Run(clientSYN(c, clientMAC, single).bytes(b), f.lb0.ifindex, 1) })
				if err != nil || verdict != xdpTX {
					b.Fatalf("SYN %d at %d%%: verdict %d err %v", next, pct, verdict, err)
				}
				open = append(open, c)
				return d
			}
			expireOldest := func() {
				c := open[0]
				open = open[1:]
				k, _ := FlowKey{Src: c, Dst: single, Proto: TCP}.wire()
				var v xdplbCtFwd
				if err := f.dp.objs.CtForward.Lookup(k, &v); err != nil {
					b.Fatal(err)
				}
				local := netip.AddrPortFrom(addrFromBE32(v.LocalAddr), portFromBE16(v.LocalPort))
				if err := f.dp.DeleteForward([]FlowKey{{Src: c, Dst: single, Proto: TCP}}); err != nil {
					b.Fatal(err)
				}
				if err := f.dp.DeleteReverse([]FlowKey{{Src: rs1HTTP, Dst: local, Proto: TCP}}); err != nil {
					b.Fatal(err)
				}
			}
			for len(open) < slots*pct/100 {
				openOne()
			}
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				total += openOne()
				expireOldest()
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/packet")
		})
	}
}
