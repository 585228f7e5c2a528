package datapath

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/testbed"
)

// tempBPFFS mounts a BPF file system of the test's own and returns where.
func tempBPFFS(t *testing.T) string {
	t.Helper()
	testbed.RequirePrivileges(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount a BPF file system on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// pinForeign pins a map of another tool's at path.
func pinForeign(t *testing.T, path string) {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Pin(path); err != nil {
		t.Fatal(err)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestRemoveLeavesOthersPins: Remove deletes the maps and attachments
// xdplb pinned and nothing else; the directory goes once it is empty.
func TestRemoveLeavesOthersPins(t *testing.T) {
	path := filepath.Join(tempBPFFS(t), "xdplb")
	dp, err := Load(Options{ConntrackCapacity: 1024, PinPath: path})
	if err != nil {
		t.Fatal(err)
	}
	pinForeign(t, dp.linkPin(7)) // as an attachment of an earlier run
	others := []string{"foreign", "link_xdp_if01", "link_xdp_if7x", "link_xdp_if-7", "ct_forward_old"}
	for _, name := range others {
		pinForeign(t, filepath.Join(path, name))
	}
	if err := os.Mkdir(filepath.Join(path, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(entries(t, path), "ct_forward") {
		t.Fatalf("no map pinned: %v", entries(t, path))
	}

	if err := dp.Remove(); err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(others), "sub")
	slices.Sort(want)
	if got := entries(t, path); !slices.Equal(got, want) {
		t.Fatalf("after Remove: %v, want %v", got, want)
	}

	for _, name := range want {
		os.Remove(filepath.Join(path, name))
	}
	if err := RemovePins(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("empty pin directory not removed: %v", err)
	}
}

// TestRemovePinsRefusesOtherFileSystems: state.pin_path: /etc deletes
// nothing.
func TestRemovePinsRefusesOtherFileSystems(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"ct_forward", "passwd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err := RemovePins(dir)
	want := "state.pin_path " + dir + " is not a BPF file system"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("RemovePins(%s): %v, want %q", dir, err, want)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"ct_forward", "passwd"}) {
		t.Errorf("left %v", got)
	}
	if err := RemovePins(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a path that does not exist: %v", err)
	}
}

// TestBPFFSRootRefused: the root of a BPF file system is never a pin path:
// maps of other tools there may have xdplb's names ("config", "events").
func TestBPFFSRootRefused(t *testing.T) {
	root := tempBPFFS(t)
	pinForeign(t, filepath.Join(root, "config"))
	for _, path := range []string{root, root + "/."} {
		if err := RemovePins(path); err == nil || !strings.Contains(err.Error(), "root of a BPF file system") {
			t.Errorf("RemovePins(%s): %v, want a refusal", path, err)
		}
		if dp, err := Load(Options{ConntrackCapacity: 1024, PinPath: path}); err == nil {
			dp.Close()
			t.Errorf("Load with pins at %s succeeded, want a refusal", path)
		}
	}
	// The kernel shows maps.debug and progs.debug at a BPF root.
	got := slices.DeleteFunc(entries(t, root), func(n string) bool { return strings.HasSuffix(n, ".debug") })
	if !slices.Equal(got, []string{"config"}) {
		t.Errorf("the root holds %v after the refusals, want the other tool's config only", got)
	}
}

func TestIsLinkPin(t *testing.T) {
	d := &Datapath{pinPath: "/sys/fs/bpf/xdplb"}
	for name, want := range map[string]bool{
		filepath.Base(d.linkPin(1)):    true, // what Attach pins
		filepath.Base(d.linkPin(4096)): true,
		"link_xdp_if":                  false,
		"link_xdp_if0":                 false,
		"link_xdp_if01":                false,
		"link_xdp_if+1":                false,
		"link_xdp_if-1":                false,
		"link_xdp_if1x":                false,
		"xlink_xdp_if1":                false,
	} {
		if got := isLinkPin(name); got != want {
			t.Errorf("isLinkPin(%q) = %v, want %v", name, got, want)
		}
	}
}
