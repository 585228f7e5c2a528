package e2e

import (
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// Before the hand-over: the stream service, and a second service on the
// same backend address that nobody uses.
const handoverBefore = restartServices + `  - name: idle
    vip: 172.19.0.10
    port: 7200
    protocol: tcp
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`

// After: a service added in front (a daemon numbering ids afresh in
// config order would give it the ids the streams' connections carry), and
// a backend removed from the idle service.
const handoverAfter = `  - name: added
    vip: 172.19.0.10
    port: 7300
    protocol: tcp
    backends:
      - address: 172.19.0.3
      - address: 172.19.0.2
` + restartServices + `  - name: idle
    vip: 172.19.0.10
    port: 7200
    protocol: tcp
    backends:
      - address: 172.19.0.3
`

// TestHandOverWithChangedConfig: a SIGUSR2 hand-over to a daemon with a
// changed configuration breaks no connection, and the traffic of the
// connections opened before it is counted under their own backends: every
// packet of the stream service under exactly one of its backends, none
// under the services that carried nothing. A final SIGTERM leaves no
// address, pin, program or neighbour entry behind.
func TestHandOverWithChangedConfig(t *testing.T) {
	e := newEnv(t, "native")
	serveTCP(t, e.ref.RS1, ":7100", ctEchoConn)
	serveTCP(t, e.ref.RS2, ":7100", ctEchoConn)
	dir := e.startServices(t, handoverBefore)
	streams := openRestartStreams(t, e, restartService, 8)
	waitRestartStreams(t, streams, "before the hand-over")

	handOver(t, e, dir, demo.Setup{Mode: e.mode, Dir: dir, Services: handoverAfter}.YAML())
	waitRestartStreams(t, streams, "after the hand-over")
	streams.finish(t)

	st, err := e.bal.API.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Services {
		var sum api.Traffic
		for _, b := range s.Backends {
			sum.PacketsIn += b.Traffic.PacketsIn
			sum.PacketsOut += b.Traffic.PacketsOut
			sum.NewConns += b.Traffic.NewConns
		}
		switch s.Name {
		case "stream":
			if s.Traffic.NewConns != 8 || sum.NewConns != 8 {
				t.Errorf("stream: %d new connections, %d under its backends; want 8 and 8", s.Traffic.NewConns, sum.NewConns)
			}
			if sum.PacketsIn != s.Traffic.PacketsIn || sum.PacketsOut != s.Traffic.PacketsOut {
				t.Errorf("stream: its backends counted %d/%d packets in/out, the service %d/%d",
					sum.PacketsIn, sum.PacketsOut, s.Traffic.PacketsIn, s.Traffic.PacketsOut)
			}
		default:
			if s.Traffic != (api.Traffic{}) || sum != (api.Traffic{}) {
				t.Errorf("%s carried nothing, but counts %+v and its backends %+v", s.Name, s.Traffic, sum)
			}
		}
	}
	if t.Failed() {
		t.Logf("counters: %+v", st)
	}
	stopAndCheckClean(t, e, dir)
}

// TestKilledDaemonCleanedUpByTheNext: a daemon killed with SIGKILL leaves
// its datapath and host changes; the next one takes them over, and its
// SIGTERM removes all of them, the neighbour entries the first one made
// included.
func TestKilledDaemonCleanedUpByTheNext(t *testing.T) {
	e := newEnv(t, "native")
	var dir string
	t.Cleanup(func() {
		if dir != "" {
			os.RemoveAll(demo.PinPath(dir))
		}
	})
	config := func(d string) string {
		dir = d
		return demo.ReferenceConfig(e.mode, d)
	}
	e.start(t, config)
	if got := xdplbNeighbours(t, e.ref.LB); len(got) == 0 {
		t.Fatal("the balancer made no neighbour entry for its backends; the test would prove nothing")
	}
	if err := e.bal.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	e.bal.Proc.Wait()
	bal, err := demo.StartBalancer(t.Context(), e.ref.LB, xdplbBin, dir, config(dir), e.logs)
	if err != nil {
		t.Fatalf("start after SIGKILL: %v", err)
	}
	e.bal = bal
	stopAndCheckClean(t, e, dir)
}

// handOver sends SIGUSR2 to the running balancer and starts the next one
// with config in the same directory.
func handOver(t *testing.T, e *env, dir, config string) {
	t.Helper()
	old := e.bal
	if err := old.Proc.Cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.Proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("balancer still running 10s after SIGUSR2")
	}
	bal, err := demo.StartBalancer(t.Context(), e.ref.LB, xdplbBin, dir, config, e.logs)
	if err != nil {
		t.Fatalf("start the next balancer: %v", err)
	}
	e.bal = bal
}

// stopAndCheckClean stops the balancer with SIGTERM and checks that the
// lb host has none of what it added.
func stopAndCheckClean(t *testing.T, e *env, dir string) {
	t.Helper()
	if err := e.stop(); err != nil {
		t.Fatalf("stop balancer (SIGTERM): %v", err)
	}
	after := readLBState(t, e.ref.LB)
	if after.xdpAttached() {
		t.Errorf("after SIGTERM: XDP program still attached: %+v", after.xdp)
	}
	if after.has(testbed.ReferenceVIP) {
		t.Errorf("after SIGTERM: VIP %s still on eth0", testbed.ReferenceVIP)
	}
	if _, err := os.Stat(demo.PinPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after SIGTERM: pinned state %s: %v, want it removed", demo.PinPath(dir), err)
	}
	if got := xdplbNeighbours(t, e.ref.LB); len(got) > 0 {
		t.Errorf("after SIGTERM: neighbour entries of the backends left behind: %v", got)
	}
}

// xdplbNeighbours lists the neighbour entries for the reference backends
// on the lb host: the balancer makes them; nothing else on the lb talks to
// the backends in these tests.
func xdplbNeighbours(t *testing.T, lb *testbed.Host) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	err := lb.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		neighs, err := netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, n := range neighs {
			ip, _ := netip.AddrFromSlice(n.IP)
			if ip = ip.Unmap(); ip == testbed.ReferenceRS1 || ip == testbed.ReferenceRS2 {
				out = append(out, ip)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list neighbours on %s: %v", lb, err)
	}
	return out
}

// TestHandOverAfterRuntimeRemoval: a backend removed at runtime keeps its
// connections, and its id stays theirs across a hand-over: a backend added
// with the hand-over counts none of their traffic.
func TestHandOverAfterRuntimeRemoval(t *testing.T) {
	e := newEnv(t, "native")
	serveTCP(t, e.ref.RS1, ":7100", ctEchoConn)
	serveTCP(t, e.ref.RS2, ":7100", ctEchoConn)
	dir := e.startServices(t, restartServices)
	streams := openRestartStreams(t, e, restartService, 4)
	waitRestartStreams(t, streams, "at the start")
	schedMustCLI(t, e, "backend", "remove", "stream", "172.19.0.3:7100")
	waitRestartStreams(t, streams, "after rs2 was removed")

	handOver(t, e, dir, demo.Setup{Mode: e.mode, Dir: dir, Services: `  - name: stream
    vip: 172.19.0.10
    port: 7100
    protocol: tcp
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.2
        port: 7101
`}.YAML())
	waitRestartStreams(t, streams, "after the hand-over")
	streams.finish(t)

	st, err := e.bal.API.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range st.Services[0].Backends {
		if b.Address == "172.19.0.2:7101" && b.Traffic != (api.Traffic{}) {
			t.Errorf("the backend added with the hand-over counts %+v; nothing was sent to it", b.Traffic)
		}
	}
}
