package datapath

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/testbed"
)

// TestEnsureBPFFSRefusesOtherFileSystems: a pin path that is, or is
// under, a directory of another file system is refused and left as it was.
func TestEnsureBPFFSRefusesOtherFileSystems(t *testing.T) {
	elsewhere := t.TempDir()
	_, err := ensureBPFFS(filepath.Join(elsewhere, "xdplb"))
	if err == nil || !strings.Contains(err.Error(), elsewhere+" is not a BPF file system") {
		t.Errorf("under another file system: %v", err)
	}
	if es, _ := os.ReadDir(elsewhere); len(es) != 0 {
		t.Errorf("created %v", es)
	}

	bpffs := tempBPFFS(t)
	link := filepath.Join(bpffs, "xdplb")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	_, err = ensureBPFFS(link)
	if err == nil || !strings.Contains(err.Error(), "state.pin_path "+link+": "+link+" is not a BPF file system") {
		t.Errorf("a link off the BPF file system: %v", err)
	}

	path := filepath.Join(bpffs, "pins")
	if _, err := ensureBPFFS(path); err != nil {
		t.Fatal(err)
	}
	if ok, err := onBPFFS(path); !ok || err != nil {
		t.Errorf("%s not made on the BPF file system: %v", path, err)
	}
}

func TestMountsBPF(t *testing.T) {
	const mountinfo = `21 23 0:39 / /sys/fs/bpf rw,relatime shared:7 - bpf bpf rw,mode=700
24 23 0:40 / /run rw,nosuid shared:8 - tmpfs tmpfs rw
25 23 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
26 23 0:41 / /tmp/with\040space\040-\040dash rw - bpf bpf rw
`
	for dev, want := range map[uint64]bool{
		unix.Mkdev(0, 39): true,
		unix.Mkdev(0, 41): true,
		unix.Mkdev(0, 40): false, // not a BPF file system
		unix.Mkdev(8, 1):  false,
		unix.Mkdev(0, 42): false, // not mounted there
	} {
		if got := mountsBPF(mountinfo, dev); got != want {
			t.Errorf("mountsBPF(%d:%d) = %v, want %v", unix.Major(dev), unix.Minor(dev), got, want)
		}
	}
}

func TestPinsPersistWithoutPinPath(t *testing.T) {
	if ok, why := (&Datapath{}).PinsPersist(); ok || why == "" {
		t.Errorf("PinsPersist() = %v, %q; want false and why", ok, why)
	}
}

// TestPinsTransientInPrivateMountNamespace: what ip netns exec does (a
// private mount namespace, /sys remounted so /sys/fs/bpf is empty) is
// noticed, whether ensureBPFFS mounts the BPF file system itself or finds
// one only this namespace has.
func TestPinsTransientInPrivateMountNamespace(t *testing.T) {
	testbed.RequirePrivileges(t)
	dir := t.TempDir()
	errc := make(chan error)
	go func() {
		// The thread is never unlocked: the runtime discards it when the
		// goroutine ends, and its namespace and mounts go with it.
		runtime.LockOSThread()
		errc <- inPrivateMountNamespace(dir)
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func inPrivateMountNamespace(dir string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare the mount namespace: %w", err)
	}
	// Nothing mounted from here on may reach the host's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		return err
	}
	transient, err := ensureBPFFS(filepath.Join(dir, "xdplb"))
	if err != nil {
		return err
	}
	if !strings.Contains(transient, "not visible in the init mount namespace") {
		return fmt.Errorf("a BPF file system only this namespace has: transient %q", transient)
	}

	if err := unix.Unmount("/sys/fs/bpf", unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		return fmt.Errorf("empty /sys/fs/bpf: %w", err)
	}
	transient, err = ensureBPFFS(fmt.Sprintf("/sys/fs/bpf/xdplb-test-%d", os.Getpid()))
	if err != nil {
		return err
	}
	want := "the BPF file system at /sys/fs/bpf was mounted by this process in a private mount namespace; " +
		"pinned state vanishes when the daemon exits"
	if transient != want {
		return fmt.Errorf("mounted by ensureBPFFS: transient %q, want %q", transient, want)
	}
	return nil
}
