package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// The conntrack tests use one TCP service, 172.19.0.10:7000 with rs1:7000
// as its only backend, which echoes until the client closes.
const (
	ctService = "172.19.0.10:7000"
	ctName    = "echo7000"
)

const ctServices = `  - name: echo7000
    vip: 172.19.0.10
    port: 7000
    protocol: tcp
    backends:
      - address: 172.19.0.2
        port: 7000
`

// ctConntrack renders a conntrack section for Setup.Extra; zero timeouts
// are left out (they keep their defaults).
func ctConntrack(t conntrack.Timeouts, gc time.Duration) string {
	s := "conntrack:\n  timeouts:\n"
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"syn_sent", t.SynSent}, {"established", t.Established}, {"fin_wait", t.FinWait},
		{"close", t.Close}, {"udp", t.UDP},
	} {
		if f.v != 0 {
			s += fmt.Sprintf("    %s: %s\n", f.name, f.v)
		}
	}
	return s + fmt.Sprintf("  gc_interval: %s\n", gc)
}

// ctStartEnv builds the topology, serves the echo on rs1:7000 and starts
// a native-mode balancer with the given local ports and conntrack section.
func ctStartEnv(t *testing.T, ports, extra string) *env {
	t.Helper()
	e := newEnv(t, "native")
	serveTCP(t, e.ref.RS1, ":7000", ctEchoConn)
	e.start(t, func(dir string) string {
		return demo.Setup{Mode: e.mode, Dir: dir, Services: ctServices, Ports: ports, Extra: extra}.YAML()
	})
	return e
}

// ctEchoConn sends back everything it reads until the client closes (EOF);
// the server then closes too, so it is never the first to close.
func ctEchoConn(c net.Conn) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return fmt.Errorf("echo: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("echo: %w", err)
		}
	}
}

// ctDial connects from the client to addr, giving up after timeout.
func ctDial(t *testing.T, e *env, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return e.ref.Client.DialContext(ctx, "tcp", addr)
}

// ctEchoLine sends msg and a newline on c and checks that exactly that comes
// back within the deadline.
func ctEchoLine(c net.Conn, msg string, deadline time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(deadline)); err != nil {
		return err
	}
	line := msg + "\n"
	if _, err := io.WriteString(c, line); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(line))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if string(got) != line {
		return fmt.Errorf("echo %q, want %q", got, line)
	}
	return c.SetDeadline(time.Time{})
}

func ctStats(t *testing.T, e *env) api.Stats {
	t.Helper()
	st, err := e.bal.API.Stats(t.Context())
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return st
}

// ctReason returns a verdict counter, failing the test if it does not exist.
func ctReason(t *testing.T, st api.Stats, name string) uint64 {
	t.Helper()
	n, ok := st.Reasons[name]
	if !ok {
		t.Fatalf("no counter %q among the reasons %v", name, st.Reasons)
	}
	return n
}

func ctConns(t *testing.T, e *env, svc string) []api.Connection {
	t.Helper()
	conns, err := e.bal.API.Connections(t.Context(), svc, "")
	if err != nil {
		t.Fatalf("list connections: %v", err)
	}
	return conns
}

// ctListed tells whether conns holds the connection whose client side is c.
func ctListed(conns []api.Connection, c net.Conn) bool {
	want := c.LocalAddr().(*net.TCPAddr).AddrPort()
	want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
	for _, x := range conns {
		if x.Client == want {
			return true
		}
	}
	return false
}

// TestPortRecycling pushes 2,000 sequential short connections through 16
// local ports: every port must be handed out again and again, as soon as
// the connection that held it has been collected after its FIN timeout.
// The client closes first, so the backend never keeps the tuple in
// TIME_WAIT and reusing it is safe.
//
// The client paces itself: connection i waits until connection i-16 ended
// fin_wait + gc_interval + a margin ago. Unpaced, every 17th SYN would find
// all ports held and the run would be bound by the kernel's 1 s SYN
// retransmission (about 2 minutes in all).
func TestPortRecycling(t *testing.T) {
	testbed.RequirePrivileges(t)
	const (
		conns  = 2000
		ports  = 16
		finTO  = 100 * time.Millisecond
		gc     = 50 * time.Millisecond
		window = finTO + gc + 10*time.Millisecond
	)
	e := ctStartEnv(t, "10000-10015", ctConntrack(conntrack.Timeouts{
		SynSent: time.Second, Established: 30 * time.Second, FinWait: finTO, Close: 100 * time.Millisecond,
	}, gc))

	start := time.Now()
	ends := make([]time.Time, conns)
	var slow int
	var slowest time.Duration
	for i := range conns {
		if i >= ports {
			time.Sleep(time.Until(ends[i-ports].Add(window)))
		}
		begin := time.Now()
		c, err := ctDial(t, e, ctService, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: dial: %v", i+1, err)
		}
		err = ctEchoLine(c, fmt.Sprintf("connection %d", i+1), 10*time.Second)
		c.Close()
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		ends[i] = time.Now()
		took := ends[i].Sub(begin)
		slowest = max(slowest, took)
		if took > 900*time.Millisecond {
			slow++
		}
	}
	t.Logf("%d connections through %d local ports in %s; %d took > 900ms (SYN dropped while all ports were held), slowest %s",
		conns, ports, time.Since(start).Round(time.Millisecond), slow, slowest.Round(time.Millisecond))

	left := ctConns(t, e, ctService)
	t.Logf("connections tracked right after the last one closed: %d", len(left))
	if len(left) > ports {
		t.Errorf("%d connections tracked, more than the %d local ports allow", len(left), ports)
	}
	// Within fin_wait + gc (and some slack) every one of them must go.
	deadline := time.Now().Add(2 * time.Second)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		left = ctConns(t, e, ctService)
	}
	if len(left) > 0 {
		t.Errorf("%d connections still tracked 2s after the last one closed (fin_wait %s, gc %s): %+v", len(left), finTO, gc, left)
	}

	st := ctStats(t, e)
	svc, err := service(st, ctName)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Traffic.NewConns != conns {
		t.Errorf("service %s: new_conns %d, want %d", ctName, svc.Traffic.NewConns, conns)
	}
	t.Logf("reasons[drop_ports_exhausted] = %d, reasons[drop_no_conn] = %d",
		ctReason(t, st, "drop_ports_exhausted"), ctReason(t, st, "drop_no_conn"))
}

// TestPortExhaustion holds all 4 local ports with open connections: a 5th
// connection cannot get a port and fails cleanly (its SYNs are dropped and
// counted) while the 4 keep working; once one of them closes and its FIN
// timeout has passed, a new connection gets the freed port.
func TestPortExhaustion(t *testing.T) {
	testbed.RequirePrivileges(t)
	const (
		finTO = 200 * time.Millisecond
		gc    = 50 * time.Millisecond
	)
	e := ctStartEnv(t, "10000-10003", ctConntrack(conntrack.Timeouts{FinWait: finTO}, gc))

	var open []net.Conn
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	for i := range 4 {
		c, err := ctDial(t, e, ctService, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: dial: %v", i+1, err)
		}
		open = append(open, c)
		if err := ctEchoLine(c, fmt.Sprintf("connection %d", i+1), 5*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
	if n := len(ctConns(t, e, ctService)); n != 4 {
		t.Errorf("%d connections tracked, want 4", n)
	}

	before := ctReason(t, ctStats(t, e), "drop_ports_exhausted")
	begin := time.Now()
	c, err := ctDial(t, e, ctService, 2500*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatalf("a 5th connection got through with all 4 local ports held (from %s)", c.LocalAddr())
	}
	t.Logf("5th connection failed after %s: %v", time.Since(begin).Round(time.Millisecond), err)
	if !ctIsTimeout(err) {
		t.Errorf("5th connection: %v, want a timeout (its SYNs dropped, not refused)", err)
	}
	after := ctReason(t, ctStats(t, e), "drop_ports_exhausted")
	t.Logf("reasons[drop_ports_exhausted]: %d -> %d", before, after)
	if after <= before {
		t.Errorf("reasons[drop_ports_exhausted] did not move (%d -> %d) although a SYN found every port held", before, after)
	}

	for i, c := range open {
		if err := ctEchoLine(c, fmt.Sprintf("connection %d again", i+1), 5*time.Second); err != nil {
			t.Fatalf("connection %d after the refused 5th: %v", i+1, err)
		}
	}

	open[0].Close()
	open = open[1:]
	time.Sleep(finTO + gc + 100*time.Millisecond)
	begin = time.Now()
	c, err = ctDial(t, e, ctService, 5*time.Second)
	if err != nil {
		t.Fatalf("new connection after one closed and fin_wait %s passed: %v", finTO, err)
	}
	open = append(open, c)
	if err := ctEchoLine(c, "new connection", 5*time.Second); err != nil {
		t.Fatalf("new connection: %v", err)
	}
	took := time.Since(begin)
	t.Logf("new connection on the freed port took %s", took.Round(time.Millisecond))
	if took > 900*time.Millisecond {
		t.Errorf("new connection took %s: its first SYN was dropped although a port had been freed", took)
	}
	for i, c := range open {
		if err := ctEchoLine(c, fmt.Sprintf("final %d", i), 5*time.Second); err != nil {
			t.Errorf("connection %d at the end: %v", i, err)
		}
	}
}

// ctIsTimeout tells whether err is a timeout (not, say, a refusal).
func ctIsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// TestTimeoutExpiry leaves an established connection idle for longer than
// its timeout: the collector removes it, and the client's next segment,
// no SYN, finds no connection and is dropped.
func TestTimeoutExpiry(t *testing.T) {
	testbed.RequirePrivileges(t)
	const (
		estTO = time.Second
		gc    = 100 * time.Millisecond
	)
	e := ctStartEnv(t, "", ctConntrack(conntrack.Timeouts{Established: estTO}, gc))

	c, err := ctDial(t, e, ctService, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := ctEchoLine(c, "hello", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if conns := ctConns(t, e, ctService); !ctListed(conns, c) {
		t.Fatalf("connection from %s not listed while active: %+v", c.LocalAddr(), conns)
	}

	time.Sleep(2 * estTO)
	if conns := ctConns(t, e, ctService); ctListed(conns, c) {
		t.Fatalf("connection from %s still listed after %s idle (established timeout %s, gc %s): %+v",
			c.LocalAddr(), 2*estTO, estTO, gc, conns)
	}

	before := ctReason(t, ctStats(t, e), "drop_no_conn")
	err = ctEchoLine(c, "anyone there?", time.Second)
	if err == nil {
		t.Fatal("the expired connection still carries data")
	}
	t.Logf("write on the expired connection: %v", err)
	after := ctReason(t, ctStats(t, e), "drop_no_conn")
	t.Logf("reasons[drop_no_conn]: %d -> %d", before, after)
	if after <= before {
		t.Errorf("reasons[drop_no_conn] did not move (%d -> %d) although the client sent on an expired connection", before, after)
	}
}

// TestEveryLocalPortUsed holds all 1,000 local ports of one backend with
// concurrent open connections: each must get a port at its first SYN (the
// earlier allocator, a random start and 64 probes, refused from about 70 %
// use), a 1,001st must fail with its SYNs counted as exhaustion, and once
// one connection has closed and expired, its port must be handed out again.
func TestEveryLocalPortUsed(t *testing.T) {
	testbed.RequirePrivileges(t)
	const (
		ports   = 1000
		dialers = 50
		finTO   = 200 * time.Millisecond
		gc      = 50 * time.Millisecond
	)
	// Client and echo server both live in this process: two descriptors a
	// connection. Go raises the soft limit to the hard one at start; if
	// that is still too low, dials would fail with EMFILE, not for ports.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if need := uint64(2*(ports+1) + 200); lim.Cur < need {
		t.Fatalf("RLIMIT_NOFILE is %d (hard %d), need %d for %d connections with their server ends", lim.Cur, lim.Max, need, ports+1)
	}
	e := ctStartEnv(t, "10000-10999", ctConntrack(conntrack.Timeouts{FinWait: finTO}, gc))

	open := make([]net.Conn, ports)
	t.Cleanup(func() {
		for _, c := range open {
			if c != nil {
				c.Close()
			}
		}
	})
	// each runs f(i) for every connection, dialers at a time, and returns
	// the errors by connection.
	each := func(f func(i int) error) []error {
		errs := make([]error, ports)
		next := make(chan int)
		var wg sync.WaitGroup
		for range dialers {
			wg.Go(func() {
				for i := range next {
					errs[i] = f(i)
				}
			})
		}
		for i := range ports {
			next <- i
		}
		close(next)
		wg.Wait()
		return errs
	}
	// failed reports the errors, and tells whether there were any.
	failed := func(what string, errs []error) bool {
		t.Helper()
		var n int
		for i, err := range errs {
			if err != nil {
				if n < 10 {
					t.Errorf("connection %d %s: %v", i+1, what, err)
				}
				n++
			}
		}
		if n > 0 {
			t.Errorf("%d of %d connections failed %s", n, ports, what)
		}
		return n > 0
	}

	before := ctReason(t, ctStats(t, e), "drop_ports_exhausted")
	took := make([]time.Duration, ports)
	begin := time.Now()
	errs := each(func(i int) error {
		start := time.Now()
		defer func() { took[i] = time.Since(start) }()
		c, err := ctDial(t, e, ctService, 5*time.Second)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		open[i] = c
		return ctEchoLine(c, fmt.Sprintf("connection %d", i+1), 5*time.Second)
	})
	t.Logf("%d concurrent connections (%d dialers) in %s, slowest %s",
		ports, dialers, time.Since(begin).Round(time.Millisecond), slices.Max(took).Round(time.Millisecond))
	after := ctReason(t, ctStats(t, e), "drop_ports_exhausted")
	if failed("opening", errs) {
		t.Fatalf("reasons[drop_ports_exhausted]: %d -> %d", before, after)
	}
	// Not even a first SYN may have been refused: a retransmission would
	// hide it from the dial.
	if after != before {
		t.Errorf("reasons[drop_ports_exhausted] moved (%d -> %d) while local ports were free", before, after)
	}

	conns := ctConns(t, e, ctService)
	if len(conns) != ports {
		t.Errorf("%d connections tracked, want %d", len(conns), ports)
	}
	local := make(map[netip.AddrPort]netip.AddrPort, len(conns)) // client -> local
	used := make(map[netip.AddrPort]bool, len(conns))
	for _, x := range conns {
		if p := x.Local.Port(); p < 10000 || p > 10999 {
			t.Errorf("connection from %s on local %s, outside 10000-10999", x.Client, x.Local)
		}
		if used[x.Local] {
			t.Errorf("local %s held by two connections", x.Local)
		}
		used[x.Local] = true
		local[x.Client] = x.Local
	}
	t.Logf("%d connections tracked on %d distinct local address:ports", len(conns), len(used))

	begin = time.Now()
	c, err := ctDial(t, e, ctService, 2500*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatalf("connection %d got through with all %d local ports held (from %s)", ports+1, ports, c.LocalAddr())
	}
	t.Logf("connection %d failed after %s: %v", ports+1, time.Since(begin).Round(time.Millisecond), err)
	if !ctIsTimeout(err) {
		t.Errorf("connection %d: %v, want a timeout (its SYNs dropped, not refused)", ports+1, err)
	}
	exhausted := ctReason(t, ctStats(t, e), "drop_ports_exhausted")
	t.Logf("reasons[drop_ports_exhausted]: %d -> %d", after, exhausted)
	if exhausted <= after {
		t.Errorf("reasons[drop_ports_exhausted] did not move (%d -> %d) although a SYN found every port held", after, exhausted)
	}

	if failed("after the refused one", each(func(i int) error {
		return ctEchoLine(open[i], fmt.Sprintf("connection %d again", i+1), 5*time.Second)
	})) {
		t.FailNow()
	}

	client := open[0].LocalAddr().(*net.TCPAddr).AddrPort()
	freed := local[netip.AddrPortFrom(client.Addr().Unmap(), client.Port())]
	open[0].Close()
	time.Sleep(finTO + gc + 100*time.Millisecond)
	begin = time.Now()
	c, err = ctDial(t, e, ctService, 5*time.Second)
	if err != nil {
		t.Fatalf("new connection after one closed and fin_wait %s passed: %v", finTO, err)
	}
	open[0] = c
	if err := ctEchoLine(c, "new connection", 5*time.Second); err != nil {
		t.Fatalf("new connection: %v", err)
	}
	d := time.Since(begin)
	t.Logf("new connection took %s", d.Round(time.Millisecond))
	if d > 900*time.Millisecond {
		t.Errorf("new connection took %s: its first SYN was dropped although a port had been freed", d)
	}
	client = c.LocalAddr().(*net.TCPAddr).AddrPort()
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	var got netip.AddrPort
	for _, x := range ctConns(t, e, ctService) {
		if x.Client == client {
			got = x.Local
		}
	}
	t.Logf("freed local %s, new connection's local %s", freed, got)
	if !freed.IsValid() || got != freed {
		t.Errorf("new connection on local %s, want the freed %s (the only free one)", got, freed)
	}
}
