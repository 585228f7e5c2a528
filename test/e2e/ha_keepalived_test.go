package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// keepalivedConf is a VRRP instance over unicast that owns the VIP and the
// floating local address and tells xdplb (at socket) its role through the
// notify scripts, as a site keeping keepalived for VRRP would.
func keepalivedConf(self, peer string, priority int, xdplb, socket string) string {
	role := func(r string) string { return fmt.Sprintf(`"%s --socket %s ha role %s"`, xdplb, socket, r) }
	return fmt.Sprintf(`global_defs {
  router_id xdplb_e2e_%s
  script_user root
}
vrrp_instance xdplb {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int 1
  unicast_src_ip %s
  unicast_peer {
    %s
  }
  virtual_ipaddress {
    %s/32 dev eth0
    %s/32 dev eth0
  }
  notify_master %s
  notify_backup %s
  notify_fault %s
}
`, self, priority, self, peer, testbed.ReferenceVIP, haLocal, role("master"), role("backup"), role("backup"))
}

// startKeepalived runs keepalived (VRRP only) on host with conf; it is
// stopped with SIGTERM, which makes it remove its addresses, when the
// test ends.
func startKeepalived(t *testing.T, e *env, host *testbed.Host, conf string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := host.Command(t.Context(), "keepalived", "--dont-fork", "--log-console", "--vrrp", "--use-file", path,
		"--pid", filepath.Join(dir, "keepalived.pid"), "--vrrp_pid", filepath.Join(dir, "vrrp.pid"),
		"--checkers_pid", filepath.Join(dir, "checkers.pid"))
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	proc, err := host.StartCmd(cmd)
	if err != nil {
		t.Fatalf("start keepalived on %s: %v", host, err)
	}
	t.Cleanup(func() {
		proc.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-proc.Done():
		case <-time.After(10 * time.Second):
			proc.Kill()
		}
	})
}

// TestHAExternalKeepalived: keepalived owns the VIP and the local address
// and drives xdplb's role through `xdplb ha role` in its notify scripts;
// xdplb only syncs connections. When the master's host fails, keepalived
// moves the addresses and the streams continue through the other node.
func TestHAExternalKeepalived(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("keepalived is not installed; .ci/run installs it")
		}
		t.Skip("keepalived is not installed")
	}
	e := newEnv(t, "native")
	serveTCP(t, e.ref.RS1, ":7100", ctEchoConn)
	serveTCP(t, e.ref.RS2, ":7100", ctEchoConn)
	key := writeSyncKey(t)
	external := func(dir string, id int) string {
		return haConfig(e.mode, dir, haNode{id: id, priority: 100, mode: "external"}, key)
	}
	var dir1 string
	t.Cleanup(func() {
		if dir1 != "" {
			os.RemoveAll(demo.PinPath(dir1))
		}
	})
	e.start(t, func(d string) string { dir1 = d; return external(d, 1) })
	node1 := e.bal
	lb2, node2 := startNode2(t, e, func(d string) string { return external(d, 2) })
	for i, n := range []*demo.Balancer{node1, node2} {
		if st, err := n.API.Cluster(t.Context()); err != nil || st.Mode != "external" || st.Role != "backup" {
			t.Fatalf("node %d before keepalived: %+v, %v; want an external-mode backup", i+1, st, err)
		}
	}

	startKeepalived(t, e, e.ref.LB, keepalivedConf(testbed.ReferenceLB.String(), haNode2IP.String(), 200, xdplbBin, node1.Socket))
	startKeepalived(t, e, lb2, keepalivedConf(haNode2IP.String(), testbed.ReferenceLB.String(), 100, xdplbBin, node2.Socket))
	waitCluster(t, node1, "keepalived makes node 1 master", 15*time.Second, isMaster)
	waitCluster(t, node2, "node 2 a ready backup", 10*time.Second, isReadyBackup)
	if st := readLBState(t, e.ref.LB); !st.has(testbed.ReferenceVIP) || !st.has(haLocal) {
		t.Fatalf("keepalived's master lacks the VIP or the local address: %v", st.addrs)
	}

	const n = 50
	streams := openStreams(t, e, haService, n, 1024, 20*time.Millisecond)
	waitRestartStreams(t, streams, "through node 1")
	waitSynced(t, node2, haService, n)

	setLink(t, e.ref.LB, false)
	t.Cleanup(func() { setLink(t, e.ref.LB, true) })
	_, took := waitCluster(t, node2, "keepalived makes node 2 master", 15*time.Second, isMaster)
	t.Logf("node 2 master %s after node 1 failed (keepalived, advert_int 1s)", took)
	if st := readLBState(t, lb2); !st.has(testbed.ReferenceVIP) || !st.has(haLocal) {
		t.Errorf("keepalived's new master lacks the VIP or the local address: %v", st.addrs)
	}
	// TCP retransmits back off while no one answers (after a 3.5 s outage
	// the next try may come 6 s later): give them time, then look again
	// while some still stand still.
	time.Sleep(4 * time.Second)
	moved := streams.advancedSince(t, time.Now())
	for deadline := time.Now().Add(10 * time.Second); len(moved) < n-1 && time.Now().Before(deadline); {
		moved = streams.advancedSince(t, time.Now())
	}
	if len(moved) < n-1 {
		t.Errorf("%d of %d streams flowed through node 2, want at least %d", len(moved), n, n-1)
	}
	checkNewConnection(t, e, "through node 2")
	st, err := node2.API.Cluster(t.Context())
	if err != nil || st.Sync == nil || st.Sync.Conflicts != 0 {
		t.Errorf("node 2's sync: %+v, %v; want no conflicts", st.Sync, err)
	}
	_, broken := streams.end(t)
	if len(broken) > 1 {
		t.Errorf("%d streams broke, want at most 1: %v", len(broken), broken)
	}
}
