package health

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/ident"
	"github.com/xdplb/xdplb/internal/testbed"
)

// fakeNet is a DialContext whose backends are up unless marked down.
type fakeNet struct {
	mu    sync.Mutex
	down  map[string]bool
	dials map[string]int
}

func newFakeNet() *fakeNet {
	return &fakeNet{down: map[string]bool{}, dials: map[string]int{}}
}

func (f *fakeNet) set(addr netip.AddrPort, up bool) {
	f.mu.Lock()
	f.down[addr.String()] = !up
	f.mu.Unlock()
}

func (f *fakeNet) dialCount(addr netip.AddrPort) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dials[addr.String()]
}

func (f *fakeNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	down := f.down[addr]
	f.dials[addr]++
	f.mu.Unlock()
	if down {
		return nil, fmt.Errorf("dial %s %s: connection refused (fake)", network, addr)
	}
	c, s := net.Pipe()
	s.Close()
	return c, nil
}

// changes collects OnChange calls.
type changes struct {
	mu  sync.Mutex
	all []Change
	ch  chan Change
}

func newChanges() *changes { return &changes{ch: make(chan Change, 1000)} }

func (c *changes) on(ch Change) {
	c.mu.Lock()
	c.all = append(c.all, ch)
	c.mu.Unlock()
	c.ch <- ch
}

func (c *changes) next(t *testing.T, timeout time.Duration) Change {
	t.Helper()
	select {
	case ch := <-c.ch:
		return ch
	case <-time.After(timeout):
		t.Fatalf("no change within %v", timeout)
		return Change{}
	}
}

func (c *changes) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ch := <-c.ch:
		t.Fatalf("unexpected change %+v", ch)
	case <-time.After(d):
	}
}

// run starts m.Run and stops it (checking it returns) when the test ends.
func run(t *testing.T, m *Monitor) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return cancel
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stateOf(m *Monitor, service ident.Service, addr netip.AddrPort) (State, bool) {
	for _, s := range m.States() {
		if s.Target.Service == service && s.Target.Addr == addr {
			return s, true
		}
	}
	return State{}, false
}

var fast = Spec{Interval: 20 * time.Millisecond, Timeout: 50 * time.Millisecond}

func TestMonitorTransitions(t *testing.T) {
	fn := newFakeNet()
	ch := newChanges()
	var logs testbed.LogBuffer
	m := New(Options{
		DialContext: fn.dial,
		OnChange:    ch.on,
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
	})
	a := netip.MustParseAddrPort("10.0.0.1:80")
	b := netip.MustParseAddrPort("10.0.0.2:80")
	if err := m.SetTargets([]Target{{Service: webKey, Addr: a, Spec: fast}, {Service: webKey, Addr: b, Spec: fast}}); err != nil {
		t.Fatal(err)
	}
	run(t, m)
	waitFor(t, 2*time.Second, "first probes", func() bool {
		sa, _ := stateOf(m, webKey, a)
		sb, _ := stateOf(m, webKey, b)
		return sa.Checks > 0 && sb.Checks > 0
	})
	ch.none(t, 50*time.Millisecond) // up from the start, and staying up

	fn.set(a, false)
	c := ch.next(t, 2*time.Second)
	if c.Up || c.Target.Addr != a || c.Target.Service != webKey || !strings.Contains(c.Reason, "connection refused (fake)") {
		t.Fatalf("change %+v, want web %s down, refused", c, a)
	}
	s, _ := stateOf(m, webKey, a)
	if s.Up || !s.Since.Equal(c.Since) || !strings.Contains(s.LastError, "refused") || s.Failures < 2 {
		t.Errorf("state after going down: %+v", s)
	}
	if sb, _ := stateOf(m, webKey, b); !sb.Up || sb.LastError != "" {
		t.Errorf("the healthy target: %+v", sb)
	}

	fn.set(a, true)
	c = ch.next(t, 2*time.Second)
	if !c.Up || c.Target.Addr != a || c.Reason != "2 consecutive checks passed" {
		t.Fatalf("change %+v, want web %s up", c, a)
	}
	ch.none(t, 50*time.Millisecond)

	out := logs.String()
	for _, want := range []string{
		`level=INFO msg="backend down" service=172.19.0.10:80/tcp backend=10.0.0.1:80 check=tcp reason="dial tcp 10.0.0.1:80: connection refused (fake)"`,
		`level=INFO msg="backend up" service=172.19.0.10:80/tcp backend=10.0.0.1:80 check=tcp reason="2 consecutive checks passed"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s\nlog:\n%s", want, out)
		}
	}
}

func TestMonitorInitialDown(t *testing.T) {
	fn := newFakeNet()
	ch := newChanges()
	m := New(Options{DialContext: fn.dial, OnChange: ch.on})
	a := netip.MustParseAddrPort("10.0.0.1:80")
	spec := fast
	spec.Initial = InitialDown
	if err := m.SetTargets([]Target{{Service: webKey, Addr: a, Spec: spec}}); err != nil {
		t.Fatal(err)
	}
	if s, _ := stateOf(m, webKey, a); s.Up || s.Checks != 0 {
		t.Fatalf("before Run: %+v, want down and unchecked", s)
	}
	run(t, m)
	if c := ch.next(t, 2*time.Second); !c.Up {
		t.Fatalf("change %+v, want up", c)
	}
	if s, _ := stateOf(m, webKey, a); s.Checks != 2 {
		t.Errorf("came up after %d checks, want rise = 2", s.Checks)
	}
}

// TestMonitorPoolBound runs 500 targets against one loopback listener
// and measures, in the DialContext, how many probes are in flight.
func TestMonitorPoolBound(t *testing.T) {
	const targets, pool = 500, 16
	addr := tcpListener(t)
	var inflight, peak atomic.Int64
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond) // make probes overlap
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}
	m := New(Options{DialContext: dial, MaxConcurrent: pool})
	var ts []Target
	for i := range targets {
		ts = append(ts, Target{svcKey(i), addr, Spec{Interval: 100 * time.Millisecond, Timeout: time.Second}, nil})
	}
	if err := m.SetTargets(ts); err != nil {
		t.Fatal(err)
	}
	run(t, m)
	waitFor(t, 20*time.Second, "every target probed twice", func() bool {
		for _, s := range m.States() {
			if s.Checks < 2 {
				return false
			}
		}
		return true
	})
	if p := peak.Load(); p > pool {
		t.Errorf("%d probes in flight at once, pool is %d", p, pool)
	} else if p < 2 {
		t.Errorf("peak of %d probes in flight: no concurrency at all", p)
	} else {
		t.Logf("peak %d probes in flight (pool %d)", p, pool)
	}
	for _, s := range m.States() {
		if !s.Up || s.Failures > 0 {
			t.Fatalf("%+v: a reachable target failed", s)
		}
	}
}

// TestMonitorNoOverlap checks that a target whose probes take longer
// than its interval is never probed twice at once.
func TestMonitorNoOverlap(t *testing.T) {
	var inflight, peak atomic.Int64
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		c, s := net.Pipe()
		s.Close()
		return c, nil
	}
	m := New(Options{DialContext: dial})
	a := netip.MustParseAddrPort("10.0.0.1:80")
	if err := m.SetTargets([]Target{{Service: webKey, Addr: a, Spec: Spec{Interval: 10 * time.Millisecond, Timeout: time.Second}}}); err != nil {
		t.Fatal(err)
	}
	run(t, m)
	waitFor(t, 2*time.Second, "five probes", func() bool { s, _ := stateOf(m, webKey, a); return s.Checks >= 5 })
	if p := peak.Load(); p != 1 {
		t.Errorf("%d probes of one target in flight at once", p)
	}
}

// TestMonitorJitter checks that the first probes of many targets are
// spread over the interval rather than fired at once.
func TestMonitorJitter(t *testing.T) {
	const targets = 1000
	const interval = 400 * time.Millisecond
	var mu sync.Mutex
	var first []time.Duration
	var start time.Time
	var count atomic.Int64
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		if count.Add(1) <= targets {
			mu.Lock()
			first = append(first, time.Since(start))
			mu.Unlock()
		}
		c, s := net.Pipe()
		s.Close()
		return c, nil
	}
	m := New(Options{DialContext: dial})
	var ts []Target
	for i := range targets {
		ts = append(ts, Target{svcKey(i), netip.MustParseAddrPort("10.0.0.1:80"), Spec{Interval: interval}, nil})
	}
	if err := m.SetTargets(ts); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	run(t, m)
	waitFor(t, 5*time.Second, "every first probe", func() bool { return count.Load() >= targets })
	mu.Lock()
	defer mu.Unlock()
	early := 0
	var last time.Duration
	for _, d := range first {
		if d < interval/10 {
			early++
		}
		last = max(last, d)
	}
	// Uniform spreading puts ~10% in the first tenth of the interval.
	if early > targets*3/10 {
		t.Errorf("%d of %d first probes within %v of the start", early, targets, interval/10)
	}
	if last < interval/2 {
		t.Errorf("all first probes within %v of the start, want them spread over %v", last, interval)
	}
}

func TestSetTargetsDiff(t *testing.T) {
	fn := newFakeNet()
	ch := newChanges()
	m := New(Options{DialContext: fn.dial, OnChange: ch.on})
	a := netip.MustParseAddrPort("10.0.0.1:80")
	b := netip.MustParseAddrPort("10.0.0.2:80")
	c := netip.MustParseAddrPort("10.0.0.3:80")
	d := netip.MustParseAddrPort("10.0.0.4:80")
	if err := m.SetTargets([]Target{{Service: webKey, Addr: a, Spec: fast}, {Service: webKey, Addr: b, Spec: fast}, {Service: webKey, Addr: c, Spec: fast}}); err != nil {
		t.Fatal(err)
	}
	run(t, m)

	// a goes down and stays down.
	fn.set(a, false)
	if ch := ch.next(t, 2*time.Second); ch.Up || ch.Target.Addr != a {
		t.Fatalf("change %+v, want %s down", ch, a)
	}
	before := map[netip.AddrPort]State{}
	for _, s := range m.States() {
		before[s.Target.Addr] = s
	}

	// Keep a (same Spec, written differently: defaults spelled out),
	// change b's Spec, drop c, add d.
	same := fast
	same.Kind, same.Rise, same.Fall, same.Initial = KindTCP, 2, 2, InitialUp
	changed := fast
	changed.Rise = 5
	if err := m.SetTargets([]Target{{Service: webKey, Addr: a, Spec: same}, {Service: webKey, Addr: b, Spec: changed}, {Service: webKey, Addr: d, Spec: fast}}); err != nil {
		t.Fatal(err)
	}
	// c going down now must not be reported: it is no longer a target.
	fn.set(c, false)

	after := map[netip.AddrPort]State{}
	for _, s := range m.States() {
		after[s.Target.Addr] = s
	}
	if len(after) != 3 {
		t.Fatalf("%d targets after SetTargets, want 3: %+v", len(after), after)
	}
	if _, ok := after[c]; ok {
		t.Error("removed target still listed")
	}
	if s := after[a]; s.Up || !s.Since.Equal(before[a].Since) || s.Checks < before[a].Checks || s.LastError == "" {
		t.Errorf("unchanged target lost its state: before %+v, after %+v", before[a], s)
	}
	if s := after[b]; !s.Up || !s.Since.Equal(before[b].Since) || s.Target.Spec.Rise != 5 {
		t.Errorf("changed target: before %+v, after %+v; want up since the same time, rise 5", before[b], s)
	}
	if s := after[d]; !s.Up || s.Checks != 0 {
		t.Errorf("new target %+v, want up and not yet checked", s)
	}
	waitFor(t, 2*time.Second, "the new target probed", func() bool { return fn.dialCount(d) > 0 })

	// The removed target is no longer probed.
	n := fn.dialCount(c)
	ch.none(t, 200*time.Millisecond)
	if fn.dialCount(c) > n+1 { // at most one probe was in flight
		t.Errorf("removed target still probed: %d dials, then %d", n, fn.dialCount(c))
	}
	// The unchanged target keeps being checked, and recovers as usual.
	fn.set(a, true)
	if ch := ch.next(t, 2*time.Second); !ch.Up || ch.Target.Addr != a {
		t.Fatalf("change %+v, want %s up", ch, a)
	}
	// The changed target follows its new fall.
	fn.set(b, false)
	if ch := ch.next(t, 2*time.Second); ch.Up || ch.Target.Addr != b {
		t.Fatalf("change %+v, want %s down", ch, b)
	}
}

func TestSetTargetsErrors(t *testing.T) {
	m := New(Options{})
	a := netip.MustParseAddrPort("10.0.0.1:80")
	if err := m.SetTargets([]Target{{Service: webKey, Addr: a, Spec: Spec{}}}); err != nil {
		t.Fatal(err)
	}
	err := m.SetTargets([]Target{
		{webKey, a, Spec{}, nil},
		{webKey, a, Spec{}, nil},
		{webKey, netip.MustParseAddrPort("10.0.0.2:80"), Spec{Kind: "icmp"}, nil},
		{webKey, netip.AddrPort{}, Spec{}, nil},
	})
	if err == nil {
		t.Fatal("SetTargets accepted invalid targets")
	}
	for _, want := range []string{
		`target 1 (service 172.19.0.10:80/tcp, backend 10.0.0.1:80): listed twice`,
		`target 2 (service 172.19.0.10:80/tcp, backend 10.0.0.2:80): health.kind: "icmp" is not a check kind (tcp, http, https, udp, exec)`,
		`target 3 (service 172.19.0.10:80/tcp, backend invalid AddrPort): the address is not an IP address and port`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if s := m.States(); len(s) != 1 || s[0].Target.Addr != a {
		t.Errorf("a failed SetTargets changed the targets: %+v", s)
	}
}

func TestStatesSortedAndCopied(t *testing.T) {
	m := New(Options{})
	truePath := lookPath(t, "true")
	spec := Spec{Kind: KindExec, Command: []string{truePath}}
	if err := m.SetTargets([]Target{
		{svcKey(1), netip.MustParseAddrPort("10.0.0.1:80"), spec, nil},
		{svcKey(0), netip.MustParseAddrPort("10.0.0.2:80"), spec, nil},
		{svcKey(0), netip.MustParseAddrPort("10.0.0.1:81"), spec, nil},
	}); err != nil {
		t.Fatal(err)
	}
	spec.Command[0] = "false" // the Monitor holds its own copy
	s := m.States()
	var got []string
	for _, st := range s {
		got = append(got, st.Target.Service.String()+" "+st.Target.Addr.String())
	}
	if want := "172.19.0.10:1/tcp 10.0.0.1:81,172.19.0.10:1/tcp 10.0.0.2:80,172.19.0.10:2/tcp 10.0.0.1:80"; strings.Join(got, ",") != want {
		t.Errorf("States order %q, want %q", got, want)
	}
	s[0].Target.Spec.Command[0] = "rm"
	if st := m.States(); st[0].Target.Spec.Command[0] != truePath || st[0].Target.Spec.Interval != DefaultInterval {
		t.Errorf("States exposes the Monitor's Spec or lacks defaults: %+v", st[0].Target.Spec)
	}
}

// TestRunStops checks that Run returns promptly when its context ends,
// with probes in flight, that those probes are not counted as failures,
// and that Run refuses to run twice at once.
func TestRunStops(t *testing.T) {
	var started, probes atomic.Int64
	var hanging atomic.Bool
	hanging.Store(true)
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		probes.Add(1)
		if hanging.Load() {
			started.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		c, s := net.Pipe()
		s.Close()
		return c, nil
	}
	ch := newChanges()
	m := New(Options{DialContext: dial, OnChange: ch.on, MaxConcurrent: 4})
	var ts []Target
	for i := range 10 {
		ts = append(ts, Target{webKey, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 80),
			Spec{Interval: 10 * time.Millisecond, Timeout: 10 * time.Second, Fall: 1}, nil})
	}
	if err := m.SetTargets(ts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	waitFor(t, 2*time.Second, "the pool busy", func() bool { return started.Load() >= 4 })
	if err := m.Run(ctx); err == nil {
		t.Error("a second concurrent Run returned nil")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel")
	}
	if started.Load() != 4 {
		t.Errorf("%d probes started with a pool of 4", started.Load())
	}
	for _, s := range m.States() {
		if !s.Up || s.Checks != 0 {
			t.Errorf("probe cut by shutdown was counted: %+v", s)
		}
	}
	ch.mu.Lock()
	if len(ch.all) != 0 {
		t.Errorf("changes at shutdown: %+v", ch.all)
	}
	ch.mu.Unlock()

	// Run again: probing resumes, for every target.
	hanging.Store(false)
	run(t, m)
	waitFor(t, 2*time.Second, "every target probed after a restart", func() bool {
		for _, s := range m.States() {
			if s.Checks == 0 {
				return false
			}
		}
		return true
	})
}

// TestMonitorUDPHook checks that UDP checks make their sockets with
// Options.ListenPacket, and run end to end against a loopback server.
func TestMonitorUDPHook(t *testing.T) {
	echo := udpServer(t, func(b []byte) []byte { return b })
	silent := udpServer(t, nil)
	var calls atomic.Int64
	listen := func(ctx context.Context, network, addr string) (net.PacketConn, error) {
		calls.Add(1)
		return (&net.ListenConfig{}).ListenPacket(ctx, network, addr)
	}
	ch := newChanges()
	m := New(Options{ListenPacket: listen, OnChange: ch.on})
	spec := Spec{Kind: KindUDP, Payload: "ping", Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond}
	if err := m.SetTargets([]Target{{Service: dnsKey, Addr: echo, Spec: spec}, {Service: dnsKey, Addr: silent, Spec: spec}}); err != nil {
		t.Fatal(err)
	}
	run(t, m)
	c := ch.next(t, 2*time.Second)
	if c.Up || c.Target.Addr != silent || !strings.Contains(c.Reason, "no answer within 200ms") {
		t.Fatalf("change %+v, want the silent server down", c)
	}
	if s, _ := stateOf(m, dnsKey, echo); !s.Up || s.Checks == 0 || s.Failures != 0 {
		t.Errorf("echo server: %+v", s)
	}
	if calls.Load() == 0 {
		t.Error("ListenPacket hook not used")
	}
}
