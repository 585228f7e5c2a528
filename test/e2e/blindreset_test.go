package e2e

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/testbed"
)

const (
	// rstRate paces the sweeps, in resets a second: faster, the
	// topology's own queues (a CPU's backlog, the lb veth's 256-frame XDP
	// ring) drop some, and the count no longer says what the datapath did.
	rstRate = 50_000
	// rstWindow is how many sequence numbers a reset may carry and still
	// be passed on (64 KiB behind to 1 MiB ahead, bpf/lib/conntrack.h):
	// those are the only resets a sweep sends that are not counted.
	rstWindow = 1<<16 + 1<<20 + 1
)

// TestBlindResetSweep: a blind RST sweep over idle connections breaks none
// of them. An attacker who knows each connection's 4-tuple but not its
// sequence numbers sends resets over the whole sequence space, from the
// client's side (every 64 KiB) and from the backend's (every 1 MiB). Before
// the datapath followed sequence numbers, the first of them moved the
// connection to CLOSE and the collector removed it (10 of 10 broken).
// With a close timeout of 200 ms, a connection moved to CLOSE would be gone
// by the checks.
//
// The resets that land in the window are passed on to the endpoint, whose
// TCP answers a challenge ACK unless the number is exact: with a random
// start and a step of 65,536, one of the sweep's numbers is the client's
// exact next one with probability 1/65,536 per connection, and a reset
// that exact is the attacker's win, not a flake.
func TestBlindResetSweep(t *testing.T) {
	testbed.RequirePrivileges(t)
	const (
		conns       = 10
		closeTO     = 200 * time.Millisecond
		gc          = 50 * time.Millisecond
		clientStep  = 1 << 16
		backendStep = 1 << 20
	)
	e := ctStartEnv(t, "", ctConntrack(conntrack.Timeouts{Close: closeTO}, gc))

	open := make([]net.Conn, 0, conns)
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	for i := range conns {
		c, err := ctDial(t, e, ctService, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: dial: %v", i+1, err)
		}
		open = append(open, c)
		if err := ctEchoLine(c, fmt.Sprintf("connection %d", i+1), 5*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}

	// Each connection's 4-tuples: client -> VIP from its socket, local ->
	// backend from the balancer.
	client := make([]netip.AddrPort, conns)
	tracked := map[netip.AddrPort]bool{}
	for i, c := range open {
		a := c.LocalAddr().(*net.TCPAddr).AddrPort()
		client[i] = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		tracked[client[i]] = true
	}
	vip := netip.MustParseAddrPort(ctService)
	listed := map[netip.AddrPort]bool{}
	var reverse [][2]netip.AddrPort // backend -> local
	for _, x := range ctConns(t, e, ctService) {
		if tracked[x.Client] && !listed[x.Client] {
			listed[x.Client] = true
			reverse = append(reverse, [2]netip.AddrPort{x.Backend, x.Local})
		}
	}
	if len(reverse) != conns {
		t.Fatalf("%d of the %d connections tracked before the sweep", len(reverse), conns)
	}

	// Not ctReason: the counter is new with the sequence check, and the
	// test must also run (and fail on the connections) without it.
	before := ctStats(t, e).Reasons["drop_rst_window"]
	fromClient := rawSocket(t, e.ref.Client)
	fromBackend := rawSocket(t, e.ref.RS1)
	began := time.Now()
	var sent, unsent, mayPass int
	for i := range conns {
		n, failed := rstSweep(fromClient, client[i], vip, rand.Uint32(), clientStep)
		sent, unsent, mayPass = sent+n, unsent+failed, mayPass+rstWindow/clientStep+1
	}
	clientSent := sent
	for _, r := range reverse {
		n, failed := rstSweep(fromBackend, r[0], r[1], rand.Uint32(), backendStep)
		sent, unsent, mayPass = sent+n, unsent+failed, mayPass+rstWindow/backendStep+1
	}
	t.Logf("%d spoofed resets sent in %s: %d client -> VIP (step %d), %d backend -> local (step %d); %d sends failed",
		sent, time.Since(began).Round(time.Millisecond), clientSent, clientStep, sent-clientSent, backendStep, unsent)

	// Long enough for a connection moved to CLOSE to be collected.
	time.Sleep(time.Second)

	states := map[netip.AddrPort]string{}
	for _, x := range ctConns(t, e, ctService) {
		states[x.Client] = x.State
	}
	var broken int
	for i, c := range open {
		state, ok := states[client[i]]
		err := ctEchoLine(c, fmt.Sprintf("connection %d after the sweep", i+1), 2*time.Second)
		switch {
		case !ok || err != nil:
			broken++
			t.Errorf("connection %d (%s): tracked %v (state %q), echo: %v", i+1, client[i], ok, state, err)
		case state != "ESTABLISHED":
			t.Errorf("connection %d (%s): state %s after the sweep, want ESTABLISHED", i+1, client[i], state)
		}
	}
	t.Logf("%d of %d idle connections broken by the sweep", broken, conns)

	after := ctReason(t, ctStats(t, e), "drop_rst_window")
	t.Logf("reasons[drop_rst_window]: %d -> %d (+%d) for %d resets sent, of which at most %d in a window",
		before, after, after-before, sent, mayPass)
	// A loaded machine may lose some spoofed frames before the program
	// sees them: the counter must account for nearly all, never more.
	if d := int(after - before); d < (sent-mayPass)*9/10 || d > sent {
		t.Errorf("reasons[drop_rst_window] moved by %d, want between %d and %d", d, (sent-mayPass)*9/10, sent)
	}
}

// rawSocket opens a raw IPv4 socket (IP header included) in host's
// namespace, closed when the test ends.
func rawSocket(t *testing.T, host *testbed.Host) int {
	t.Helper()
	var fd int
	err := host.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		t.Fatalf("raw socket on %s: %v", host, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// rstSweep sends resets from src to dst through the raw socket fd, with
// the sequence numbers start, start+step, ... over the whole 32-bit space,
// at rstRate; it returns how many were sent and how many sends failed.
func rstSweep(fd int, src, dst netip.AddrPort, start, step uint32) (sent, failed int) {
	to := &unix.SockaddrInet4{Addr: dst.Addr().As4()}
	begin := time.Now()
	for i := range (1 << 32) / int(step) {
		for float64(i) > time.Since(begin).Seconds()*rstRate {
			time.Sleep(100 * time.Microsecond)
		}
		if unix.Sendto(fd, spoofedRST(src, dst, start+uint32(i)*step), 0, to) == nil {
			sent++
		} else {
			failed++
		}
	}
	return sent, failed
}

// spoofedRST is spoofedSYN's packet turned into a bare reset (window 0),
// its TCP checksum made again.
func spoofedRST(src, dst netip.AddrPort, seq uint32) []byte {
	b := spoofedSYN(src.Addr(), src.Port(), dst, seq)
	tcp := b[20:]
	tcp[13] = 0x04
	binary.BigEndian.PutUint16(tcp[14:], 0)
	binary.BigEndian.PutUint16(tcp[16:], 0)
	// The pseudo header: both addresses (their sum, unfolded back from
	// inetChecksum's complement), the protocol and the TCP length.
	pseudo := uint32(^inetChecksum(0, b[12:20])) + unix.IPPROTO_TCP + 20
	binary.BigEndian.PutUint16(tcp[16:], inetChecksum(pseudo, tcp))
	return b
}
