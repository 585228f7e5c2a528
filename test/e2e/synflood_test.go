package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

const (
	// The flood lasts until the client is done, at most floodFor and
	// floodPackets.
	floodFor     = 15 * time.Second
	floodPackets = 500_000
	// floodRate is the flood's rate, in SYNs per second: 30 times the
	// protection's threshold, and 7.5 times what the backends' 20,000 local
	// ports can hold for the 5 s a half-open connection lives. A raw
	// socket can send more here (about 120,000 a second), but beyond this
	// rate the test measures the veth rings of its own topology (256
	// frames, shared with the client's packets), not the balancer.
	floodRate  = 30_000
	legitConns = 500
	// Without protection each connection waits for a port a half-open
	// one gives back: 100 show it, in a reasonable time.
	unprotectedConns = 100
)

// TestSYNFlood: an attacker host sends spoofed SYNs (random unrouted
// sources) to the web service, whose two backends have 10,000 local ports
// each, while a client opens 500 connections. With SYN authentication
// engaged by the rate of SYNs (auto), or by a bound on half-open
// connections with SYN authentication itself off, at least 99 % of them
// succeed, the client's first connection is delayed by less than 100 ms,
// and the service is normal within 5 s of the flood's end. With neither,
// the test records how many fail.
func TestSYNFlood(t *testing.T) {
	testbed.RequirePrivileges(t)
	for _, d := range []synDefence{
		{"auto", "mode: auto\n  threshold: 1000", "fwd_syn_challenge"},
		{"half-open", "mode: off\n  half_open: {max_per_service: 2000, action: challenge}", "fwd_half_open_challenge"},
		{"off", "mode: off\n  half_open: {max: 0, max_per_service: 0}", ""},
	} {
		t.Run(d.name, func(t *testing.T) { testSYNFlood(t, d) })
	}
}

// synDefence is a syn_protection section and the reason its challenges
// are counted under ("": none, no defence).
type synDefence struct{ name, section, challenges string }

func testSYNFlood(t *testing.T, defence synDefence) {
	protection := defence.name
	e := newEnv(t, "native")
	e.start(t, func(d string) string {
		return demo.Setup{Mode: e.mode, Dir: d, Services: demo.WebService,
			Extra: fmt.Sprintf("syn_protection:\n  %s\n", defence.section)}.YAML()
	})
	attacker, err := e.ref.Segment.AddHost("atk", netip.MustParseAddr("172.19.0.66"))
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.AddrPortFrom(testbed.ReferenceVIP, 80)
	before := ctStats(t, e)

	ctx, cancel := context.WithTimeout(t.Context(), floodFor)
	defer cancel()
	sent := make(chan int, 1)
	go func() { sent <- synFlood(ctx, t, attacker, vip) }()
	// A second of flood first: more SYNs than the backends have local
	// ports, so without protection the ports are full when the client
	// starts.
	time.Sleep(time.Second)

	var ok int
	var took []time.Duration
	firstConn := time.Hour // the client's first connection: the challenged one
	began := time.Now()
	conns := legitConns
	if protection == "off" {
		conns = unprotectedConns
	}
	for range conns {
		start := time.Now()
		c, err := ctDial(t, e, vip.String(), 3*time.Second)
		if err != nil {
			continue
		}
		if len(took) == 0 && ok == 0 {
			firstConn = time.Since(start)
		}
		took = append(took, time.Since(start))
		ok++
		c.Close()
	}
	floodOver := ctx.Err() != nil
	cancel()
	n := <-sent
	slices.Sort(took)
	var first, median, slowest time.Duration
	if ok > 0 {
		first, median, slowest = took[0], took[len(took)/2], took[len(took)-1]
	}
	t.Logf("syn_protection %s: %d spoofed SYNs sent; %d of %d connections succeeded in %s (%d failed); connect times: the first %s, fastest %s, median %s, slowest %s",
		protection, n, ok, conns, time.Since(began).Round(time.Millisecond), conns-ok, firstConn.Round(time.Microsecond),
		first.Round(time.Microsecond), median.Round(time.Microsecond), slowest.Round(time.Millisecond))
	after := ctStats(t, e)
	for name, n := range after.Reasons {
		if d := n - before.Reasons[name]; d > 0 {
			t.Logf("%s: +%d", name, d)
		}
	}

	// Back to normal within 5 s of the flood's end: 20 connections in a
	// row succeed.
	end := time.Now()
	for {
		good := 0
		for range 20 {
			if c, err := ctDial(t, e, vip.String(), time.Second); err == nil {
				good++
				c.Close()
			}
		}
		if good == 20 {
			t.Logf("normal %s after the flood", time.Since(end).Round(time.Millisecond))
			break
		}
		if time.Since(end) > 5*time.Second {
			if protection != "off" {
				t.Errorf("not normal 5s after the flood: %d of 20 connections succeeded", good)
			}
			break
		}
	}
	if protection == "off" {
		return
	}
	if floodOver {
		t.Errorf("the flood's bound (%s) ended before the client's connections did", floodFor)
	}
	if ok < legitConns*99/100 {
		t.Errorf("%d of %d connections succeeded during the flood, want at least 99%%", ok, legitConns)
	}
	if firstConn >= 100*time.Millisecond {
		t.Errorf("the client's first connection took %s, want under 100ms", firstConn)
	}
	if ctReason(t, after, defence.challenges) == ctReason(t, before, defence.challenges) ||
		ctReason(t, after, "drop_syn_proof") == ctReason(t, before, "drop_syn_proof") {
		t.Errorf("no challenge was sent (%s) or no proof verified: the defence did not engage", defence.challenges)
	}
}

// synFlood sends SYNs to vip from random sources in 198.18.0.0/15 (a range
// no test routes) through a raw socket in the attacker's namespace until
// ctx ends or floodPackets are sent, and returns how many it sent. The
// answers go to the attacker's MAC, where its kernel drops them.
func synFlood(ctx context.Context, t *testing.T, attacker *testbed.Host, vip netip.AddrPort) int {
	var fd int
	err := attacker.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		t.Errorf("raw socket: %v", err)
		return 0
	}
	defer unix.Close(fd)
	const distinct = 1 << 16
	packets := make([][]byte, distinct)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range packets {
		src := netip.AddrFrom4([4]byte{198, 18 + byte(rng.IntN(2)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
		packets[i] = spoofedSYN(src, uint16(1024+rng.IntN(60000)), vip, rng.Uint32())
	}
	to := &unix.SockaddrInet4{Addr: vip.Addr().As4()}
	start := time.Now()
	n := 0
	for i := 0; i < floodPackets && ctx.Err() == nil; i++ {
		for float64(i) > time.Since(start).Seconds()*floodRate {
			time.Sleep(100 * time.Microsecond)
		}
		if unix.Sendto(fd, packets[i%distinct], 0, to) == nil {
			n++
		}
	}
	return n
}

// spoofedSYN is an IPv4 SYN from src:sport to dst with checksums right.
func spoofedSYN(src netip.Addr, sport uint16, dst netip.AddrPort, seq uint32) []byte {
	b := make([]byte, 40)
	b[0], b[8], b[9] = 0x45, 64, unix.IPPROTO_TCP
	binary.BigEndian.PutUint16(b[2:], 40)
	s4, d4 := src.As4(), dst.Addr().As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	binary.BigEndian.PutUint16(b[10:], inetChecksum(0, b[:20]))
	tcp := b[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12], tcp[13] = 5<<4, 0x02
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	pseudo := uint32(binary.BigEndian.Uint16(s4[:2])) + uint32(binary.BigEndian.Uint16(s4[2:])) +
		uint32(binary.BigEndian.Uint16(d4[:2])) + uint32(binary.BigEndian.Uint16(d4[2:])) + unix.IPPROTO_TCP + 20
	binary.BigEndian.PutUint16(tcp[16:], inetChecksum(pseudo, tcp))
	return b
}

// inetChecksum is the Internet checksum of b, starting from sum.
func inetChecksum(sum uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
