package datapath

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestLockPinsOneDaemon: a second claim on a pin path is refused, naming
// the holder, until the first is released. flock locks belong to an open
// file, so two claims in one process conflict as two daemons would.
func TestLockPinsOneDaemon(t *testing.T) {
	dir := t.TempDir()
	first, err := lockPins(dir, "/sys/fs/bpf/xdplb", "/run/xdplb/xdplb.sock", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockPins(dir, "/sys/fs/bpf//xdplb/", "/run/other.sock", 200*time.Millisecond)
	want := fmt.Sprintf("state.pin_path /sys/fs/bpf/xdplb is in use by another xdplb daemon (pid %d, api socket /run/xdplb/xdplb.sock); "+
		"stop it first or give this one another state.pin_path", os.Getpid())
	if err == nil || err.Error() != want {
		t.Fatalf("second claim: %v, want %q", err, want)
	}
	other, err := lockPins(dir, "/sys/fs/bpf/xdplb-2", "/run/other.sock", 0)
	if err != nil {
		t.Fatalf("another pin path: %v", err)
	}
	if err := other.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	second, err := lockPins(dir, "/sys/fs/bpf/xdplb", "/run/other.sock", 0)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if err := second.Release(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("released locks left %v", entries)
	}
}

// TestLockPinsWaitsForExitingHolder: the old daemon of a hand-over may
// still be exiting when the new one starts.
func TestLockPinsWaitsForExitingHolder(t *testing.T) {
	dir := t.TempDir()
	old, err := lockPins(dir, "/sys/fs/bpf/xdplb", "/run/xdplb/xdplb.sock", 0)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan error)
	go func() {
		time.Sleep(300 * time.Millisecond)
		released <- old.Release()
	}()
	l, err := lockPins(dir, "/sys/fs/bpf/xdplb", "/run/xdplb/xdplb.sock", 3*time.Second)
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("after the holder exited: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestLockPinsNoPinPath(t *testing.T) {
	l, err := LockPins("", "/run/xdplb/xdplb.sock")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestLockName(t *testing.T) {
	for path, want := range map[string]string{
		"/sys/fs/bpf/xdplb":    "sys-fs-bpf-xdplb",
		"/sys/fs/bpf//xdplb/":  "sys-fs-bpf-xdplb",
		"/sys/fs/bpf/xdp-lb":   `sys-fs-bpf-xdp\x2dlb`,
		"/sys/fs/bpf/xdp/lb":   "sys-fs-bpf-xdp-lb",
		"/sys/fs/bpf/.x y\\z":  `sys-fs-bpf-.x\x20y\x5cz`,
		"/.hidden/xdplb.state": `\x2ehidden-xdplb.state`,
	} {
		if got := lockName(path); got != want {
			t.Errorf("lockName(%q) = %q, want %q", path, got, want)
		}
	}
}
