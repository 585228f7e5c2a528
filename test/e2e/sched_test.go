package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/conntrack"
	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// The scheduler and CLI tests: wrr's split, maglev's mapping across
// restarts and balancers, draining a backend and changing services while
// traffic flows, all driven through the real CLI where an operator would.

const (
	schedVIP   = "172.19.0.10"
	schedEcho  = "172.19.0.10:7000"
	schedExtra = "172.19.0.10:7100"
)

// TestWeightedRoundRobin: with wrr and weights 3:1, 400 new connections
// split 300:100 (smooth wrr makes it exact over every turn of the ring).
func TestWeightedRoundRobin(t *testing.T) {
	const requests = 400
	e := newEnv(t, "native")
	e.start(t, func(dir string) string {
		return demo.Setup{Mode: e.mode, Dir: dir, Services: `  - name: web
    vip: 172.19.0.10
    port: 80
    protocol: tcp
    scheduler: wrr
    backends:
      - address: 172.19.0.2
        weight: 3
      - address: 172.19.0.3
        weight: 1
`}.YAML()
	})

	client := e.ref.Client.HTTPClient(false)
	counts := map[string]int{}
	var seq strings.Builder
	for i := range requests {
		body, err := httpGet(t.Context(), client, webURL)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		counts[body]++
		if i < 16 {
			seq.WriteString(strings.TrimPrefix(body, "rs-"))
		}
	}
	t.Logf("wrr 3:1 over %d new connections: rs-1 %d, rs-2 %d (first 16 answers: %s)",
		requests, counts["rs-1"], counts["rs-2"], seq.String())
	if len(counts) != 2 {
		t.Errorf("answers by body: %v, want only rs-1 and rs-2", counts)
	}
	for body, want := range map[string]int{"rs-1": requests * 3 / 4, "rs-2": requests / 4} {
		if got := counts[body]; got < want-requests/20 || got > want+requests/20 {
			t.Errorf("%s answered %d of %d, want %d ± %d", body, got, requests, want, requests/20)
		}
	}
	svc, err := service(ctStats(t, e), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Backends) == 2 {
		t.Logf("counters: rs1 new_conns %d, rs2 new_conns %d",
			svc.Backends[0].Traffic.NewConns, svc.Backends[1].Traffic.NewConns)
	}
}

// schedMaglevServices is a maglev service over four backends: two ports on
// each real server, each answering its own name.
const schedMaglevServices = `  - name: hash
    vip: 172.19.0.10
    port: 8000
    protocol: tcp
    scheduler: maglev
    backends:
      - address: 172.19.0.2
        port: 8001
      - address: 172.19.0.2
        port: 8002
      - address: 172.19.0.3
        port: 8003
      - address: 172.19.0.3
        port: 8004
`

const (
	schedMaglevVIP   = "172.19.0.10:8000"
	schedMaglevPorts = 200
	// schedMaglevBase is the first client source port. Below the client's
	// ephemeral range, so nothing else ever takes these ports.
	schedMaglevBase = 20000
)

// schedMaglevConntrack makes the balancer forget closed connections fast,
// so the same client tuples can come again as new connections.
var schedMaglevConntrack = ctConntrack(conntrack.Timeouts{
	FinWait: 200 * time.Millisecond, Close: 200 * time.Millisecond,
}, 50*time.Millisecond)

func schedMaglevConfig(dir string) string {
	return demo.Setup{Mode: "native", Dir: dir, Services: schedMaglevServices, Extra: schedMaglevConntrack}.YAML()
}

// schedServeMaglevBackends starts the four named servers of
// schedMaglevServices on ref's real servers.
func schedServeMaglevBackends(t *testing.T, ref *testbed.Reference) {
	t.Helper()
	for _, b := range []struct {
		host *testbed.Host
		port int
	}{{ref.RS1, 8001}, {ref.RS1, 8002}, {ref.RS2, 8003}, {ref.RS2, 8004}} {
		serveTCP(t, b.host, fmt.Sprintf(":%d", b.port), schedNameConn(fmt.Sprintf("%s:%d", b.host.Addr, b.port)))
	}
}

// schedNameConn answers a connection with name and a newline, then waits
// until the client goes away (it resets the connection: that is no error).
func schedNameConn(name string) func(net.Conn) error {
	return func(c net.Conn) error {
		if _, err := io.WriteString(c, name+"\n"); err != nil {
			return fmt.Errorf("send name: %w", err)
		}
		io.Copy(io.Discard, c)
		return nil
	}
}

// TestMaglevConsistency: maglev sends a client 5-tuple to the same backend
// on a later connection, after a restart keeping the datapath (SIGUSR2),
// after a full stop and a fresh start, and on a second, independent
// balancer with the same configuration.
func TestMaglevConsistency(t *testing.T) {
	e := newEnv(t, "native")
	schedServeMaglevBackends(t, e.ref)
	var dir string
	t.Cleanup(func() {
		if dir != "" {
			os.RemoveAll(demo.PinPath(dir))
		}
	})
	e.start(t, func(d string) string { dir = d; return schedMaglevConfig(d) })

	first := schedMaglevRound(t, e)
	counts := map[string]int{}
	for _, b := range first {
		counts[b]++
	}
	t.Logf("round 1: %d source ports over the backends: %v", len(first), counts)
	if len(counts) != 4 {
		t.Errorf("round 1: %d backends got connections, want all 4: %v", len(counts), counts)
	}
	for b, n := range counts {
		// 50 expected; a hash falls this far off only if it is broken.
		if n < 20 || n > 85 {
			t.Errorf("round 1: backend %s got %d of %d source ports, far from the even %d",
				b, n, schedMaglevPorts, schedMaglevPorts/4)
		}
	}

	compare := func(when string, e *env) {
		t.Helper()
		schedWaitNoConns(t, e, schedMaglevVIP, when)
		got := schedMaglevRound(t, e)
		same := 0
		for i := range first {
			if got[i] == first[i] {
				same++
			} else if schedMaglevPorts-same <= 5 || i < 5 {
				t.Errorf("%s: source port %d went to %s, in round 1 to %s", when, schedMaglevBase+i, got[i], first[i])
			}
		}
		t.Logf("%s: %d of %d source ports went to the same backend as in round 1", when, same, schedMaglevPorts)
		if same != schedMaglevPorts {
			t.Errorf("%s: %d of %d source ports changed backend", when, schedMaglevPorts-same, schedMaglevPorts)
		}
	}

	compare("same balancer, connections expired", e)

	schedRestart(t, e, dir, schedMaglevConfig(dir))
	compare("after a restart keeping the datapath (SIGUSR2)", e)

	if err := e.stop(); err != nil {
		t.Fatalf("stop balancer (SIGTERM): %v", err)
	}
	if _, err := os.Stat(demo.PinPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after SIGTERM: pinned state %s: %v, want it removed", demo.PinPath(dir), err)
	}
	fresh := &env{mode: e.mode, ref: e.ref, logs: e.logs}
	fresh.start(t, schedMaglevConfig)
	compare("after a full stop and a fresh start", fresh)
	if err := fresh.stop(); err != nil {
		t.Fatalf("stop the fresh balancer (SIGTERM): %v", err)
	}

	other := newEnv(t, "native")
	schedServeMaglevBackends(t, other.ref)
	other.start(t, schedMaglevConfig)
	compare("on a second, independent balancer", other)
}

// schedMaglevRound connects once from each of the client source ports
// schedMaglevBase.. in turn and returns the backend each got. Every
// connection is reset by the client when done, so no side keeps its tuple
// (no TIME_WAIT) and the port can be used again at once.
func schedMaglevRound(t *testing.T, e *env) []string {
	t.Helper()
	out := make([]string, schedMaglevPorts)
	for i := range out {
		port := schedMaglevBase + i
		c, err := schedDialFrom(t.Context(), e.ref.Client, port, schedMaglevVIP, 5*time.Second)
		if err != nil {
			t.Fatalf("source port %d: dial %s: %v", port, schedMaglevVIP, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		name, err := bufio.NewReader(c).ReadString('\n')
		c.SetLinger(0)
		c.Close()
		if err != nil {
			t.Fatalf("source port %d: read the backend's name: %v", port, err)
		}
		out[i] = strings.TrimSpace(name)
	}
	return out
}

// schedDialFrom connects from host's address and source port port to addr,
// from inside host's namespace.
func schedDialFrom(ctx context.Context, host *testbed.Host, port int, addr string, timeout time.Duration) (*net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var c net.Conn
	err := host.Do(func() (err error) {
		d := net.Dialer{
			LocalAddr:     &net.TCPAddr{IP: host.Addr.AsSlice(), Port: port},
			FallbackDelay: -1,
			Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
				}); err != nil {
					return err
				}
				return serr
			},
		}
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// schedWaitNoConns waits until the balancer tracks no connection of svc.
func schedWaitNoConns(t *testing.T, e *env, svc, when string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conns := ctConns(t, e, svc)
		if len(conns) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d connections of %s still tracked 5s after the last one was reset: %+v",
				when, len(conns), svc, conns[:min(len(conns), 5)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// schedRestart sends the running balancer SIGUSR2 (exit, keeping the
// pinned datapath) and starts a new one in the same dir with config,
// which is written to the config file first.
func schedRestart(t *testing.T, e *env, dir, config string) {
	t.Helper()
	old := e.bal
	if err := old.Proc.Cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatalf("SIGUSR2: %v", err)
	}
	select {
	case <-old.Proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("balancer still running 10s after SIGUSR2")
	}
	if err := old.Proc.Wait(); err != nil {
		t.Fatalf("balancer exited after SIGUSR2: %v, want exit status 0", err)
	}
	bal, err := demo.StartBalancer(t.Context(), e.ref.LB, xdplbBin, dir, config, e.logs)
	if err != nil {
		t.Fatalf("start the balancer again after SIGUSR2: %v", err)
	}
	e.bal = bal // the test's cleanup stops this one
}

// schedCLI runs the xdplb CLI against the balancer's API socket, from the
// root namespace (the socket is a file, reachable from anywhere).
func schedCLI(t *testing.T, e *env, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	var o, s bytes.Buffer
	cmd := exec.CommandContext(ctx, xdplbBin, append([]string{"--socket", e.bal.Socket}, args...)...)
	cmd.Stdout, cmd.Stderr = &o, &s
	err = cmd.Run()
	return o.String(), s.String(), err
}

// schedMustCLI runs the CLI and fails the test unless it succeeds.
func schedMustCLI(t *testing.T, e *env, args ...string) string {
	t.Helper()
	out, errOut, err := schedCLI(t, e, args...)
	if err != nil {
		t.Fatalf("xdplb %s: %v\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	t.Logf("xdplb %s:\n%s", strings.Join(args, " "), strings.TrimRight(out, "\n"))
	return out
}

// schedEchoServices is round robin over line echo servers on rs1:7000 and
// rs2:7000.
const schedEchoServices = `  - name: echo
    vip: 172.19.0.10
    port: 7000
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`

// TestDrainKeepsEstablished: `backend edit --weight 0` drains rs1: its
// established connection goes on echoing, new connections all go to rs2,
// and `xdplb list` shows the weight 0.
func TestDrainKeepsEstablished(t *testing.T) {
	e := newEnv(t, "native")
	serveEcho(t, e.ref.RS1, ":7000", "rs-1")
	serveEcho(t, e.ref.RS2, ":7000", "rs-2")
	e.start(t, func(dir string) string {
		return demo.Setup{Mode: e.mode, Dir: dir, Services: schedEchoServices}.YAML()
	})

	old := dialBackend(t, e, schedEcho, 4, "rs-1")
	schedMustCLI(t, e, "backend", "edit", schedEcho, "172.19.0.2:7000", "--weight", "0")

	for i := range 20 {
		c := dialBackend(t, e, schedEcho, 1)
		if c.first != "rs-2" {
			t.Errorf("new connection %d after draining rs1 answered by %s, want rs-2", i+1, c.first)
		}
		if err := old.echo(fmt.Sprintf("still there %d", i), 2*time.Second); err != nil {
			t.Fatalf("the connection to the drained rs1, after %d new connections: %v", i+1, err)
		}
		if old.first != "rs-1" {
			t.Fatalf("the old connection is answered by %s, want rs-1", old.first)
		}
	}

	// The connection counts are the collector's, from its last sweep
	// (every gc_interval): wait for one that saw the new connections.
	var rs1, rs2 []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out := schedMustCLI(t, e, "list")
		rs1 = schedListBackend(out, "172.19.0.2:7000")
		rs2 = schedListBackend(out, "172.19.0.3:7000")
		if len(rs1) >= 6 && len(rs2) >= 6 && rs2[4] != "0" || time.Now().After(deadline) {
			break
		}
	}
	if len(rs1) < 6 || rs1[2] != "0" {
		t.Errorf("xdplb list shows rs1 as %q, want weight 0", rs1)
	} else if rs1[4] != "1" {
		t.Errorf("xdplb list shows rs1 with %s active connections, want the 1 that was kept", rs1[4])
	}
	if len(rs2) < 6 || rs2[2] != "1" {
		t.Errorf("xdplb list shows rs2 as %q, want weight 1", rs2)
	} else if rs2[4] != "20" {
		t.Errorf("xdplb list shows rs2 with %s active connections, want 20", rs2[4])
	}
	if err := old.echo("last words", 2*time.Second); err != nil {
		t.Errorf("the connection to the drained rs1 at the end: %v", err)
	}
}

// schedListBackend returns the fields of the `xdplb list` line of backend
// addr (address, forward, weight, state, active, inactive), or nil.
func schedListBackend(out, addr string) []string {
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "->" && f[1] == addr {
			return f[1:]
		}
	}
	return nil
}

// schedTrafficServices: the echo service the streams run through, and the
// reference web service, whose scheduler is changed by editing the file.
const schedTrafficServices = `  - name: stream
    vip: 172.19.0.10
    port: 7000
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
` + demo.ReferenceServices

// TestServicesUnderTraffic changes services through the CLI (add, add a
// backend, remove, add and remove a backend of the busy service, reload
// a hand-edited file) and restarts the daemon, while 10 echo streams run
// through the busy service: none may break or lose or corrupt a byte.
func TestServicesUnderTraffic(t *testing.T) {
	e := newEnv(t, "native")
	serveTCP(t, e.ref.RS1, ":7000", ctEchoConn)
	serveTCP(t, e.ref.RS2, ":7000", ctEchoConn)
	serveEcho(t, e.ref.RS2, ":7001", "rs-2:7001")
	dir := e.startServices(t, schedTrafficServices)

	streams := openRestartStreams(t, e, schedEcho, 10)
	waitRestartStreams(t, streams, "at the start")

	// A new service, with a backend, persisted to the file.
	schedMustCLI(t, e, "service", "add", schedExtra, "--scheduler", "rr")
	schedMustCLI(t, e, "backend", "add", schedExtra, "172.19.0.3:7000")
	schedCheckEcho(t, e, schedExtra, "through the added service")
	saved, err := config.Load(e.bal.Config)
	if err != nil {
		t.Fatalf("the config file after service add: %v", err)
	}
	if s := schedFindService(saved, 7100); s == nil {
		t.Errorf("the config file has no service on port 7100 after service add: %+v", saved.Services)
	} else if s.Scheduler != "rr" || len(s.Backends) != 1 || s.Backends[0].Address != testbed.ReferenceRS2 || s.Backends[0].Port != 7000 {
		t.Errorf("the config file has service %+v, want scheduler rr with the one backend 172.19.0.3:7000", *s)
	}
	waitRestartStreams(t, streams, "after adding a service")

	// A restart reads the saved file: the new service must still be
	// served, and the streams go on.
	data, err := os.ReadFile(e.bal.Config)
	if err != nil {
		t.Fatal(err)
	}
	schedRestart(t, e, dir, string(data))
	waitRestartStreams(t, streams, "after the restart")
	schedCheckEcho(t, e, schedExtra, "through the added service after a restart")
	if views, err := e.bal.API.Services(t.Context()); err != nil {
		t.Fatal(err)
	} else if !slices.ContainsFunc(views, func(v api.ServiceView) bool { return v.Port == 7100 }) {
		t.Errorf("after the restart the daemon has no service on port 7100: %+v", views)
	}

	schedMustCLI(t, e, "service", "remove", schedExtra)
	if c, err := ctDial(t, e, schedExtra, time.Second); err == nil {
		err = ctEchoLine(c, "anyone?", time.Second)
		c.Close()
		if err == nil {
			t.Errorf("%s still echoes after service remove", schedExtra)
		}
	}
	if saved, err := config.Load(e.bal.Config); err != nil {
		t.Errorf("the config file after service remove: %v", err)
	} else if s := schedFindService(saved, 7100); s != nil {
		t.Errorf("the config file still has service %+v after service remove", *s)
	}
	waitRestartStreams(t, streams, "after removing the service")

	// A third backend for the busy service: round robin gives it one of
	// three new connections; once removed, it gets none.
	schedMustCLI(t, e, "backend", "add", schedEcho, "172.19.0.3:7001")
	if got := schedCountNew(t, e, 3); got != 1 {
		t.Errorf("%d of 3 new connections went to the added backend rs2:7001, want 1", got)
	}
	waitRestartStreams(t, streams, "after adding a backend")
	schedMustCLI(t, e, "backend", "remove", schedEcho, "172.19.0.3:7001")
	if got := schedCountNew(t, e, 4); got != 0 {
		t.Errorf("%d of 4 new connections went to the removed backend rs2:7001", got)
	}
	waitRestartStreams(t, streams, "after removing a backend")

	// An operator edits the file: web becomes wrr; reload applies it.
	data, err = os.ReadFile(e.bal.Config)
	if err != nil {
		t.Fatal(err)
	}
	edited, err := schedSetScheduler(string(data), "web", "wrr")
	if err != nil {
		t.Fatalf("%v in the config file:\n%s", err, data)
	}
	if err := os.WriteFile(e.bal.Config, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := schedMustCLI(t, e, "reload"); !strings.Contains(out, "services") {
		t.Errorf("reload says %q, want it to have applied services", out)
	}
	views, err := e.bal.API.Services(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		want := map[string]string{"web": "wrr", "stream": "rr", "echo": "rr"}[v.Name]
		if v.Scheduler != want {
			t.Errorf("after reload service %s has scheduler %q, want %q", v.Name, v.Scheduler, want)
		}
	}
	if len(views) != 3 {
		t.Errorf("after reload %d services, want 3: %+v", len(views), views)
	}
	if body, err := httpGet(t.Context(), e.ref.Client.HTTPClient(false), webURL); err != nil || !strings.HasPrefix(body, "rs-") {
		t.Errorf("web after reload: %q, %v", body, err)
	}
	waitRestartStreams(t, streams, "after the reload")

	total := streams.finish(t)
	t.Logf("%d streams, %s echoed in all, none broken", len(streams.s), restartBytes(total))
}

// schedCheckEcho opens a connection to addr and checks that a line comes
// back.
func schedCheckEcho(t *testing.T, e *env, addr, what string) {
	t.Helper()
	c, err := ctDial(t, e, addr, 3*time.Second)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", what, addr, err)
	}
	defer c.Close()
	if err := ctEchoLine(c, "hello "+addr, 3*time.Second); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// schedCountNew opens n connections to schedEcho at once and counts those
// answered by the line echo on rs2:7001 (the others echo verbatim).
func schedCountNew(t *testing.T, e *env, n int) int {
	t.Helper()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	extra := 0
	for i := range n {
		c, err := ctDial(t, e, schedEcho, 3*time.Second)
		if err != nil {
			t.Fatalf("new connection %d: %v", i+1, err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(3 * time.Second))
		line := fmt.Sprintf("new %d", i+1)
		if _, err := io.WriteString(c, line+"\n"); err != nil {
			t.Fatalf("new connection %d: %v", i+1, err)
		}
		reply, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("new connection %d: no echo: %v", i+1, err)
		}
		switch strings.TrimSuffix(reply, "\n") {
		case line:
		case "rs-2:7001: " + line:
			extra++
		default:
			t.Fatalf("new connection %d: echo %q, want %q", i+1, reply, line)
		}
	}
	return extra
}

func schedFindService(c *config.Config, port uint16) *config.Service {
	for i := range c.Services {
		if c.Services[i].Port == port {
			return &c.Services[i]
		}
	}
	return nil
}

// schedSetScheduler changes the scheduler of service name in the YAML
// text: the first scheduler line after its name line.
func schedSetScheduler(text, name, scheduler string) (string, error) {
	i := strings.Index(text, "name: "+name+"\n")
	if i < 0 {
		return "", fmt.Errorf("no service %s", name)
	}
	j := strings.Index(text[i:], "scheduler: ")
	if j < 0 {
		return "", fmt.Errorf("service %s has no scheduler line", name)
	}
	j += i + len("scheduler: ")
	k := strings.IndexByte(text[j:], '\n')
	if k < 0 {
		return "", fmt.Errorf("service %s: scheduler line not terminated", name)
	}
	return text[:j] + scheduler + text[j+k:], nil
}

// TestCLIErrors: commands the CLI or the daemon refuse exit non-zero and
// say what is wrong, and change nothing.
func TestCLIErrors(t *testing.T) {
	e := ctStartEnv(t, "", "")
	before, err := os.ReadFile(e.bal.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"service", "add", schedVIP}, []string{"172.19.0.10", "missing the port"}},
		{[]string{"backend", "add", schedEcho, "172.19.0.99:7000", "--weight", "70000"}, []string{"70000", "weight", "0-65535"}},
		{[]string{"service", "remove", "172.19.0.10:9999"}, []string{"172.19.0.10:9999", "not found"}},
		{[]string{"service", "add", schedEcho}, []string{"172.19.0.10:7000", "already exists"}},
		{[]string{"backend", "remove", schedEcho, "172.19.0.99:7000"}, []string{"172.19.0.99:7000", "not"}},
		{[]string{"service", "add", "172.19.0.10:7200", "--scheduler", "fastest"}, []string{"fastest", "rr"}},
	} {
		cmd := "xdplb " + strings.Join(c.args, " ")
		out, errOut, err := schedCLI(t, e, c.args...)
		t.Logf("%s: %v: %s", cmd, err, strings.TrimSpace(errOut))
		var exit *exec.ExitError
		switch {
		case err == nil:
			t.Errorf("%s succeeded (stdout %q), want a refusal", cmd, out)
			continue
		case !errors.As(err, &exit):
			t.Errorf("%s: %v", cmd, err)
			continue
		case exit.ExitCode() <= 0:
			t.Errorf("%s: exit status %d, want non-zero", cmd, exit.ExitCode())
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, errOut)
			}
		}
	}
	after, err := os.ReadFile(e.bal.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("refused commands changed the config file:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	views, err := e.bal.API.Services(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 || len(views[0].Backends) != 1 || views[0].Port != 7000 {
		t.Errorf("after the refused commands the daemon runs %+v, want the one service with its one backend", views)
	}
	schedCheckEcho(t, e, schedEcho, "after the refused commands")
}
