package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

const (
	// restartService is round robin over rs1:7100 and rs2:7100, which echo.
	restartService = "172.19.0.10:7100"
	restartStreams = 20
	// Every stream sends restartChunk bytes every restartTick: 1.6 MB/s
	// each way per stream, enough to notice any gap, little enough for
	// two CPUs.
	restartChunk = 16 << 10
	restartTick  = 10 * time.Millisecond
)

const restartServices = `  - name: stream
    vip: 172.19.0.10
    port: 7100
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`

// TestRestartKeepsConnections restarts the balancer twice under 20 echoing
// TCP streams: SIGUSR2 makes the daemon exit keeping the pinned datapath,
// which must go on forwarding with no daemon at all; the next `xdplb serve`
// with the same config adopts the maps (and the 20 connections) and
// replaces the program. No stream may break or lose or corrupt a byte.
func TestRestartKeepsConnections(t *testing.T) {
	testbed.RequirePrivileges(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { testRestartKeepsConnections(t, mode) })
	}
}

func testRestartKeepsConnections(t *testing.T, mode string) {
	e := newEnv(t, mode)
	serveTCP(t, e.ref.RS1, ":7100", ctEchoConn)
	serveTCP(t, e.ref.RS2, ":7100", ctEchoConn)

	var dir string
	config := func(d string) string {
		return demo.Setup{Mode: mode, Dir: d, Services: restartServices}.YAML()
	}
	// Runs after the final stop: if the test failed between a SIGUSR2 and
	// the next start, nobody removes the pinned datapath otherwise.
	t.Cleanup(func() {
		if dir != "" {
			os.RemoveAll(demo.PinPath(dir))
		}
	})
	e.start(t, func(d string) string { dir = d; return config(d) })

	streams := openRestartStreams(t, e, restartService, restartStreams)
	waitRestartStreams(t, streams, "before the first restart")

	for round := 1; round <= 2; round++ {
		restartBalancer(t, e, streams, round, dir, config(dir))
	}

	total := streams.finish(t)
	t.Logf("%d streams, %d bytes echoed in all (%s each way per stream on average), none broken",
		len(streams.s), total, restartBytes(total/int64(len(streams.s))))

	if err := e.stop(); err != nil {
		t.Fatalf("stop balancer (SIGTERM): %v", err)
	}
	if _, err := os.Stat(demo.PinPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after SIGTERM: pinned state %s: %v, want it removed", demo.PinPath(dir), err)
	}
}

// restartBalancer sends SIGUSR2 to the running balancer, checks that the
// streams flow for a second with no daemon, then starts a new one with the
// same config in the same directory and checks it adopted the 20
// connections.
func restartBalancer(t *testing.T, e *env, streams *restartStreamSet, round int, dir, config string) {
	old := e.bal
	prog := readLBState(t, e.ref.LB).xdp
	if prog == nil || !prog.Attached {
		t.Fatalf("restart %d: no XDP program on eth0 before SIGUSR2: %+v", round, prog)
	}
	if err := old.Proc.Cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatalf("restart %d: SIGUSR2: %v", round, err)
	}
	select {
	case <-old.Proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("restart %d: balancer still running 10s after SIGUSR2", round)
	}
	if err := old.Proc.Wait(); err != nil {
		t.Fatalf("restart %d: balancer exited after SIGUSR2: %v, want exit status 0", round, err)
	}
	if code := old.Proc.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("restart %d: exit status %d after SIGUSR2, want 0", round, code)
	}

	// No daemon now: only the pinned program forwards.
	before := streams.received()
	time.Sleep(time.Second)
	after := streams.received()
	if now := readLBState(t, e.ref.LB).xdp; now == nil || !now.Attached || now.ProgId != prog.ProgId {
		t.Errorf("restart %d: with no daemon, eth0 XDP is %+v, want program %d still attached", round, now, prog.ProgId)
	}
	var moved int64
	for i := range before {
		if after[i] <= before[i] {
			t.Errorf("restart %d: stream %d received nothing in the second without a daemon (%d bytes before and after)",
				round, i, before[i])
		}
		moved += after[i] - before[i]
	}
	t.Logf("restart %d: %s echoed in the second without a daemon", round, restartBytes(moved))
	if t.Failed() {
		t.FailNow()
	}

	bal, err := demo.StartBalancer(t.Context(), e.ref.LB, xdplbBin, dir, config, e.logs)
	if err != nil {
		t.Fatalf("restart %d: start the new balancer: %v", round, err)
	}
	e.bal = bal // the test's cleanup now stops this one
	if bal.Config != old.Config || bal.Socket != old.Socket {
		t.Fatalf("restart %d: new balancer uses %s / %s, the old one %s / %s",
			round, bal.Config, bal.Socket, old.Config, old.Socket)
	}
	st, err := bal.API.Status(t.Context())
	if err != nil {
		t.Fatalf("restart %d: status: %v", round, err)
	}
	if !st.Ready {
		t.Errorf("restart %d: new balancer not ready: %+v", round, st)
	}
	if len(st.Interfaces) != 1 || st.Interfaces[0].Mode != e.mode {
		t.Errorf("restart %d: new balancer attached as %+v, want eth0 in %s mode", round, st.Interfaces, e.mode)
	}
	if now := readLBState(t, e.ref.LB).xdp; now == nil || !now.Attached || now.ProgId == prog.ProgId || now.AttachMode != prog.AttachMode {
		t.Errorf("restart %d: eth0 XDP is %+v after the new start, want a new program in place of %d (attach mode %d)",
			round, now, prog.ProgId, prog.AttachMode)
	} else {
		t.Logf("restart %d: XDP program %d replaced by %d", round, prog.ProgId, now.ProgId)
	}
	conns, err := bal.API.Connections(t.Context(), restartService, "")
	if err != nil {
		t.Fatalf("restart %d: list connections: %v", round, err)
	}
	listed := map[netip.AddrPort]bool{}
	for _, c := range conns {
		listed[c.Client] = true
	}
	for i, s := range streams.s {
		if !listed[s.client] {
			t.Errorf("restart %d: stream %d (client %s) not among the %d connections the new balancer lists",
				round, i, s.client, len(conns))
		}
	}
	if len(conns) != len(streams.s) {
		t.Errorf("restart %d: new balancer lists %d connections, want %d: %+v", round, len(conns), len(streams.s), conns)
	}
	waitRestartStreams(t, streams, fmt.Sprintf("after restart %d", round))
}

// restartStreamSet is a set of TCP connections through the VIP, each sending a
// deterministic pseudo-random stream and checking that exactly that comes
// back.
type restartStreamSet struct {
	s    []*restartStream
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	// Every stream sends chunk bytes every tick.
	chunk int
	tick  time.Duration
}

type restartStream struct {
	c      *net.TCPConn
	client netip.AddrPort
	seed   [32]byte

	sent, recv atomic.Int64
	// Written by the stream's goroutines, read after wg.Wait.
	writeErr, readErr error
}

// openRestartStreams opens n streams through addr and starts them. They
// are stopped and closed when the test ends, if finish did not do it first.
func openRestartStreams(t *testing.T, e *env, addr string, n int) *restartStreamSet {
	return openStreams(t, e, addr, n, restartChunk, restartTick)
}

// openStreams opens n streams through addr, each sending chunk bytes every
// tick.
func openStreams(t *testing.T, e *env, addr string, n, chunk int, tick time.Duration) *restartStreamSet {
	t.Helper()
	set := &restartStreamSet{stop: make(chan struct{}), chunk: chunk, tick: tick}
	t.Cleanup(func() {
		set.halt()
		for _, s := range set.s {
			s.c.Close()
		}
		set.wg.Wait()
	})
	for i := range n {
		c, err := ctDial(t, e, addr, 5*time.Second)
		if err != nil {
			t.Fatalf("stream %d: dial: %v", i, err)
		}
		ap := c.LocalAddr().(*net.TCPAddr).AddrPort()
		s := &restartStream{
			c:      c.(*net.TCPConn),
			client: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()),
			seed:   seed(fmt.Sprintf("xdplb e2e stream %s %d", addr, i)),
		}
		// Generous: the whole test is far shorter; this only bounds a hang.
		s.c.SetDeadline(time.Now().Add(2 * time.Minute))
		set.s = append(set.s, s)
		set.wg.Go(func() { s.write(set.stop, set.chunk, set.tick) })
		set.wg.Go(s.read)
	}
	return set
}

func (set *restartStreamSet) halt() { set.once.Do(func() { close(set.stop) }) }

// write sends a chunk every tick until stop, then half-closes.
func (s *restartStream) write(stop <-chan struct{}, chunk int, every time.Duration) {
	src := rand.NewChaCha8(s.seed)
	buf := make([]byte, chunk)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			if err := s.c.CloseWrite(); err != nil {
				s.writeErr = fmt.Errorf("half-close after %d bytes: %w", s.sent.Load(), err)
			}
			return
		case <-tick.C:
		}
		src.Read(buf)
		n, err := s.c.Write(buf)
		s.sent.Add(int64(n))
		if err != nil {
			s.writeErr = fmt.Errorf("write after %d bytes: %w", s.sent.Load(), err)
			return
		}
	}
}

// read checks everything echoed against the stream until EOF.
func (s *restartStream) read() {
	want := rand.NewChaCha8(s.seed)
	buf := make([]byte, 64<<10)
	exp := make([]byte, len(buf))
	for {
		n, err := s.c.Read(buf)
		if n > 0 {
			want.Read(exp[:n])
			if i := firstMismatch(buf[:n], exp[:n]); i >= 0 {
				s.readErr = fmt.Errorf("byte %d of the echo is %#02x, want %#02x: data corrupted or lost",
					s.recv.Load()+int64(i), buf[i], exp[i])
				return
			}
			s.recv.Add(int64(n))
		}
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.readErr = fmt.Errorf("read after %d bytes: %w", s.recv.Load(), err)
			return
		}
	}
}

func firstMismatch(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// received is how many bytes each stream got back so far.
func (set *restartStreamSet) received() []int64 {
	out := make([]int64, len(set.s))
	for i, s := range set.s {
		out[i] = s.recv.Load()
	}
	return out
}

// waitRestartStreams waits until every stream has received more than it had.
func waitRestartStreams(t *testing.T, set *restartStreamSet, when string) {
	t.Helper()
	start := set.received()
	deadline := time.Now().Add(5 * time.Second)
	for {
		now, all := set.received(), true
		for i := range now {
			all = all && now[i] > start[i]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: streams not flowing within 5s: received %v, was %v", when, now, start)
		}
		time.Sleep(restartTick)
	}
}

// finish stops the senders, waits for every echo to come back to EOF and
// fails the test for any stream that broke or came back short. It returns
// the bytes echoed in all.
func (set *restartStreamSet) finish(t *testing.T) int64 {
	t.Helper()
	total, broken := set.end(t)
	for _, b := range broken {
		t.Error(b)
	}
	return total
}

// end stops the senders, waits for every echo to come back to EOF and
// returns the bytes echoed in all and, for each stream that broke or came
// back short, why.
func (set *restartStreamSet) end(t *testing.T) (total int64, broken []string) {
	t.Helper()
	set.halt()
	done := make(chan struct{})
	go func() { set.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("streams did not finish within 20s of the half-close")
	}
	for i, s := range set.s {
		var why []string
		for _, err := range []error{s.writeErr, s.readErr} {
			if err != nil {
				why = append(why, err.Error())
			}
		}
		if sent, recv := s.sent.Load(), s.recv.Load(); sent != recv {
			why = append(why, fmt.Sprintf("sent %d bytes, %d came back", sent, recv))
		}
		if len(why) > 0 {
			broken = append(broken, fmt.Sprintf("stream %d (client %s): %s", i, s.client, strings.Join(why, "; ")))
		}
		total += s.recv.Load()
		s.c.Close()
	}
	return total, broken
}

func restartBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
