package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// The HA pair: node 1 on the reference lb (172.19.0.5), node 2 on a second
// host (172.19.0.6). The VIP and the local address 172.19.0.100 float with
// the master.
var (
	haLocal   = netip.MustParseAddr("172.19.0.100")
	haNode2IP = netip.MustParseAddr("172.19.0.6")
)

const (
	haStreams  = 200
	haUDPFlows = 20
	haService  = "172.19.0.10:7100"
	haUDP      = "172.19.0.10:5353"
)

const haServices = restartServices + demo.EchoService

// haNode is one node of the pair as its configuration says it.
type haNode struct {
	id       int    // 1 on the reference lb, 2 on the second host
	priority int    // 1-254
	mode     string // ha.mode; default vrrp
	sync     string // more sync: lines
}

// haConfig is n's configuration: the two nodes sync to each other and
// advertise every 200 ms.
func haConfig(xdpMode, dir string, n haNode, keyFile string) string {
	self, peer := testbed.ReferenceLB, haNode2IP
	if n.id == 2 {
		self, peer = peer, self
	}
	mode := n.mode
	if mode == "" {
		mode = "vrrp"
	}
	extra := fmt.Sprintf(`ha:
  mode: %s
  node_id: %d
  priority: %d
  advert_interval: 200ms
sync:
  listen: %s:8849
  peers: [%s:8849]
  key_file: %s
  bulk_timeout: 5s
%s`, mode, n.id, n.priority, self, peer, keyFile, n.sync)
	return demo.Setup{Mode: xdpMode, Dir: dir, Services: haServices, Local: haLocal.String(), Extra: extra}.YAML()
}

func writeSyncKey(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sync.key")
	if err := os.WriteFile(path, []byte("xdplb e2e sync key, 32 bytes..."), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startNode2 starts node 2 on a new host of the reference segment.
func startNode2(t *testing.T, e *env, config func(dir string) string) (*testbed.Host, *demo.Balancer) {
	t.Helper()
	host, err := e.ref.Segment.AddHost("lb2", haNode2IP)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Cleanup(func() { os.RemoveAll(demo.PinPath(dir)) })
	bal, err := demo.StartBalancer(t.Context(), host, xdplbBin, dir, config(dir), e.logs)
	if err != nil {
		t.Fatalf("start node 2: %v", err)
	}
	t.Cleanup(func() {
		if err := bal.Stop(); err != nil {
			t.Errorf("stop node 2: %v", err)
		}
	})
	return host, bal
}

// waitCluster polls b's cluster status until ok holds, and returns it and
// how long it took; it fails the test after limit.
func waitCluster(t *testing.T, b *demo.Balancer, what string, limit time.Duration, ok func(api.ClusterStatus) bool) (api.ClusterStatus, time.Duration) {
	t.Helper()
	start := time.Now()
	var last api.ClusterStatus
	var err error
	for time.Since(start) < limit {
		if last, err = b.API.Cluster(t.Context()); err == nil && ok(last) {
			return last, time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; last status %+v (err %v)", what, limit, last, err)
	return last, 0
}

func isMaster(st api.ClusterStatus) bool { return st.Role == "master" }

func isReadyBackup(st api.ClusterStatus) bool { return st.Role == "backup" && st.Ready }

// setLink brings host's eth0 down or up: the host fails as a whole, its
// pinned datapath and daemon included, which killing the daemon alone
// would not do.
func setLink(t *testing.T, host *testbed.Host, up bool) {
	t.Helper()
	err := host.Do(func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if up {
			return netlink.LinkSetUp(l)
		}
		return netlink.LinkSetDown(l)
	})
	if err != nil {
		t.Fatalf("%s eth0 up=%v: %v", host, up, err)
	}
}

// neighbourMAC is host's neighbour entry for addr, "" if none.
func neighbourMAC(t *testing.T, host *testbed.Host, addr netip.Addr) string {
	t.Helper()
	var mac string
	err := host.Do(func() error {
		neighs, err := netlink.NeighList(0, netlink.FAMILY_V4)
		for _, n := range neighs {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == addr && len(n.HardwareAddr) > 0 {
				mac = n.HardwareAddr.String()
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

func hostMAC(t *testing.T, host *testbed.Host) string {
	t.Helper()
	l, err := host.Link()
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr.String()
}

// TestHAFailover: two balancers, 200 echoing TCP streams and 20 UDP flows
// through node 1. Node 1's host fails (its link goes down); node 2 must be
// master and own the VIP within 1.5 s, and at least 198 streams continue
// with every byte intact, every UDP flow is answered by the backend it had,
// and new connections work. Node 1 comes back: it must not take over
// before its bulk sync from node 2 completed; then it preempts, and the
// streams still continue.
func TestHAFailover(t *testing.T) {
	e := newEnv(t, "native")
	serveTCP(t, e.ref.RS1, ":7100", ctEchoConn)
	serveTCP(t, e.ref.RS2, ":7100", ctEchoConn)
	key := writeSyncKey(t)
	var dir1 string
	t.Cleanup(func() {
		if dir1 != "" {
			os.RemoveAll(demo.PinPath(dir1))
		}
	})
	e.start(t, func(d string) string { dir1 = d; return haConfig(e.mode, d, haNode{id: 1, priority: 200}, key) })
	node1 := e.bal
	waitCluster(t, node1, "node 1 master", 5*time.Second, isMaster)
	lb2, node2 := startNode2(t, e, func(d string) string { return haConfig(e.mode, d, haNode{id: 2, priority: 100}, key) })
	waitCluster(t, node2, "node 2 a ready backup", 10*time.Second, isReadyBackup)
	if st := readLBState(t, lb2); st.has(testbed.ReferenceVIP) || st.has(haLocal) {
		t.Fatalf("the backup holds the VIP or the local address: %v", st.addrs)
	}
	if st := readLBState(t, e.ref.LB); !st.has(testbed.ReferenceVIP) || !st.has(haLocal) {
		t.Fatalf("the master lacks the VIP or the local address: %v", st.addrs)
	}

	streams := openStreams(t, e, haService, haStreams, 1024, 20*time.Millisecond)
	flows := openUDPFlows(t, e, haUDP, haUDPFlows)
	waitRestartStreams(t, streams, "through node 1")
	flows.waitAnswered(t, time.Now(), "through node 1")
	waitSynced(t, node2, haService, haStreams)
	waitSynced(t, node2, haUDP, haUDPFlows)

	failedAt := time.Now()
	setLink(t, e.ref.LB, false)
	_, took := waitCluster(t, node2, "node 2 master after node 1 failed", 5*time.Second, isMaster)
	if took > 1500*time.Millisecond {
		t.Errorf("node 2 became master %s after node 1's link went down, want within 1.5s", took)
	}
	t.Logf("node 2 master %s after node 1 failed", took)
	if st := readLBState(t, lb2); !st.has(testbed.ReferenceVIP) || !st.has(haLocal) {
		t.Errorf("new master lacks the VIP or the local address: %v", st.addrs)
	}
	time.Sleep(500 * time.Millisecond)
	if got, want := neighbourMAC(t, e.ref.Client, testbed.ReferenceVIP), hostMAC(t, lb2); got != want {
		t.Errorf("client's neighbour entry for the VIP is %q, want node 2's %s (gratuitous ARP)", got, want)
	}

	time.Sleep(5 * time.Second)
	moved := streams.advancedSince(t, failedAt)
	if len(moved) < haStreams-2 {
		t.Errorf("%d of %d streams flowed after the failover, want at least %d", len(moved), haStreams, haStreams-2)
	}
	flows.checkKept(t, failedAt, "after the failover")
	checkNewConnection(t, e, "through node 2")

	// Node 1 comes back: a backup that must pull node 2's connections
	// before it preempts.
	backAt := time.Now()
	setLink(t, e.ref.LB, true)
	st, took := waitCluster(t, node1, "node 1 master again", 20*time.Second, func(st api.ClusterStatus) bool {
		if st.Role == "master" && !st.Ready {
			t.Errorf("node 1 is master before its bulk sync completed: %+v", st)
		}
		return st.Role == "master"
	})
	t.Logf("node 1 took over again %s after its link came back (%s)", took, st.Reason)
	waitCluster(t, node2, "node 2 backup again", 5*time.Second, func(st api.ClusterStatus) bool { return st.Role == "backup" })
	time.Sleep(3 * time.Second)
	if moved := streams.advancedSince(t, backAt); len(moved) < haStreams-2 {
		t.Errorf("%d of %d streams flowed after node 1 took over again, want at least %d", len(moved), haStreams, haStreams-2)
	}
	flows.checkKept(t, backAt, "after node 1 took over again")
	checkNewConnection(t, e, "through node 1 again")

	// An upgrade of the master (SIGUSR2, then a new daemon): the new one
	// resumes as master at once, from the addresses its predecessor left.
	node1 = restartHAMaster(t, e, dir1, haConfig(e.mode, dir1, haNode{id: 1, priority: 200}, key))
	restartedAt := time.Now()
	waitCluster(t, node2, "node 2 backup after node 1's restart", 5*time.Second, func(st api.ClusterStatus) bool { return st.Role == "backup" })
	if moved := streams.advancedSince(t, restartedAt); len(moved) < haStreams-2 {
		t.Errorf("%d of %d streams flowed after node 1's restart, want at least %d", len(moved), haStreams, haStreams-2)
	}

	total, broken := streams.end(t)
	if len(broken) > 2 {
		t.Errorf("%d streams broke, want at most 2:\n%s", len(broken), strings.Join(broken, "\n"))
	}
	for _, b := range broken {
		t.Log(b)
	}
	t.Logf("%d streams, %s echoed, %d broken", haStreams, restartBytes(total), len(broken))
	for i, n := range []*demo.Balancer{node1, node2} {
		c, err := n.API.Cluster(t.Context())
		if err != nil || c.Sync == nil {
			t.Fatalf("node %d sync status: %+v, %v", i+1, c, err)
		}
		if c.Sync.Conflicts != 0 || c.Sync.AuthFailures != 0 {
			t.Errorf("node %d: %d port conflicts, %d authentication failures, want none", i+1, c.Sync.Conflicts, c.Sync.AuthFailures)
		}
	}
}

// restartHAMaster hands node 1 over to a new daemon as an upgrade does,
// and checks the new one is master from its first status on.
func restartHAMaster(t *testing.T, e *env, dir, config string) *demo.Balancer {
	t.Helper()
	handOver(t, e, dir, config)
	bal := e.bal
	st, err := bal.API.Cluster(t.Context())
	if err != nil || st.Role != "master" || !strings.Contains(st.Reason, "resuming") {
		t.Errorf("node 1's successor: %+v, %v; want master, resuming", st, err)
	}
	if s := readLBState(t, e.ref.LB); !s.has(testbed.ReferenceVIP) || !s.has(haLocal) {
		t.Errorf("node 1's successor lacks the VIP or the local address: %v", s.addrs)
	}
	return bal
}

// waitSynced waits until b lists at least n connections of service.
func waitSynced(t *testing.T, b *demo.Balancer, service string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		conns, err := b.API.Connections(t.Context(), service, "")
		if err == nil && len(conns) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backup lists %d connections of %s within 2s, want %d (err %v)", len(conns), service, n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkNewConnection opens a new connection through the VIP and echoes a
// line over it.
func checkNewConnection(t *testing.T, e *env, when string) {
	t.Helper()
	c, err := ctDial(t, e, haService, 5*time.Second)
	if err != nil {
		t.Errorf("new connection %s: %v", when, err)
		return
	}
	defer c.Close()
	if err := ctEchoLine(c, "hello "+when, 5*time.Second); err != nil {
		t.Errorf("new connection %s: %v", when, err)
	}
}

// advancedSince lists the streams that received something after t0 (by
// comparing with what they had when called after t0's events settled).
func (set *restartStreamSet) advancedSince(t *testing.T, t0 time.Time) []int {
	t.Helper()
	before := set.received()
	time.Sleep(time.Second)
	after := set.received()
	var out []int
	for i := range after {
		if after[i] > before[i] {
			out = append(out, i)
		}
	}
	return out
}

// udpFlows are UDP "clients", each a socket with its own source port,
// sending a request every 100 ms and noting which backend answered.
type udpFlows struct {
	mu      sync.Mutex
	flows   []*udpFlow
	stop    chan struct{}
	wg      sync.WaitGroup
	closers []net.Conn
}

type udpFlow struct {
	backend  string // the backend that answered first
	answered []time.Time
	other    int // answers from another backend than the first
}

func openUDPFlows(t *testing.T, e *env, addr string, n int) *udpFlows {
	t.Helper()
	fs := &udpFlows{stop: make(chan struct{})}
	t.Cleanup(func() {
		close(fs.stop)
		for _, c := range fs.closers {
			c.Close()
		}
		fs.wg.Wait()
	})
	for i := range n {
		c, err := e.ref.Client.DialContext(t.Context(), "udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		f := &udpFlow{}
		fs.flows = append(fs.flows, f)
		fs.closers = append(fs.closers, c)
		fs.wg.Go(func() { fs.send(c, i) })
		fs.wg.Go(func() { fs.receive(c, f) })
	}
	return fs
}

func (fs *udpFlows) send(c net.Conn, i int) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-fs.stop:
			return
		case <-tick.C:
		}
		fmt.Fprintf(c, "flow %d request %d", i, seq)
	}
}

func (fs *udpFlows) receive(c net.Conn, f *udpFlow) {
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		backend, _, _ := strings.Cut(string(buf[:n]), ":")
		fs.mu.Lock()
		if f.backend == "" {
			f.backend = backend
		}
		if backend != f.backend {
			f.other++
		}
		f.answered = append(f.answered, time.Now())
		fs.mu.Unlock()
	}
}

// waitAnswered waits until every flow had an answer after since.
func (fs *udpFlows) waitAnswered(t *testing.T, since time.Time, when string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		missing := fs.unanswered(since)
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d UDP flows not answered within 5s", when, missing, len(fs.flows))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (fs *udpFlows) unanswered(since time.Time) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	missing := 0
	for _, f := range fs.flows {
		if len(f.answered) == 0 || f.answered[len(f.answered)-1].Before(since) {
			missing++
		}
	}
	return missing
}

// checkKept checks that every flow is answered after since, and only ever
// by the backend it had: the peer kept its mapping.
func (fs *udpFlows) checkKept(t *testing.T, since time.Time, when string) {
	t.Helper()
	fs.waitAnswered(t, since, when)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.flows {
		if f.other > 0 {
			t.Errorf("%s: UDP flow %d was answered %d times by another backend than %s", when, i, f.other, f.backend)
		}
	}
}
