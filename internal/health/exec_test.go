package health

import (
	"fmt"
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

	env := `test "$XDPLB_BACKEND_ADDR" = 127.0.0.1 && test "$XDPLB_BACKEND_PORT" = 8080 && test "$XDPLB_SERVICE" = 172.19.0.10:80/tcp`
	if err := probeOnce(t, execSpec(time.Second, sh, "-c", env), backend); err != nil {
		t.Errorf("environment: %v", err)
	}
}

// TestExecEnvironment checks that a command sees PATH and its XDPLB_*
// variables, never the daemon's environment.
func TestExecEnvironment(t *testing.T) {
	t.Setenv("HEALTH_TEST_SECRET", "from the daemon")
	t.Setenv("PATH", "/tmp/evil:"+os.Getenv("PATH"))
	script := `test -z "${HEALTH_TEST_SECRET+set}" && test "$PATH" = /usr/sbin:/usr/bin:/sbin:/bin && test -n "$XDPLB_SERVICE"`
	if err := probeOnce(t, execSpec(time.Second, lookPath(t, "sh"), "-c", script), backend); err != nil {
		t.Errorf("the command saw the daemon's environment: %v", err)
	}
}

// program writes an executable script (that touches ran when it runs)
// into a directory of its own, both with the given modes.
func program(t *testing.T, dirMode, mode os.FileMode, ran string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "check")
	body := "#!/bin/sh\nexit 0\n"
	if ran != "" {
		body = "#!/bin/sh\ntouch " + ran + "\n"
	}
	if err := os.WriteFile(path, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	// Explicitly, whatever the umask.
	for p, m := range map[string]os.FileMode{path: mode, dir: dirMode} {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestValidateProgram(t *testing.T) {
	for _, tc := range []struct {
		name   string
		path   func(t *testing.T) string
		want   string // the whole message, %s the path; "" for none
		asRoot bool
	}{
		{"ok", func(t *testing.T) string { return program(t, 0o755, 0o755, "") }, "", false},
		{"ok, group may run it", func(t *testing.T) string { return program(t, 0o750, 0o750, "") }, "", false},
		{"relative", func(*testing.T) string { return "check.sh" }, `health.command[0]: "check.sh" is not an absolute path`, false},
		{"found in PATH only", func(*testing.T) string { return "true" }, `health.command[0]: "true" is not an absolute path`, false},
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "check") },
			`health.command[0]: %[1]q does not exist`, false},
		{"directory", func(t *testing.T) string { return filepath.Dir(program(t, 0o755, 0o755, "")) },
			`health.command[0]: %[1]q is not a regular file (mode drwxr-xr-x)`, false},
		{"not executable", func(t *testing.T) string { return program(t, 0o755, 0o644, "") },
			`health.command[0]: %[1]q is not executable (mode 0644)`, false},
		{"writable by others", func(t *testing.T) string { return program(t, 0o755, 0o777, "") },
			`health.command[0]: %[1]q is writable by group and others (mode 0777); a check runs as root`, false},
		{"writable by group", func(t *testing.T) string { return program(t, 0o755, 0o775, "") },
			`health.command[0]: %[1]q is writable by group (mode 0775); a check runs as root`, false},
		{"directory writable by others", func(t *testing.T) string { return program(t, 0o777, 0o755, "") },
			`health.command[0]: %[1]q is under %[2]s, which is writable by group and others (mode 0777); a check runs as root`, false},
		{"directory writable by group", func(t *testing.T) string { return program(t, 0o775, 0o755, "") },
			`health.command[0]: %[1]q is under %[2]s, which is writable by group (mode 0775); a check runs as root`, false},
		{"sticky directory: others cannot rename root's program", func(t *testing.T) string {
			return program(t, 0o777|os.ModeSticky, 0o755, "")
		}, "", false},
		{"parent directory owned by another user", func(t *testing.T) string {
			p := program(t, 0o755, 0o755, "")
			if err := os.Chown(filepath.Dir(filepath.Dir(p)), 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}, `health.command[0]: %[1]q is under %[4]s, which is owned by uid 65534, not root; a check runs as root`, true},
		{"link into a directory writable by others", func(t *testing.T) string {
			target := program(t, 0o777, 0o755, "")
			link := filepath.Join(t.TempDir(), "check")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, `health.command[0]: %[1]q is under %[3]s, which is writable by group and others (mode 0777); a check runs as root`, false},
		{"owned by another user", func(t *testing.T) string {
			p := program(t, 0o755, 0o755, "")
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}, `health.command[0]: %[1]q is owned by uid 65534, not root; a check runs as root`, true},
		{"control character", func(*testing.T) string { return "/usr/bin/che\nck" },
			`health.command[0]: "/usr/bin/che\nck" holds a control character`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			path := tc.path(t)
			err := Spec{Kind: KindExec, Command: []string{path, "--quick"}}.Validate()
			want := tc.want
			if strings.Contains(want, "%") {
				real, _ := filepath.EvalSymlinks(path)
				want = fmt.Sprintf(want, path, filepath.Dir(path), filepath.Dir(real), filepath.Dir(filepath.Dir(path)))
			}
			switch {
			case want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case want != "" && (err == nil || err.Error() != want):
				t.Errorf("Validate() = %v\nwant %s", err, want)
			}
		})
	}
}

// TestExecChecksBeforeRun checks that a program which became unsafe (or
// went away) after validation is not run, and the probe fails saying
// why.
func TestExecChecksBeforeRun(t *testing.T) {
	ran := filepath.Join(t.TempDir(), "ran")
	path := program(t, 0o755, 0o755, ran)
	spec := execSpec(time.Second, path)
	if err := probeOnce(t, spec, backend); err != nil {
		t.Fatalf("safe program: %v", err)
	}
	if _, err := os.Stat(ran); err != nil {
		t.Fatalf("the program did not run: %v", err)
	}
	os.Remove(ran)

	for _, tc := range []struct {
		name   string
		change func() error
		want   string
	}{
		{"made writable", func() error { return os.Chmod(path, 0o777) },
			fmt.Sprintf("not run: %q is writable by group and others (mode 0777); a check runs as root", path)},
		{"directory made writable", func() error { return os.Chmod(filepath.Dir(path), 0o777) },
			fmt.Sprintf("not run: %q is under %s, which is writable by group and others (mode 0777); a check runs as root", path, filepath.Dir(path))},
		{"removed", func() error { return os.Remove(path) }, fmt.Sprintf("not run: %q does not exist", path)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProber(Target{Service: webKey, Addr: backend, Spec: spec}, New(Options{}).sockets)
			os.Chmod(path, 0o755)
			os.Chmod(filepath.Dir(path), 0o755)
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			err := p.probe(t.Context())
			if err == nil || err.Error() != tc.want {
				t.Errorf("probe = %v, want %s", err, tc.want)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Error("the program ran")
			}
		})
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
