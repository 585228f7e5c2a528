package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// xdplbBin is the xdplb executable TestMain built for this run.
var xdplbBin string

// modes are the XDP attach modes every scenario runs in.
var modes = []string{"native", "generic"}

func TestMain(m *testing.M) {
	if os.Getenv(peerServerEnv) == "1" && len(os.Args) == 3 {
		if err := servePeers(os.Args[1], os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "peer server:", err)
		}
		os.Exit(1)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "xdplb-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	xdplbBin = filepath.Join(dir, "xdplb")
	build := exec.Command("go", "build", "-o", xdplbBin, "github.com/xdplb/xdplb/cmd/xdplb")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build xdplb:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: leaked goroutines:", err)
			code = 1
		}
	}
	return code
}

// env is one reference topology with its backends and, once started, a
// balancer.
type env struct {
	mode string
	ref  *testbed.Reference
	bal  *demo.Balancer
	logs *testbed.LogBuffer

	stopOnce sync.Once
	stopErr  error
}

// newEnv builds the reference topology and starts the reference backends:
// HTTP on :80 answering rs-1 / rs-2 and UDP echo on :5353. Everything is
// torn down when the test ends.
func newEnv(t *testing.T, mode string) *env {
	t.Helper()
	testbed.RequirePrivileges(t)
	ref, err := testbed.NewReference()
	if err != nil {
		t.Fatalf("build reference topology: %v", err)
	}
	t.Cleanup(func() {
		if err := ref.Close(); err != nil {
			t.Errorf("close reference topology: %v", err)
		}
	})
	if err := ref.ServeBackends(":80", ":5353"); err != nil {
		t.Fatalf("start backends: %v", err)
	}
	return &env{mode: mode, ref: ref, logs: &testbed.LogBuffer{}}
}

// start runs the balancer on the lb host with the config config(dir)
// returns, dir being a fresh directory that must hold the API socket. The
// balancer is stopped when the test ends, and that stop must be clean. If
// the test failed, the counters and the balancer's log are logged.
func (e *env) start(t *testing.T, config func(dir string) string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("balancer log (xdp_mode %s):\n%s", e.mode, e.logs.String())
		}
	})
	dir := t.TempDir()
	bal, err := demo.StartBalancer(t.Context(), e.ref.LB, xdplbBin, dir, config(dir), e.logs)
	if err != nil {
		t.Fatalf("start balancer: %v", err)
	}
	e.bal = bal
	t.Cleanup(func() {
		if t.Failed() {
			e.logStats(t)
		}
		if err := e.stop(); err != nil {
			t.Errorf("stop balancer: %v", err)
		}
	})
}

// startServices starts the balancer with services and returns its
// directory. Its pinned state is removed when the test ends, also if the
// test failed between a hand-over and the next start, when no daemon owns
// it.
func (e *env) startServices(t *testing.T, services string) (dir string) {
	t.Helper()
	t.Cleanup(func() {
		if dir != "" {
			os.RemoveAll(demo.PinPath(dir))
		}
	})
	e.start(t, func(d string) string {
		dir = d
		return demo.Setup{Mode: e.mode, Dir: d, Services: services}.YAML()
	})
	return dir
}

// stop stops the balancer (once) and returns Stop's result.
func (e *env) stop() error {
	e.stopOnce.Do(func() { e.stopErr = e.bal.Stop() })
	return e.stopErr
}

// logStats logs the balancer's counters, for failure diagnosis.
func (e *env) logStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.bal.API.Stats(ctx)
	if err != nil {
		t.Logf("balancer counters: %v", err)
		return
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	t.Logf("balancer counters:\n%s", b)
}
