package health

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var backend = netip.MustParseAddrPort("127.0.0.1:8080")

func execSpec(timeout time.Duration, argv ...string) Spec {
	return Spec{Kind: KindExec, Timeout: timeout, Command: argv}
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

func TestExec(t *testing.T) {
	sh := lookPath(t, "sh")
	if err := probeOnce(t, execSpec(time.Second, lookPath(t, "true")), backend); err != nil {
		t.Errorf("true: %v", err)
	}
	mustFail(t, probeOnce(t, execSpec(time.Second, lookPath(t, "false")), backend), "exit status 1")
	mustFail(t, probeOnce(t, execSpec(time.Second, sh, "-c", "echo starting; echo db unreachable >&2; exit 3"), backend),
		"exit status 3: db unreachable")
	mustFail(t, probeOnce(t, execSpec(time.Second, "/nonexistent/check"), backend), "/nonexistent/check")

	env := `test "$XDPLB_BACKEND_ADDR" = 127.0.0.1 && test "$XDPLB_BACKEND_PORT" = 8080 && test "$XDPLB_SERVICE" = svc`
	if err := probeOnce(t, execSpec(time.Second, sh, "-c", env), backend); err != nil {
		t.Errorf("environment: %v", err)
	}
}

func TestExecTimeout(t *testing.T) {
	start := time.Now()
	mustFail(t, probeOnce(t, execSpec(200*time.Millisecond, lookPath(t, "sleep"), "10"), backend),
		"killed after the 200ms timeout")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("sleep 10 with a 200ms timeout took %v", d)
	}
}

// TestExecKillsProcessGroup checks that at the timeout the command's
// children die with it: here a shell that waits for a background sleep.
func TestExecKillsProcessGroup(t *testing.T) {
	sh := lookPath(t, "sh")
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	mustFail(t, probeOnce(t, execSpec(300*time.Millisecond, sh, "-c", "sleep 10 & echo $! > "+pidFile+"; wait"), backend),
		"killed")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("probe took %v", d)
	}
	pid := readPID(t, pidFile)
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the background sleep (pid %d) survived the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExecLingeringChild checks that a command which passes but leaves a
// child holding its output open does not hold the probe until the child
// exits.
func TestExecLingeringChild(t *testing.T) {
	sh := lookPath(t, "sh")
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	err := probeOnce(t, execSpec(5*time.Second, sh, "-c", "sleep 10 & echo $! > "+pidFile+"; exit 0"), backend)
	pid := readPID(t, pidFile)
	syscall.Kill(pid, syscall.SIGKILL)
	if err != nil {
		t.Errorf("probe = %v, want a pass (exit 0)", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("probe took %v: held by the child's open stdout", d)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether pid runs; a zombie (killed, orphaned, not yet
// reaped by init) counts as dead.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}
