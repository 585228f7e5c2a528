package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/demo"
)

// upgradeFrom is the last commit whose datapath has map layout 4, before
// the conntrack halves grew: an upgrade from it must keep every
// connection.
const upgradeFrom = "3f95347"

// TestUpgradeFromLayout4: streams opened through a balancer of the
// previous layout go on through a SIGUSR2 hand-over to this version, which
// copies the connections into maps of its own layout (saying so), and
// the streams keep flowing; a final SIGTERM leaves nothing behind.
func TestUpgradeFromLayout4(t *testing.T) {
	old := buildAt(t, upgradeFrom)
	e := newEnv(t, "native")
	serveTCP(t, e.ref.RS1, ":7100", ctEchoConn)
	serveTCP(t, e.ref.RS2, ":7100", ctEchoConn)
	dir := t.TempDir()
	t.Cleanup(func() { os.RemoveAll(demo.PinPath(dir)) })
	config := demo.Setup{Mode: e.mode, Dir: dir, Services: restartServices}.YAML()
	bal, err := demo.StartBalancer(t.Context(), e.ref.LB, old, dir, config, e.logs)
	if err != nil {
		t.Fatalf("start the layout 4 balancer: %v", err)
	}
	e.bal = bal
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("balancer logs:\n%s", e.logs.String())
		}
		if err := e.stop(); err != nil {
			t.Errorf("stop balancer: %v", err)
		}
	})
	streams := openRestartStreams(t, e, restartService, 8)
	waitRestartStreams(t, streams, "before the upgrade")

	handOver(t, e, dir, config)
	waitRestartStreams(t, streams, "after the upgrade")
	streams.finish(t)
	logs := e.logs.String()
	for _, want := range []string{"upgraded the pinned datapath state", "from_layout=4", "connections_copied=8"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the new balancer's log does not say %q", want)
		}
	}
	stopAndCheckClean(t, e, dir)
}

// buildAt builds xdplb as it was at commit rev, from this checkout's
// history, and returns the executable.
func buildAt(t *testing.T, rev string) string {
	t.Helper()
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("find the repository (the test needs its history): %v", err)
	}
	src := t.TempDir()
	archive := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh",
		strings.TrimSpace(string(root)), rev, src)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("extract %s (the test needs the repository's history: in a shallow clone, git fetch --unshallow): %v\n%s", rev, err, out)
	}
	bin := filepath.Join(t.TempDir(), "xdplb-"+rev)
	build := exec.Command("go", "build", "-o", bin, "./cmd/xdplb")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build xdplb at %s: %v\n%s", rev, err, out)
	}
	return bin
}
